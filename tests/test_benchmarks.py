"""Smoke test: the step-speed benchmark runs and reports every optimizer."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import compiled_as_users_do

from benchmarks import step_speed


@pytest.mark.slow
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


@pytest.mark.slow
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
    sgd, inna = rows
    assert inna["ratio_to_sgd"] == pytest.approx(inna["steps_per_second"] / sgd["steps_per_second"])
    assert inna["steps_per_second"] > 0
    assert "vs sgd" in capsys.readouterr().out


@pytest.mark.slow
def test_train_speed_compares_one_and_several_cpu_devices(tmp_path, capsys):
    from benchmarks import train_speed

    train_speed.main(
        ["--width", "0.0625", "--batch-size", "8", "--chunks", "1", "--chunk-steps", "2"]
        + ["--optimizers", "inna", "--cpu-devices", "2", "--shape", "32,32,3"]
        + ["--out", str(tmp_path)]
    )
    rows = json.loads((tmp_path / "train_speed.json").read_text())["rows"]
    assert [r["optimizer"] for r in rows] == ["inna@1cpu", "inna@2cpu"]
    assert rows[0]["ratio_to_inna@1cpu"] == 1.0 and rows[1]["steps_per_second"] > 0


def test_fig1_nonsmooth_smoke(tmp_path, capsys):
    from benchmarks import fig1_nonsmooth

    fig1_nonsmooth.main(["--steps", "500", "--out", str(tmp_path)])
    assert not jax.config.jax_enable_x64  # float64 stays inside the script
    data = json.loads((tmp_path / "fig1_nonsmooth.json").read_text())
    assert {"date", "machine", "commit", "command"} <= data.keys()
    assert data["command"] == f"python -m benchmarks.fig1_nonsmooth --steps 500 --out {tmp_path}"
    rows = data["rows"]
    assert [(r["alpha"], r["beta"]) for r in rows] == list(fig1_nonsmooth.SETTINGS)
    assert (tmp_path / "fig1_nonsmooth.png").stat().st_size > 1000
    assert "Figure 1" in capsys.readouterr().out


def _smoke(module, name, tmp_path, capsys, extra=()):
    """Runs a figure script's smoke preset on tiny generated MNIST; returns its JSON."""
    from datagen import make_mnist

    make_mnist(tmp_path / "mnist")
    out = tmp_path / "out"
    argv = ["--preset", "smoke", "--data-dir", str(tmp_path / "mnist"), "--out", str(out)]
    assert module.main([*argv, "--no-progress", *extra]) == 0
    preset = "paper" if "paper" in extra else "smoke"
    result = json.loads((out / f"{name}_mnist_{preset}.json").read_text())
    assert (out / f"{name}_mnist_{preset}.png").stat().st_size > 1000
    text = capsys.readouterr().out
    assert text.rstrip().splitlines()[0].startswith(f"Figure {result['figure']}")
    return result


def _curves_ok(row, seeds, epochs):
    for key in ("train_loss_per_seed", "test_accuracy_per_seed"):
        curves = np.asarray(row[key])
        assert curves.shape == (seeds, epochs)
        assert np.all(np.isfinite(curves))
    acc = np.asarray(row["test_accuracy_per_seed"])
    assert np.all((acc >= 0) & (acc <= 1))
    assert np.allclose(row["train_loss"]["mean"], np.mean(row["train_loss_per_seed"], 0))


@pytest.mark.slow
def test_fig2_sensitivity_smoke(tmp_path, capsys):
    from benchmarks import fig2_sensitivity as fig2

    result = _smoke(fig2, "fig2_sensitivity", tmp_path, capsys)
    assert [(r["alpha"], r["beta"]) for r in result["rows"]] == list(fig2.SETTINGS)
    for row in result["rows"]:
        _curves_ok(row, seeds=2, epochs=2)
    # Same seed, same start and batches: different (alpha, beta) give different curves.
    losses = [r["train_loss_per_seed"][0][-1] for r in result["rows"]]
    assert len(set(losses)) == 4


