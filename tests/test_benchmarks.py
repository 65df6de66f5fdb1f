"""Smoke test: the step-speed benchmark runs and reports every optimizer."""

import json

from benchmarks import step_speed


def test_step_speed_smoke(tmp_path, capsys):
    step_speed.main(["--preset", "smoke", "--trees", "nin_1M", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "step_speed.json").read_text())["rows"]
    assert {r["optimizer"] for r in rows} == set(step_speed.OPTIMIZERS)
    inna = next(r for r in rows if r["optimizer"] == "inna")
    assert inna["n_params"] == 966_986
    assert inna["state_over_params_bytes"] == 1.0
    # INNA stores one array per parameter and XLA copies nothing but the scalar count.
    assert inna["copies"] <= 1
    assert "vs sgd-mom" in capsys.readouterr().out


def test_train_speed_smoke(tmp_path, capsys):
    from benchmarks import train_speed

    train_speed.main(
        [
            "--width",
            "0.0625",
            "--chunks",
            "1",
            "--chunk-steps",
            "2",
            "--optimizers",
            "sgd,inna",
            "--out",
            str(tmp_path),
        ]
    )
    rows = json.loads((tmp_path / "train_speed.json").read_text())["rows"]
    assert [r["optimizer"] for r in rows] == ["sgd", "inna"]
    assert rows[0]["ratio_to_sgd"] == 1.0
    assert "vs sgd" in capsys.readouterr().out


def test_fig1_nonsmooth_smoke(tmp_path, capsys):
    from benchmarks import fig1_nonsmooth

    fig1_nonsmooth.main(["--steps", "500", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "fig1_nonsmooth.json").read_text())["rows"]
    assert [(r["alpha"], r["beta"]) for r in rows] == list(fig1_nonsmooth.SETTINGS)
    assert (tmp_path / "fig1_nonsmooth.png").stat().st_size > 1000
    assert "Figure 1" in capsys.readouterr().out
