"""Training pipeline: outputs, resume, non-finite stop, data parallelism, vmapped seeds."""

import json

import jax
import numpy as np
import pytest
from datagen import make_mnist

pytest.importorskip("flax.nnx")
from inna_optax import train  # noqa: E402

TINY = ["--width", "0.0625", "--batch-size", "8", "--no-progress", "--dropout", "0.0"]


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("mnist")
    make_mnist(d, n_train=64, n_test=32)
    return d


def run(args):
    return train.train(train.parse_args(args))


def test_writes_metrics_summary_and_checkpoints(tmp_path, mnist_dir):
    out = tmp_path / "out"
    s = run(
        [
            "--dataset",
            "mnist",
            "--data-dir",
            str(mnist_dir),
            "--epochs",
            "2",
            "--out",
            str(out),
            *TINY,
        ]
    )
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]
    assert {"train_loss", "test_loss", "test_accuracy"} <= set(lines[0])
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "test_accuracy",
        "test_loss",
        "train_loss",
        "epochs",
        "steps_per_second",
        "wall_seconds",
        "config",
    ):
        assert key in summary
    assert summary["config"]["optimizer"] == "inna" and summary["epochs"] == 2
    assert (out / "checkpoints" / "epoch_2").is_dir()
    assert 0.0 <= s["test_accuracy"] <= 1.0


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adagrad"])
def test_baselines_run(tmp_path, mnist_dir, optimizer):
    s = run(
        [
            "--dataset",
            "mnist",
            "--data-dir",
            str(mnist_dir),
            "--epochs",
            "1",
            "--optimizer",
            optimizer,
            "--out",
            str(tmp_path),
            *TINY,
        ]
    )
    assert np.isfinite(s["train_loss"])


def test_resume_is_bit_identical(tmp_path, mnist_dir):
    common = ["--dataset", "mnist", "--data-dir", str(mnist_dir), *TINY[:-2], "--dropout", "0.5"]
    straight = run([*common, "--epochs", "2", "--out", str(tmp_path / "a")])
    run([*common, "--epochs", "1", "--out", str(tmp_path / "b")])
    resumed = run([*common, "--epochs", "2", "--out", str(tmp_path / "b"), "--resume"])
    for x, y in zip(
        jax.tree.leaves(straight["params"]), jax.tree.leaves(resumed["params"]), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2]


def test_non_finite_loss_stops_with_message_and_keeps_last_checkpoint(tmp_path, mnist_dir, capsys):
    common = ["--dataset", "mnist", "--data-dir", str(mnist_dir), *TINY, "--out", str(tmp_path)]
    run([*common, "--epochs", "1", "--optimizer", "sgd", "--lr", "1e-3"])
    ckpt = tmp_path / "checkpoints" / "epoch_1"
    before = sorted(p.stat().st_mtime_ns for p in ckpt.rglob("*") if p.is_file())
    code = train.main([*common, "--epochs", "3", "--resume", "--optimizer", "sgd", "--lr", "1e30"])
    assert code == 3
    assert "non-finite training loss" in capsys.readouterr().err
    after = sorted(p.stat().st_mtime_ns for p in ckpt.rglob("*") if p.is_file())
    assert before == after and not (tmp_path / "checkpoints" / "epoch_2").exists()


def test_four_devices_match_one_device(tmp_path, mnist_dir):
    assert len(jax.local_devices()) >= 4
    common = ["--dataset", "mnist", "--data-dir", str(mnist_dir), "--epochs", "2", *TINY]
    one = run([*common, "--devices", "1", "--out", str(tmp_path / "one")])
    four = run([*common, "--devices", "4", "--out", str(tmp_path / "four")])
    assert four["devices"] == 4
    assert four["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)
    assert four["test_loss"] == pytest.approx(one["test_loss"], rel=1e-4)


def test_vmapped_seeds_match_single_runs(tmp_path, mnist_dir):
    common = [
        "--dataset",
        "mnist",
        "--data-dir",
        str(mnist_dir),
        "--epochs",
        "1",
        *TINY[:-2],
        "--dropout",
        "0.5",
    ]
    both = run([*common, "--seeds", "0,1", "--out", str(tmp_path / "both")])
    single = run([*common, "--seed", "1", "--out", str(tmp_path / "one")])
    assert both["train_loss_per_seed"][1] == pytest.approx(single["train_loss"], rel=1e-4)
    assert both["train_loss_min"] <= both["train_loss"] <= both["train_loss_max"]
    summary = json.loads((tmp_path / "both" / "summary.json").read_text())
    assert len(summary["test_accuracy_per_seed"]) == 2


def test_bad_data_dir_exits_with_message(tmp_path, capsys):
    code = train.main(
        [
            "--dataset",
            "mnist",
            "--data-dir",
            str(tmp_path / "nope"),
            "--out",
            str(tmp_path),
            "--no-progress",
        ]
    )
    assert code == 2 and "nope" in capsys.readouterr().err