@pytest.mark.slow
def test_fig3_comparison_smoke(tmp_path, capsys):
    from benchmarks import fig3_comparison as fig3

    result = _smoke(fig3, "fig3_comparison", tmp_path, capsys)
    assert [r["optimizer"] for r in result["rows"]] == list(fig3.PAPER)
    for row in result["rows"]:
        _curves_ok(row, seeds=2, epochs=2)
        # The pick is the grid's lowest training loss after the search budget.
        assert row["lr"] == row["grid"][int(np.argmin(row["search_train_loss"]))]
        # With the budget equal to the epochs, seed 0's curve is the search run's.
        assert row["train_loss_per_seed"][0][-1] == min(row["search_train_loss"])


@pytest.mark.slow
def test_fig4_decay_smoke(tmp_path, capsys):
    from benchmarks import fig4_decay as fig4

    result = _smoke(fig4, "fig4_decay", tmp_path, capsys)
    names = [r["name"] for r in result["rows"]]
    assert names == ["INNA k^-1/2", "INNA k^-1/4", "INNA k^-1/8", "INNA k^-1/16", "Adam"]
    for row in result["rows"]:
        _curves_ok(row, seeds=2, epochs=2)
    inna = [r for r in result["rows"] if r["q"] is not None]
    assert result["best_q"] == min(inna, key=lambda r: r["train_loss"]["mean"][-1])["q"]


def test_presets_write_apart_into_one_out():
    """The quick preset keeps the names RESULTS.md links; the others add theirs, so a
    medium run into the quick run's --out overwrites nothing."""
    from benchmarks import report

    names = {p: report.stem("fig3_comparison", "mnist", p) for p in ("quick", "medium")}
    assert names == {"quick": "fig3_comparison_mnist", "medium": "fig3_comparison_mnist_medium"}


def test_tuning_ladder_grows_until_the_pick_is_interior(monkeypatch):
    """The search extends the gamma_0 ladder past an edge pick until the best rung
    has a searched neighbour on both sides, and never past a diverged edge."""
    import dataclasses
    import math

    from benchmarks import common, tuning
    from inna_optax.training import preset

    def fake_train(config, split, sweep=None, desc=""):
        lrs = np.asarray(sweep["lr"])
        loss = (np.log10(lrs) - math.log10(target["best"])) ** 2 + 1.0
        loss = np.where(lrs > 0.5, np.inf, loss)  # diverges above 0.5
        curves = np.repeat(loss[:, None], config.epochs, axis=1)
        return {
            "train_loss": curves,
            "test_loss": curves,
            "test_accuracy": np.zeros_like(curves),
            "train_loss_steps": curves,
            "window_end_step": np.arange(config.epochs),
            "steps_per_epoch": 1,
            "n_params": 1,
            "seconds": 1.0,
        }

    monkeypatch.setattr(common, "train", fake_train)
    config = preset("quick", "mnist")
    target = {}
    for opt, best in (("adam", 1e-5), ("sgd", 0.3), ("inna", 0.1)):
        target["best"] = best
        config = dataclasses.replace(config, optimizer=opt)
        grid, finals, _, pick, _, _ = tuning.search(config, None, (1, 1), 1, opt)
        assert grid[pick] == pytest.approx(best)
        assert 0 < pick < len(grid) - 1, grid  # interior
        assert all(
            b / a == pytest.approx(10 / 3) or b / a == pytest.approx(3)
            for a, b in zip(grid, grid[1:], strict=False)
        )


@pytest.mark.slow
def test_fig3_search_budget_shorter_than_training(tmp_path, capsys):
    """The paper's protocol: search on a short budget, then train every seed longer."""
    from benchmarks import fig3_comparison as fig3

    extra = ["--optimizers", "inna,adam", "--search-epochs", "1", "--epochs", "2"]
    result = _smoke(fig3, "fig3_comparison", tmp_path, capsys, extra)
    assert result["search_epochs"] == 1
    assert [r["optimizer"] for r in result["rows"]] == ["inna", "adam"]
    for row in result["rows"]:
        _curves_ok(row, seeds=2, epochs=2)


@pytest.mark.slow
def test_picks_from_chain_figures_2_3_4(tmp_path, capsys):
    """--picks-from hands Figure 2's best (alpha, beta) to Figure 3, and Figure 3's
    (alpha, beta) and gamma_0 picks to Figure 4; explicit flags win; a missing pick is
    an error that names the flag."""
    from benchmarks import common
    from benchmarks import fig2_sensitivity as fig2
    from benchmarks import fig3_comparison as fig3
    from benchmarks import fig4_decay as fig4

    out = str(tmp_path / "out")
    fig2_result = _smoke(fig2, "fig2_sensitivity", tmp_path, capsys, ["--epochs", "1"])
    best = min(fig2_result["rows"], key=common.final_loss)
    with pytest.raises(SystemExit, match="no lr for mnist.*--lr"):
        _smoke(fig4, "fig4_decay", tmp_path, capsys, ["--picks-from", out])

    extra = ["--epochs", "1", "--optimizers", "inna,adam", "--picks-from", out]
    fig3_result = _smoke(fig3, "fig3_comparison", tmp_path, capsys, extra)
    assert (fig3_result["alpha"], fig3_result["beta"]) == (best["alpha"], best["beta"])
    picked = {row["optimizer"]: row["lr"] for row in fig3_result["rows"]}

    extra = ["--epochs", "1", "--seeds", "0", "--picks-from", out, "--beta", "0.7"]
    fig4_result = _smoke(fig4, "fig4_decay", tmp_path, capsys, extra)
    assert (fig4_result["alpha"], fig4_result["beta"]) == (best["alpha"], 0.7)
    lrs = {row["name"]: row["lr"] for row in fig4_result["rows"]}
    assert lrs["INNA k^-1/4"] == picked["inna"] and lrs["Adam"] == picked["adam"]


@pytest.mark.slow
def test_paper_preset_runs_shrunk(tmp_path, capsys):
    """The GPU preset's own settings (full-width NiN with dropout, q = 1/2) on one
    batch of 32: the path `--preset paper` takes works end to end."""
    from benchmarks import fig2_sensitivity as fig2

    # _smoke passes --preset smoke first; the later --preset paper wins.
    shrink = ["--train-examples", "32", "--test-examples", "16", "--epochs", "1", "--seeds", "0"]
    result = _smoke(fig2, "fig2_sensitivity", tmp_path, capsys, [*shrink, "--preset", "paper"])
    assert result["preset"] == "paper"
    assert (result["config"]["width"], result["config"]["dropout"]) == (1.0, None)  # 0.5
    assert result["decay_power"] == 0.5 and result["n_params"] > 900_000
    for row in result["rows"]:
        _curves_ok(row, seeds=1, epochs=1)


def test_presets_are_sized_per_dataset_and_overridable():
    import argparse

    from benchmarks import options

    parser = argparse.ArgumentParser()
    options.add_common_args(parser)

    def resolve(*argv):
        return options.resolve_preset(parser.parse_args(["--data-dir", "d", *argv]))

    mnist, cifar = resolve("--dataset", "mnist"), resolve("--dataset", "cifar10")
    # CIFAR's quick preset halves the training subset; the paper's settings everywhere.
    assert (mnist.train_examples, cifar.train_examples) == (3200, 1600)
    assert dataclasses.replace(cifar, dataset="mnist", train_examples=3200) == mnist
    assert (mnist.decay_power, mnist.dropout_rate, mnist.psi_init) == (0.5, 0.5, "gradient")
    assert resolve("--dataset", "cifar10", "--train-examples", "800").train_examples == 800
    assert resolve("--dataset", "cifar10", "--seeds", "4,5").seeds == (4, 5)
    assert resolve("--preset", "paper", "--dataset", "cifar10").train_examples is None
    medium = resolve("--preset", "medium")
    assert (medium.width, len(medium.seeds)) == (1.0, 3) and medium.epochs >= 2
    with pytest.raises(SystemExit, match="--width"):
        resolve("--width", "0")


@pytest.mark.slow
def test_plateau_probe_smoke(tmp_path, capsys):
    from benchmarks import plateau

    argv = ["--dataset", "digits", "--width", "0.0625", "--steps", "4", "--window", "2"]
    argv += ["--settings", "he:sgd:0.1,he+bn:inna:1", "--out", str(tmp_path), "--no-progress"]
    assert plateau.main(argv) == 0
    rows = json.loads((tmp_path / "plateau_digits_w0.0625_4.json").read_text())["rows"]
    assert [r["init"] for r in rows] == ["he", "he+bn"]
    for row in rows:
        assert len(row["preact_rms_init"]) == len(row["dead_end"]) == 9
        assert len(row["loss_windows"]) == 2 and all(np.isfinite(row["loss_windows"]))
    # batch normalisation puts every hidden layer's pre-activations at unit scale
    assert rows[1]["preact_rms_init"][:8] == pytest.approx([1.0] * 8, abs=0.05)
    assert "Plateau probe" in capsys.readouterr().out


@pytest.mark.slow
def test_innaprop_cifar_smoke(tmp_path, capsys):
    """INNAprop at both of the paper's (alpha, beta) and AdamW, cosine decay, weight
    decay 0.01; the per-step curves and the table."""
    from datagen import make_mnist

    from benchmarks import innaprop_cifar

    make_mnist(tmp_path / "mnist")
    argv = ["--preset", "smoke", "--dataset", "mnist", "--data-dir", str(tmp_path / "mnist")]
    assert innaprop_cifar.main([*argv, "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    result = json.loads((tmp_path / "out" / "innaprop_cifar_mnist_smoke.json").read_text())
    assert [r["name"] for r in result["rows"]] == [v[0] for v in innaprop_cifar.VARIANTS]
    assert [(r["alpha"], r["beta"]) for r in result["rows"]] == [
        (0.1, 0.9),
        (2.0, 2.0),
        (None, None),
    ]
    assert {r["weight_decay"] for r in result["rows"]} == {0.01}
    assert result["config"]["schedule"] == "cosine"
    for row in result["rows"]:
        _curves_ok(row, seeds=2, epochs=2)
        # the smoke preset logs every 2 steps: 64 images of batch 16, 2 windows an epoch
        assert np.shape(row["train_loss_steps_per_seed"]) == (2, 4)
        assert row["window_end_step"] == [2, 4, 6, 8]
    assert (tmp_path / "out" / "innaprop_cifar_mnist_smoke.png").stat().st_size > 1000
    assert capsys.readouterr().out.startswith("INNAprop vs AdamW")


@pytest.mark.slow
def test_gpt_shakespeare_smoke(tmp_path, capsys):
    from benchmarks import gpt_shakespeare

    text = tmp_path / "plays.txt"
    text.write_text("Now is the winter of our discontent\n" * 40, encoding="utf-8")
    out = tmp_path / "out"
    argv = ["--data", str(text), "--preset", "smoke", "--out", str(out)]
    assert gpt_shakespeare.main(argv) == 0
    result = json.loads((out / "gpt_shakespeare_smoke.json").read_text())
    assert [r["name"] for r in result["rows"]] == [v[0] for v in gpt_shakespeare.VARIANTS]
    for row in result["rows"]:
        assert np.shape(row["valid_loss_per_seed"]) == (2, len(result["eval_step"]))
        assert np.all(np.isfinite(row["valid_loss_per_seed"]))
    assert (out / "gpt_shakespeare_smoke.png").stat().st_size > 1000
    assert capsys.readouterr().out.startswith("GPT on plays.txt")


def test_gpt_shakespeare_missing_text_is_one_line(tmp_path):
    from benchmarks import gpt_shakespeare

    with pytest.raises(SystemExit, match="no such file"):
        gpt_shakespeare.main(["--data", str(tmp_path / "none.txt"), "--preset", "smoke"])


def test_first_reach_is_the_first_evaluation_at_the_target():
    from benchmarks.gpt_shakespeare import first_reach

    row = {"valid_loss_per_seed": [[3.0, 2.0, 1.5], [3.0, 2.2, 1.7]]}
    assert first_reach(row, np.asarray([10, 20, 30]), 2.1) == 20
    assert first_reach(row, np.asarray([10, 20, 30]), 1.0) is None


@pytest.mark.slow
def test_conv_speed_times_both_convolutions(tmp_path, capsys):
    """Every row's forward and backward passes trace to the native row's loss and
    convolution gradients' shapes; two rows are compiled and timed (all 24 programs
    take most of a minute to compile here; the forms themselves are tested equal to
    what they replace below)."""
    from benchmarks import conv_speed

    def traced(variant):
        parts = conv_speed._parts(variant, (28, 28, 1), 0.0625, 4)
        loss, grads = (jax.eval_shape(parts[part]) for part in conv_speed.PARTS)
        vmapped = conv_speed.VARIANTS[variant][-1]  # over a replica axis of one
        # the loss and the convolutions' gradients (the norms may be off)
        return jax.tree.map(lambda s: (s.shape[vmapped:], s.dtype), (loss, grads["convs"]))

    native = traced("native")
    for variant in conv_speed.VARIANTS:
        assert traced(variant) == native, variant

    argv = ["--widths", "0.0625", "--shapes", "28,28,1", "--rounds", "1", "--block", "1"]
    argv += ["--variants", "matmul, norm hand grad", "--out", str(tmp_path)]
    assert conv_speed.main(argv) == 0
    out = capsys.readouterr().out
    assert "forward+backward" in out
    for variant in ("native", "matmul, norm hand grad"):
        assert f" {variant} " in out
    rows = json.loads((tmp_path / "conv_speed.json").read_text())["rows"]
    assert [(r["shape"], r["width"], r["variant"]) for r in rows] == [
        ("28x28x1", 0.0625, "native"),
        ("28x28x1", 0.0625, "matmul, norm hand grad"),
    ]
    assert all(r["forward_ms"] > 0 and r["forward+backward_ms"] > 0 for r in rows)


def test_python_m_inna_optax_runs_figure_1s_check(capsys):
    from inna_optax.__main__ import main

    main(["--steps", "200"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("INNA on J(t1,t2)") and len(lines) == 5  # title, head, 3 rows
    assert [tuple(map(float, line.split()[:2])) for line in lines[2:]] == [
        (0.5, 0.05),
        (0.5, 0.1),
        (1.3, 0.1),
    ]  # the paper's three settings of Figure 1
    assert not jax.config.jax_enable_x64  # float64 stays inside main


@pytest.mark.parametrize("form", ["by_rows", "hand_gradient"])
@pytest.mark.parametrize("padding", ["SAME", "VALID", ((1, 2), (0, 1))])
def test_the_other_convolution_forms_timed_are_the_convolution(form, padding):
    from benchmarks import conv_forms

    dims = ("NHWC", "HWIO", "NHWC")
    kx, kw, kc = jax.random.split(jax.random.key(0), 3)
    x, w = jax.random.normal(kx, (2, 9, 7, 4)), jax.random.normal(kw, (3, 3, 4, 6))

    def grads(conv):
        out = conv(x, w, (1, 1), padding, dimension_numbers=dims)
        cotangent = jax.random.normal(kc, out.shape)
        return out, *jax.grad(
            lambda x, w: jnp.sum(conv(x, w, (1, 1), padding, dimension_numbers=dims) * cotangent),
            argnums=(0, 1),
        )(x, w)

    for mine, native in zip(
        grads(conv_forms.FORMS[form]), grads(jax.lax.conv_general_dilated), strict=True
    ):
        np.testing.assert_allclose(mine, native, rtol=1e-5, atol=1e-4)


def test_the_unbounded_max_pool_timed_is_max_pool_without_its_conditional():
    from benchmarks import conv_forms
    from inna_optax.training import convolution

    x = jax.nn.relu(jnp.round(2 * jax.random.normal(jax.random.key(0), (2, 9, 9, 3))))

    def grad(pool):
        return jax.jit(jax.grad(lambda x: jnp.sum(pool(x, (3, 3), (2, 2), "SAME") ** 3)))

    np.testing.assert_array_equal(
        grad(conv_forms.unbounded_max_pool)(x), grad(convolution.max_pool)(x)
    )

    def compiled(pool):
        return compiled_as_users_do(grad(pool).lower(x)).as_text()

    assert " conditional(" in compiled(convolution.max_pool)
    assert " conditional(" not in compiled(conv_forms.unbounded_max_pool)


def test_conv_speed_times_the_rows_asked_for_and_refuses_unknown_ones(
    tmp_path, capsys, monkeypatch
):
    """Which rows are measured and printed (measuring them is the smoke test's)."""
    from benchmarks import conv_speed

    asked = []

    def measure(shape, width, batch, rounds, block, variants):
        asked.append(list(variants))
        return {(v, part): 1.0 + i for i, v in enumerate(variants) for part in conv_speed.PARTS}

    monkeypatch.setattr(conv_speed, "measure", measure)
    argv = ["--widths", "0.0625", "--shapes", "28,28,1", "--rounds", "1", "--block", "1"]
    argv += ["--out", str(tmp_path)]
    assert conv_speed.main([*argv, "--variants", "matmul, pool no cond"]) == 0
    assert asked == [["native", "matmul, pool no cond"]]
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("28x28")]
    assert len(rows) == 2 and " native " in rows[0] and " matmul, pool no cond " in rows[1]
    assert rows[1].split()[-1] == "2.00x"  # the ratio to the native row
    with pytest.raises(SystemExit):
        conv_speed.main([*argv, "--variants", "winograd"])


@pytest.mark.slow
def test_the_hand_written_batch_norm_gradient_timed_is_flaxs():
    import optax
    from flax import nnx

    from benchmarks import conv_forms
    from inna_optax.training.models import NiN

    x = jax.random.normal(jax.random.key(1), (8, 12, 12, 1))
    y = jnp.arange(8) % 10

    def grads_and_stats(hand):
        model = NiN(10, 1, 0.125, 0.5, norm=True, rngs=nnx.Rngs(0))
        for i, norm in enumerate(model.norms):  # scales and shifts away from 1 and 0
            norm.scale[...] = 1 + 0.3 * jax.random.normal(jax.random.key(10 + i), norm.scale.shape)
            norm.bias[...] = 0.2 * jax.random.normal(jax.random.key(50 + i), norm.bias.shape)
        if hand:
            conv_forms.use_hand_gradient_norms(model)
            assert all(isinstance(n, conv_forms.HandGradientBatchNorm) for n in model.norms)

        def loss(model):
            logits = model(x, train=True, key=jax.random.key(2))
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        grads = nnx.jit(nnx.grad(loss))(model)  # op by op: hundreds of small programs
        return grads, nnx.state(model, nnx.BatchStat)

    for mine, flax_s in zip(
        jax.tree.leaves(grads_and_stats(True)), jax.tree.leaves(grads_and_stats(False)), strict=True
    ):
        np.testing.assert_allclose(mine, flax_s, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
def test_gpt_profile_times_the_step_and_its_parts(tmp_path, capsys):
    from benchmarks import gpt_profile

    assert gpt_profile.main(["--rounds", "1", "--block", "1", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for part in ("step (the command's)", "forward+backward", "optimizer", "the host loop"):
        assert part in out
    for piece in gpt_profile.PIECES:
        assert f"no {piece}" in out and f"  {piece} (what removing it saves)" in out
    saved = json.loads((tmp_path / "gpt_profile_cpu.json").read_text())
    assert saved["ms"]["forward"] > 0 and saved["commit"]


def _gpt_run(folder, valid, every=250, log_every=125):
    """A finished run directory of the gpt model as `inna_optax.train` writes it:
    `valid` (seeds, evaluations) and two training windows per evaluation."""
    folder.mkdir()
    seeds, evals = valid.shape
    lines = [
        json.dumps(
            {
                "epoch": e + 1,
                "train_loss": [2.0] * seeds,
                "test_loss": valid[:, e].tolist(),
                "test_accuracy": [0.5] * seeds,
                "train_loss_steps": [[3.0 - e, 2.5 - e]] * seeds,
            }
        )
        for e in range(evals)
    ]
    (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    config = {"seeds": list(range(seeds)), "log_every": log_every, "eval_every": every}
    config |= {"steps": every * evals, "dropout": 0.2}
    (folder / "run.json").write_text(json.dumps({"config": config}))
    summary = {"n_params": 10, "steps_per_second": 2.0, "wall_seconds": 5.0}
    (folder / "summary.json").write_text(json.dumps(summary))


def test_nanogpt_gpu_reports_each_seeds_lowest_validation_loss_and_its_step(tmp_path, capsys):
    """nanoGPT reports the lowest validation loss over its evaluations (it keeps that
    checkpoint); the table gives it per seed with its step, and the last."""
    from benchmarks import nanogpt_gpu

    valid = np.array([[2.0, 1.5, 1.7], [2.1, 1.6, 1.4]])
    _gpt_run(tmp_path / "run", valid)
    argv = ["--from-run", str(tmp_path / "run"), "--machine", "a GPU", "--out", str(tmp_path)]
    assert nanogpt_gpu.main(argv) == 0
    out = capsys.readouterr().out
    assert "lowest over the evaluations: 1.4500 [1.5000, 1.4000] at steps 500, 750" in out
    assert "at step 750: 1.5500 [1.7000, 1.4000]" in out
    result = json.loads((tmp_path / "nanogpt_gpu.json").read_text())
    assert result["machine"] == "a GPU" and result["eval_step"] == [250, 500, 750]
    assert result["window_end_step"] == [125, 250, 375, 500, 625, 750]
    assert (tmp_path / "nanogpt_gpu.png").stat().st_size > 1000


def test_nanogpt_gpu_reads_a_run_of_the_cpu_recipe_under_its_own_name(tmp_path, capsys):
    """--preset nanogpt-cpu: the CPU recipe's run, against the loss nanoGPT's README
    gives for it, in a JSON named by its validation windows."""
    from benchmarks import nanogpt_gpu

    _gpt_run(tmp_path / "run", np.array([[2.0, 1.9], [2.1, 1.8]]))
    argv = ["--preset", "nanogpt-cpu", "--test-examples", "64", "--from-run", str(tmp_path / "run")]
    assert nanogpt_gpu.main([*argv, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "nanoGPT's CPU recipe" in out and "(nanoGPT's README: 1.88)" in out
    result = json.loads((tmp_path / "nanogpt_cpu_64.json").read_text())
    assert result["nanogpt_best_valid_loss"] == 1.88 and result["preset"] == "nanogpt-cpu"
    assert (tmp_path / "nanogpt_cpu_64.png").exists()


def test_nanogpt_gpu_without_a_finished_run_is_one_line(tmp_path):
    from benchmarks import nanogpt_gpu

    with pytest.raises(SystemExit, match=r"^error: .*none: not a finished run of the gpt model"):
        nanogpt_gpu.main(["--from-run", str(tmp_path / "none"), "--out", str(tmp_path)])


def test_figure_titles_name_the_data_set_plainly_and_count_the_seeds():
    from benchmarks import report

    rows = [{"train_loss_per_seed": [[1.0], [2.0], [3.0]]}]
    result = {"dataset_key": "cifar10", "dataset": "cifar10:cifar10-jpeg.zip", "rows": rows}
    assert report.figure_label(result | {"preset": "quick"}) == "CIFAR-10 (quick preset, 3 seeds)"
    folder = {"dataset_key": "folder", "dataset": "flowers", "preset": "long", "rows": rows}
    assert report.figure_label(folder) == "flowers (long preset, 3 seeds)"


def test_normalisation_trains_each_optimizer_on_both_nins_at_their_defaults(
    tmp_path, monkeypatch, capsys
):
    """Eight runs: each optimizer on the plain NiN at its former default γ_0 and on
    the batch-normalised one at today's; the JSON, the picture and the table. (The
    training is the one loop's, tested elsewhere: here it is faked.)"""
    from benchmarks import common, normalisation

    calls = []

    def train(config, split, sweep=None, desc=""):
        calls.append((config.optimizer, config.norm, config.lr, config.test_examples))
        curves = np.full((1, config.epochs), 2.0 - config.norm)
        return {
            "train_loss": curves, "test_loss": curves, "test_accuracy": curves / 4,
            "train_loss_steps": np.full((1, 4), 2.0), "window_end_step": [1, 2, 3, 4],
            "steps_per_epoch": 2, "seconds": 1.5, "replica_steps_per_second": 1.0,
            "n_params": 10,
        }  # fmt: skip

    monkeypatch.setattr(common, "train", train)
    argv = ["--dataset", "digits", "--epochs", "2", "--train-examples", "64"]
    assert normalisation.main([*argv, "--out", str(tmp_path), "--no-progress"]) == 0
    assert calls == [
        (name, norm, lr, None)
        for name, plain, default in (
            ("inna", 0.1, 1.0), ("sgd", 0.1, 1.0), ("adagrad", 0.01, 0.1), ("adam", 1e-3, 1e-3)
        )
        for norm, lr in ((False, plain), (True, default))
    ]  # fmt: skip
    result = json.loads((tmp_path / "normalisation_digits.json").read_text())
    assert result["seconds"] == 12.0 and len(result["rows"]) == 8
    assert (tmp_path / "normalisation_digits.png").stat().st_size > 1000
    out = capsys.readouterr().out
    assert "     inna  plain      0.1 | 2.000 -> 2.000 | 50.00% -> 50.00%" in out
