"""The training command line and its loop: outputs, resume, faults and bad input.

Each reliability test injects one fault or bad value, then checks the outcome:
resumed, refused with a one-line message (exit code 2) leaving the disk as it was,
or stopped cleanly.
"""

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest
from datagen import make_mnist

pytest.importorskip("flax.nnx")
from inna_optax import train  # noqa: E402
from inna_optax.training import Config, distributed, fit, loop  # noqa: E402
from inna_optax.training.config import add_flags  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--width", "0.0625", "--batch-size", "8", "--no-progress", "--dropout", "0"]


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("mnist")
    make_mnist(d, n_train=64, n_test=32)
    return d


def args(mnist_dir, out, *extra):
    return ["--dataset", "mnist", "--data-dir", str(mnist_dir), *TINY, "--out", str(out), *extra]


def tiny(mnist_dir, **changes) -> Config:
    """The tiny NiN on the generated digits, as a Config."""
    values = dict(width=0.0625, batch_size=8, dropout=0.0, progress=False, epochs=2)
    return Config(dataset="mnist", data_dir=str(mnist_dir), **{**values, **changes})


def cli(capsys, argv):
    """Runs the command line; returns (exit code, stdout, stderr)."""
    code = train.main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_process(argv) -> subprocess.CompletedProcess:
    """The command line in a process of its own (one CPU device, as conftest sets)."""
    return subprocess.run(
        [sys.executable, "-m", "inna_optax.train", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


def snapshot(path: Path) -> dict:
    """Every file under `path` with its size and modification time."""
    return {
        str(p.relative_to(path)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# --------------------------------------------------------------------- outputs
def test_writes_metrics_summary_checkpoints_and_names_the_directory(tmp_path, mnist_dir, capsys):
    out = tmp_path / "out"
    code, stdout, _ = cli(capsys, args(mnist_dir, out, "--epochs", "3"))
    assert code == 0
    assert f"results in {out}" in stdout.splitlines()[-1]
    assert [m["epoch"] for m in metrics(out)] == [1, 2, 3]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["optimizer"] == "inna" and summary["epochs"] == 3
    assert (summary["train_examples_used"], summary["test_examples_used"]) == (64, 32)
    assert 0.0 <= summary["test_accuracy"] <= 1.0
    # --keep-checkpoints defaults to 2: the newest two are kept
    # checkpoints are named by the steps done: 8 an epoch
    assert sorted(int(p.name) for p in (out / "checkpoints").iterdir()) == [16, 24]


def test_every_config_field_is_a_flag_with_help():
    import argparse

    parser = argparse.ArgumentParser()
    add_flags(parser)
    dests = {a.dest: a for a in parser._actions if a.dest != "help"}
    for f in dataclasses.fields(Config):
        assert f.name in dests and dests[f.name].help


def test_default_out_is_a_new_directory_per_run(tmp_path, monkeypatch, capsys, mnist_dir):
    monkeypatch.chdir(tmp_path)
    argv = ["--dataset", "mnist", "--data-dir", str(mnist_dir), *TINY, "--epochs", "1"]
    assert cli(capsys, argv)[0] == 0
    assert cli(capsys, argv)[0] == 0
    runs = sorted((tmp_path / "results").iterdir())
    assert len(runs) == 2 and all((r / "summary.json").exists() for r in runs)
    assert all(r.name.startswith("mnist-inna-") for r in runs)


# ---------------------------------------------------------------------- resume
def test_resume_is_bit_identical(tmp_path, mnist_dir, capsys):
    common = ["--dataset", "mnist", "--data-dir", str(mnist_dir), *TINY[:-2], "--dropout", "0.5"]
    straight = fit(train.parse_args([*common, "--epochs", "2"]))
    assert cli(capsys, [*common, "--epochs", "1", "--out", str(tmp_path)])[0] == 0
    config = train.parse_args([*common, "--epochs", "2", "--out", str(tmp_path), "--resume"])
    with train.RunDir(config) as run:
        resumed = fit(config, run=run)
    assert resumed.first_epoch == 2
    for x, y in zip(jax.tree.leaves(straight.params), jax.tree.leaves(resumed.params), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
    assert [m["epoch"] for m in metrics(tmp_path)] == [1, 2]

    # the per-step curve survives the resume: the same windows as the straight run
    np.testing.assert_allclose(resumed.train_loss_steps, straight.train_loss_steps, rtol=1e-6)


def test_per_step_curve_averages_windows_of_the_epochs_losses(mnist_dir):
    """64 images of batch 8: 8 steps an epoch, in windows of 3, 3 and 2 steps; the
    windows, weighted by their steps, average to the epoch's mean loss."""
    history = fit(tiny(mnist_dir, epochs=2, log_every=3, seeds=(0, 1)))
    assert history.train_loss_steps.shape == (2, 6)
    np.testing.assert_array_equal(history.window_end_step, [3, 6, 8, 11, 14, 16])
    weights = np.asarray([3, 3, 2])
    for epoch in range(2):
        windows = history.train_loss_steps[:, 3 * epoch : 3 * epoch + 3]
        np.testing.assert_allclose(windows @ weights / 8, history.train_loss[:, epoch], rtol=1e-6)
    # the windows differ: a curve, not the epoch's mean repeated
    assert len(set(np.round(history.train_loss_steps[0], 6))) == 6


def test_metrics_record_the_per_step_curve(tmp_path, mnist_dir, capsys):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "2", "--log-every", "4"))[0] == 0
    records = metrics(tmp_path)
    assert [np.shape(r["train_loss_steps"]) for r in records] == [(1, 2), (1, 2)]
    for r in records:
        assert np.mean(r["train_loss_steps"]) == pytest.approx(r["train_loss"][0], rel=1e-6)


@pytest.mark.parametrize(
    "change, named",
    [
        (["--alpha", "0.3"], "--alpha"),
        (["--optimizer", "sgd"], "--optimizer"),
        (["--batch-size", "16"], "--batch-size"),
    ],
)
def test_resume_with_other_settings_is_refused_naming_them(
    tmp_path, mnist_dir, capsys, change, named
):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))[0] == 0
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, [*args(mnist_dir, tmp_path, "--epochs", "2", "--resume"), *change])
    assert code == 2 and named in err and len(err.strip().splitlines()) == 1
    assert snapshot(tmp_path) == before


def test_resume_with_another_dataset_is_refused(tmp_path, mnist_dir, capsys):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))[0] == 0
    other = ["--dataset", "digits", *TINY, "--out", str(tmp_path), "--epochs", "2", "--resume"]
    code, _, err = cli(capsys, other)
    assert code == 2 and "--dataset mnist -> digits" in err


def test_interrupted_save_is_ignored_on_resume(tmp_path, mnist_dir, capsys):
    """A process killed (SIGKILL) in the middle of saving epoch 2's checkpoint: the
    next --resume continues from epoch 1."""
    out = tmp_path / "out"
    script = textwrap.dedent(
        f"""
        import os, signal
        import orbax.checkpoint as ocp
        from inna_optax import train

        original = ocp.CheckpointManager.save

        def save(self, step, *a, **k):
            result = original(self, step, *a, **k)
            if step == 16:  # epoch 2's arrays (8 steps an epoch) are being written: die now
                os.kill(os.getpid(), signal.SIGKILL)
            return result

        ocp.CheckpointManager.save = save
        train.main({args(mnist_dir, out, "--epochs", "3")!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    leftovers = [p.name for p in (out / "checkpoints").iterdir()]
    assert any("tmp" in name for name in leftovers), leftovers
    code, stdout, err = cli(capsys, args(mnist_dir, out, "--epochs", "3", "--resume"))
    assert code == 0, err
    assert stdout.startswith("epoch 2/3")
    assert [m["epoch"] for m in metrics(out)] == [1, 2, 3]


@pytest.mark.parametrize("damage", ["garbage", "truncate"])
def test_damaged_checkpoint_is_reported_or_skipped_when_asked(tmp_path, mnist_dir, capsys, damage):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "2"))[0] == 0
    files = [p for p in (tmp_path / "checkpoints" / "16").rglob("*") if p.is_file()]
    data = max(files, key=lambda p: p.stat().st_size)  # the arrays' data file
    raw = data.read_bytes()
    if damage == "garbage":
        data.write_bytes(np.random.default_rng(0).bytes(len(raw)))
    else:
        data.write_bytes(raw[: len(raw) // 2])
    code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "3", "--resume"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "checkpoints/16" in err and "--resume-fallback" in err
    argv = args(mnist_dir, tmp_path, "--epochs", "3", "--resume", "--resume-fallback")
    code, stdout, err = cli(capsys, argv)
    assert code == 0 and stdout.startswith("epoch 2/3")
    # the skipped checkpoint is named
    assert "--resume-fallback: skipping and removing" in err and "checkpoints/16" in err
    assert [m["epoch"] for m in metrics(tmp_path)] == [1, 2, 3]


def test_longer_epochs_resume_after_a_finished_run(tmp_path, mnist_dir, capsys):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "2"))[0] == 0
    code, stdout, _ = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "3", "--resume"))
    assert code == 0 and stdout.startswith("epoch 3/3")
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1", "--resume"))
    assert code == 2 and "--epochs" in err and "3 epochs" in err
    assert snapshot(tmp_path) == before


# ------------------------------------------------------- one run per directory
def test_fresh_run_into_another_runs_directory_is_refused(tmp_path, mnist_dir, capsys):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))[0] == 0
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1", "--seeds", "1"))
    assert code == 2 and "--overwrite" in err and "--resume" in err
    assert snapshot(tmp_path) == before


def test_overwrite_replaces_only_the_runs_own_files(tmp_path, mnist_dir, capsys):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "2"))[0] == 0
    (tmp_path / "notes.txt").write_text("mine")
    code, _, _ = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1", "--overwrite"))
    assert code == 0
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert [m["epoch"] for m in metrics(tmp_path)] == [1]
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["8"]


def test_foreign_checkpoints_directory_is_never_deleted(tmp_path, mnist_dir, capsys):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "precious.bin").write_bytes(b"x")
    for extra in ([], ["--overwrite"]):
        code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1", *extra))
        assert code == 2 and "checkpoints" in err
    assert (tmp_path / "checkpoints" / "precious.bin").read_bytes() == b"x"


def test_a_second_writer_is_locked_out(tmp_path, mnist_dir, capsys):
    config = train.parse_args(args(mnist_dir, tmp_path, "--epochs", "1"))
    with train.RunDir(config):
        code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))
    assert code == 2 and "another run" in err and str(os.getpid()) in err
    assert not (tmp_path / "metrics.jsonl").exists()


# ------------------------------------------------------------------ bad input
BAD = [
    (["--dropout", "1"], "--dropout"),
    (["--dropout", "2"], "--dropout"),
    (["--dropout", "-0.5"], "--dropout"),
    (["--dropout", "nan"], "--dropout"),
    (["--train-examples", "-5"], "--train-examples"),
    (["--test-examples", "0"], "--test-examples"),
    (["--seeds", "0,0"], "--seeds"),
    (["--seeds", "a"], "--seeds"),
    (["--seed", "-1"], "--seeds"),
    (["--width", "1e-9"], "--width"),
    (["--width", "inf"], "--width"),
    (["--devices", "0"], "--devices"),
    (["--devices", "999"], "--devices"),
    (["--alpha", "inf"], "--alpha"),
    (["--beta", "0"], "--beta"),
    (["--lr", "-1"], "--lr"),
    (["--decay-power", "1.5"], "--decay-power"),
    (["--epochs", "0"], "--epochs"),
    (["--optimizer", "rmsprop"], "--optimizer"),
    (["--optimizer", "sgd", "--weight-decay", "0.1"], "--weight-decay"),
    (["--weight-decay", "-0.1"], "--weight-decay"),
    (["--schedule", "linear"], "--schedule"),
    (["--batch-size", "3"], "--batch-size"),  # not divisible by the 8 test devices
]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, mnist_dir):
    out = tmp_path_factory.mktemp("finished")
    assert train.main(args(mnist_dir, out, "--epochs", "1")) == 0
    return out


@pytest.mark.parametrize("bad, named", BAD, ids=[" ".join(b) for b, _ in BAD])
def test_bad_value_exits_2_with_one_line_and_touches_nothing(
    finished_run, mnist_dir, capsys, bad, named
):
    capsys.readouterr()
    before = snapshot(finished_run)
    code, _, err = cli(capsys, [*args(mnist_dir, finished_run, "--epochs", "2", "--resume"), *bad])
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and named in err, err
    assert snapshot(finished_run) == before


def test_out_that_cannot_be_a_directory_is_a_clear_error(tmp_path, mnist_dir, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile, afile / "sub"):
        code, _, err = cli(capsys, args(mnist_dir, out, "--epochs", "1"))
        assert code == 2 and "--out" in err and len(err.strip().splitlines()) == 1
    assert afile.read_text() == "x"


def test_no_test_images_is_a_clear_error(tmp_path, capsys):
    make_mnist(tmp_path / "data", n_train=32, n_test=0)
    code, _, err = cli(capsys, args(tmp_path / "data", tmp_path / "out", "--epochs", "1"))
    assert code == 2 and "no test images" in err


def test_download_offline_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import urllib.error
    import urllib.request

    def offline(*a, **k):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    argv = ["--dataset", "mnist", "--download", "--cache-dir", str(tmp_path / "cache"), *TINY]
    code, _, err = cli(capsys, [*argv, "--out", str(tmp_path / "out")])
    assert code == 2 and "download failed" in err and len(err.strip().splitlines()) == 1


def test_bad_data_dir_exits_with_message(tmp_path, capsys):
    code, _, err = cli(capsys, args(tmp_path / "nope", tmp_path / "out", "--epochs", "1"))
    assert code == 2 and "nope" in err


# ----------------------------------------------------------- faults in a run
def test_non_finite_loss_stops_with_exit_3_and_keeps_the_last_checkpoint(
    tmp_path, mnist_dir, capsys
):
    sgd = ["--optimizer", "sgd"]
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1", *sgd, "--lr", "1e-3"))[0] == 0
    before = snapshot(tmp_path / "checkpoints")
    argv = args(mnist_dir, tmp_path, "--epochs", "3", "--resume", *sgd, "--lr", "1e-3")
    argv[argv.index("--lr") + 1] = "1e30"  # a resumed run may not change --lr: test its message
    code, _, err = cli(capsys, argv)
    assert code == 2 and "--lr" in err  # refused: the stored run used 1e-3
    code, _, err = cli(
        capsys, args(mnist_dir, tmp_path / "b", "--epochs", "2", *sgd, "--lr", "1e30")
    )
    assert code == 3 and "non-finite training loss at epoch 1" in err
    assert "no checkpoint was saved yet" in err and "smaller --lr" in err
    assert snapshot(tmp_path / "checkpoints") == before


def test_ctrl_c_saves_exits_130_and_the_run_resumes(tmp_path, mnist_dir, capsys, monkeypatch):
    """SIGINT during epoch 2's evaluation: epoch 2 is finished and saved, then the
    run stops with 130 and resumes at epoch 3."""
    import signal

    real = loop.evaluate
    calls = []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    monkeypatch.setattr(loop, "evaluate", interrupted)
    code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "3"))
    assert code == 130 and "SIGINT: stopped at epoch 3, step 0" in err and "--resume" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [8, 16]
    monkeypatch.setattr(loop, "evaluate", real)
    code, stdout, _ = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "3", "--resume"))
    assert code == 0 and stdout.startswith("epoch 3/3")


def test_ctrl_c_before_training_writes_nothing(tmp_path, mnist_dir, capsys, monkeypatch):
    def interrupted(config, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "prepare", interrupted)
    code, _, err = cli(capsys, args(mnist_dir, tmp_path / "out", "--epochs", "1"))
    assert code == 130 and "before training started: nothing was written" in err
    assert not (tmp_path / "out").exists()


def test_piped_output_has_no_progress_bar(tmp_path, mnist_dir):
    argv = args(mnist_dir, tmp_path, "--epochs", "1")
    argv.remove("--no-progress")
    proc = subprocess.run(
        [sys.executable, "-m", "inna_optax.train", *argv], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stdout + proc.stderr and "step/s" not in proc.stderr


def test_progress_off_a_terminal_prints_a_line_every_interval(capsys):
    from inna_optax.training.loop import _Progress

    bar = _Progress(True, total=3, desc="fig3 search", every=0.0)
    for _ in range(3):
        bar.step(lambda: 1.25)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3 and lines[-1].startswith("fig3 search: step 3/3, ")
    assert lines[-1].endswith("loss 1.2500") and "\r" not in lines[-1]
    quiet = _Progress(False, total=3, desc="off", every=0.0)
    quiet.step(lambda: 1.0)
    assert capsys.readouterr().err == ""


# ------------------------------------------------- devices and vmapped seeds
def test_four_devices_match_one_device(mnist_dir):
    assert len(jax.local_devices()) >= 4
    base = tiny(mnist_dir)
    one = fit(dataclasses.replace(base, devices=1))
    four = fit(dataclasses.replace(base, devices=4))
    assert four.devices == 4
    np.testing.assert_allclose(four.train_loss, one.train_loss, rtol=1e-4)
    # batch statistics are summed in another order over 4 shards: the running averages
    # used at test time differ by rounding (3e-4 measured after two tiny epochs)
    np.testing.assert_allclose(four.test_loss, one.test_loss, rtol=2e-3)
    plain = [fit(dataclasses.replace(base, devices=d, norm=False)) for d in (1, 4)]
    np.testing.assert_allclose(plain[1].test_loss, plain[0].test_loss, rtol=1e-4)


def _device_bytes(tree, device) -> int:
    return sum(
        shard.data.nbytes
        for leaf in jax.tree.leaves(tree)
        for shard in leaf.addressable_shards
        if shard.device == device
    )


@pytest.mark.parametrize("optimizer", ["inna", "innaprop", "adam"])
def test_sharded_params_match_replicated_and_hold_a_quarter_each(mnist_dir, optimizer):
    # LeCun init without batch norm: losses that move, and no batch statistics
    # whose reductions the sharding reorders (with batch norm: rounding, below)
    base = tiny(mnist_dir, devices=4, norm=False, init="lecun", optimizer=optimizer)
    replicated = fit(base)
    sharded = fit(dataclasses.replace(base, shard="params"))
    np.testing.assert_allclose(sharded.train_loss, replicated.train_loss, rtol=1e-5)
    np.testing.assert_allclose(sharded.test_loss, replicated.test_loss, rtol=1e-5)
    assert replicated.train_loss[0, -1] < replicated.train_loss[0, 0]  # it trains
    for tree in (sharded.params[0], sharded.opt_state[0]):
        total = sum(leaf.nbytes for leaf in jax.tree.leaves(tree))
        unsplit = sum(
            leaf.nbytes for leaf in jax.tree.leaves(tree) if leaf.sharding.is_fully_replicated
        )
        assert unsplit < total / 10  # only biases of odd size and counts stay whole
        for device in jax.local_devices()[:4]:
            assert _device_bytes(tree, device) <= total / 4 + unsplit
    # the optimizer's state keeps its parameter's sharding
    specs = {leaf.shape: leaf.sharding.spec for leaf in jax.tree.leaves(sharded.params[0])}
    for leaf in jax.tree.leaves(sharded.opt_state[0]):
        if leaf.shape in specs:
            assert leaf.sharding.spec == specs[leaf.shape]


def test_sharded_params_with_batch_norm_match_to_rounding(mnist_dir):
    base = tiny(mnist_dir, devices=4)
    replicated = fit(base)
    sharded = fit(dataclasses.replace(base, shard="params"))
    np.testing.assert_allclose(sharded.train_loss, replicated.train_loss, rtol=2e-3)


def test_vmapped_seeds_match_single_runs(mnist_dir):
    base = tiny(mnist_dir, epochs=1, dropout=0.5)
    both = fit(dataclasses.replace(base, seeds=(0, 1), replica_group=2))
    single = fit(dataclasses.replace(base, seeds=(1,)))
    np.testing.assert_allclose(both.train_loss[1], single.train_loss[0], rtol=1e-4)
    np.testing.assert_allclose(both.test_loss[1], single.test_loss[0], rtol=1e-4)


def test_a_sweep_replica_equals_the_same_run_alone(mnist_dir):
    """Per-replica hyperparameters: replica 1 of a grid equals its own run."""
    base = tiny(mnist_dir, seeds=(0, 0))
    sweep = {"lr": [0.1, 0.05], "alpha": [0.5, 0.1], "beta": [0.1, 1.0]}
    grid = fit(base, sweep=sweep)
    alone = fit(dataclasses.replace(base, seeds=(0,), lr=0.05, alpha=0.1, beta=1.0))
    np.testing.assert_allclose(grid.train_loss[1], alone.train_loss[0], rtol=1e-5)
    together = fit(dataclasses.replace(base, replica_group=2), sweep=sweep)
    np.testing.assert_allclose(together.train_loss, grid.train_loss, rtol=1e-4)


# ------------------------------------------------------ the paper's recipe learns
@pytest.mark.parametrize("optimizer", ["sgd", "inna", "adam", "adagrad"])
def test_full_depth_nin_with_the_papers_settings_leaves_the_plateau(tmp_path, optimizer):
    """All nine convolutions, dropout 0.5, q = 1/2, psi_0 aligned with the gradient and
    the registry's default gamma_0: 300 steps cut the training loss 2.5x (measured: SGD
    3.2x, INNA 10x, Adam 3.2x, Adagrad 26x; the plain NiN of before, He init and
    gamma_0 0.1: SGD 1.85x and INNA 2.0x)."""
    make_mnist(tmp_path, n_train=960, n_test=64)
    config = Config(
        dataset="mnist",
        data_dir=str(tmp_path),
        optimizer=optimizer,
        width=0.125,
        epochs=10,
        progress=False,
    )
    assert (config.dropout_rate, config.decay_power, config.psi_init) == (0.5, 0.5, "gradient")
    history = fit(config)  # 300 steps of 32
    first, last = history.train_loss[0, 0], history.train_loss[0, -1]
    assert last < first / 2.5, history.train_loss[0]


# ------------------------------------------------- CPU devices
@pytest.mark.parametrize(
    "flag, env, expected",
    [
        # one per core, a divisor of the batch of 8
        ([], {}, distributed.default_cpu_devices(8, distributed.usable_cores())),
        (["--cpu-devices", "1"], {}, 1),
        (["--cpu-devices", "2"], {}, 2),
        ([], {"JAX_NUM_CPU_DEVICES": "4"}, 4),  # the environment's count wins
    ],
)
def test_cli_cpu_devices(tmp_path, mnist_dir, flag, env, expected):
    argv = args(mnist_dir, tmp_path / "run", "--epochs", "1", *flag)
    clean = {k: v for k, v in os.environ.items() if k not in ("JAX_NUM_CPU_DEVICES", "XLA_FLAGS")}
    proc = subprocess.run(
        [sys.executable, "-m", "inna_optax.train", *argv],
        cwd=ROOT,
        env={**clean, "JAX_PLATFORMS": "cpu", **env},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["devices"] == expected


@pytest.mark.parametrize(
    "batch, cores, expected", [(32, 2, 2), (32, 1, 1), (32, 6, 4), (32, 64, 32), (10, 4, 2)]
)
def test_default_cpu_devices_is_the_largest_divisor_of_the_batch_up_to_the_cores(
    batch, cores, expected
):
    assert distributed.default_cpu_devices(batch, cores) == expected


def test_cpu_devices_default_yields_to_flags_and_environment():
    config = Config(batch_size=32)
    assert distributed.cpu_devices(config, {}, cores=8) == 8
    assert distributed.cpu_devices(Config(batch_size=32, cpu_devices=1), {}, cores=8) == 1
    assert distributed.cpu_devices(Config(batch_size=32, devices=2), {}, cores=8) == 2
    assert distributed.cpu_devices(config, {"JAX_NUM_CPU_DEVICES": "3"}, cores=8) is None
    flags = {"XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    assert distributed.cpu_devices(config, flags, cores=8) is None
    several = Config(batch_size=32, coordinator="h:1", num_processes=2, process_id=0)
    assert distributed.cpu_devices(several, {}, cores=8) is None


# --------------------------------------------------- refusals leave nothing behind
def test_a_default_given_explicitly_on_resume_is_not_a_change(tmp_path, mnist_dir, capsys):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))[0] == 0
    same = ["--alpha", "0.5", "--beta", "0.1", "--lr", "1", "--schedule", "power"]
    code, _, err = cli(capsys, [*args(mnist_dir, tmp_path, "--epochs", "2", "--resume"), *same])
    assert code == 0, err
    code, _, err = cli(
        capsys, [*args(mnist_dir, tmp_path, "--epochs", "3", "--resume"), "--alpha", "0.4"]
    )
    assert code == 2 and "--alpha 0.5 -> 0.4" in err


@pytest.mark.parametrize("content", [[1, 2], "text", {"dataset": "mnist", "no_such_flag": 1}])
def test_a_run_json_of_the_wrong_shape_is_one_line(tmp_path, mnist_dir, capsys, content):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))[0] == 0
    (tmp_path / "run.json").write_text(json.dumps({"config": content}))
    code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "2", "--resume"))
    assert code == 2 and "run.json is unreadable" in err
    assert len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(
    "bad, named",
    [
        (["--beta", "1e300"], "--beta: must be within float32's range"),
        (["--lr", "1e-40"], "--lr: must be within float32's range"),
        (["--out", ""], "--out: must not be empty"),
        (["--data-dir", "/nonexistent/mnist"], "/nonexistent/mnist: no such file"),
        (["--devices", "99"], "--devices: 99 asked"),
        (["--train-examples", "100000"], "--train-examples: 100,000 asked"),
    ],
)
def test_refused_runs_create_no_directory(tmp_path, mnist_dir, capsys, monkeypatch, bad, named):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "new" / "run"
    argv = [*args(mnist_dir, out, "--epochs", "1"), *bad]
    code, _, err = cli(capsys, argv)
    assert code == 2 and named in err and len(err.strip().splitlines()) == 1, err
    assert sorted(p.name for p in tmp_path.iterdir()) == [], "nothing is created"


def test_a_refusal_after_the_directory_opened_removes_what_it_made(tmp_path, mnist_dir, capsys):
    """An --out whose checkpoint cannot be read: the lock the refused run made goes."""
    assert cli(capsys, args(mnist_dir, tmp_path / "run", "--epochs", "1"))[0] == 0
    (tmp_path / "run" / ".lock").unlink()
    for p in (tmp_path / "run" / "checkpoints").rglob("*"):
        if p.is_file() and p.stat().st_size > 1000:
            p.write_bytes(b"garbage")
    code, _, err = cli(capsys, args(mnist_dir, tmp_path / "run", "--epochs", "2", "--resume"))
    assert code == 2
    assert not (tmp_path / "run" / ".lock").exists()


@pytest.mark.parametrize("out", ["x" * 300, "/".join(["y" * 200] * 25)])
def test_an_out_too_long_for_the_system_is_one_line(tmp_path, mnist_dir, capsys, out):
    code, _, err = cli(capsys, args(mnist_dir, tmp_path / out, "--epochs", "1"))
    assert code == 2 and "File name too long" in err and len(err.strip().splitlines()) == 1


def test_a_cut_last_line_of_metrics_is_dropped_and_the_run_resumes(tmp_path, mnist_dir, capsys):
    """A crash while appending epoch 2's line, before its checkpoint was saved."""
    import shutil

    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "2"))[0] == 0
    path = tmp_path / "metrics.jsonl"
    lines = path.read_text().splitlines()
    path.write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
    shutil.rmtree(tmp_path / "checkpoints" / "16")
    code, stdout, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "3", "--resume"))
    assert code == 0, err
    assert "its last line was cut" in err
    assert [m["epoch"] for m in metrics(tmp_path)] == [1, 2, 3]


def test_a_damaged_line_inside_metrics_is_refused(tmp_path, mnist_dir, capsys):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "2"))[0] == 0
    path = tmp_path / "metrics.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("{broken\n" + lines[1] + "\n")
    code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "3", "--resume"))
    assert code == 2 and "metrics.jsonl: line 1 is damaged" in err


def test_a_full_disk_while_saving_is_one_line(tmp_path, mnist_dir, capsys, monkeypatch):
    import errno

    import orbax.checkpoint as ocp

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ocp.CheckpointManager, "save", full)
    code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))
    assert code == 2 and "the disk is full" in err and len(err.strip().splitlines()) == 1, err


def test_a_full_tmpfs_is_one_line_and_leaves_no_temporary_file(tmp_path, mnist_dir):
    """A real file system that runs out of space: a 300 KiB tmpfs holds run.json and
    metrics but not a checkpoint of the tiny NiN."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True)  # fmt: skip
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        proc = cli_process(args(mnist_dir, mount / "run", "--epochs", "1"))
        assert proc.returncode == 2, proc.stderr[-3000:]
        assert "the disk is full" in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-3000:]
        assert not list(mount.rglob(".*.tmp"))
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_damaged_checkpoint_is_one_line_from_the_command_line(tmp_path, mnist_dir, capsys):
    """As a process (tensorstore's late callbacks print at exit): one line, no traceback."""
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))[0] == 0
    files = [p for p in (tmp_path / "checkpoints" / "8").rglob("*") if p.is_file()]
    biggest = max(files, key=lambda p: p.stat().st_size)
    biggest.write_bytes(biggest.read_bytes()[:10])
    proc = cli_process(args(mnist_dir, tmp_path, "--epochs", "2", "--resume"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-3000:]
    assert "checkpoints/8" in proc.stderr


# ------------------------------------------------------- preemption: SIGTERM, SIGINT
def _final_digest(out: Path) -> str:
    newest = max(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    return json.loads((out / "checkpoints" / str(newest) / "meta" / "metadata").read_text())[
        "digest"
    ]


def _run_signalled(out: Path, mnist_dir, extra, at_step: int, sig: str, again_in_save=False):
    """Runs the command line in a subprocess that sends itself `sig` (a real signal)
    as step `at_step` starts; with `again_in_save`, twice more while saving."""
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from inna_optax import train
        from inna_optax.training import distributed, run_dir

        real_batch, calls = distributed.global_batch, []

        def batch(sharding, array, idx):
            if array.ndim > 1:  # the images: once per step
                calls.append(1)
                if len(calls) == {at_step}:
                    os.kill(os.getpid(), signal.{sig})
            return real_batch(sharding, array, idx)

        distributed.global_batch = batch
        if {again_in_save}:
            real_save = run_dir.RunDir.save

            def save(self, *a, **k):
                os.kill(os.getpid(), signal.{sig})
                os.kill(os.getpid(), signal.{sig})
                return real_save(self, *a, **k)

            run_dir.RunDir.save = save
        sys.exit(train.main({args(mnist_dir, out, *extra)!r}))
        """
    )
    return subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_sigterm_mid_epoch_saves_that_step_and_resume_is_bit_identical(tmp_path, mnist_dir, capsys):
    """8 steps an epoch: SIGTERM as step 11 starts; the run finishes it, saves
    checkpoint 11, exits 143; --resume then ends where an uninterrupted run ends,
    bit for bit (dropout on: the random bits follow the step too)."""
    extra = ["--epochs", "3", "--dropout", "0.5"]
    proc = _run_signalled(tmp_path / "cut", mnist_dir, extra, at_step=11, sig="SIGTERM")
    assert proc.returncode == 143, proc.stderr[-3000:]
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("SIGTERM: stopped at epoch 2, step 3"), err
    assert "continue with --resume" in err[0]
    assert 11 in [int(p.name) for p in (tmp_path / "cut" / "checkpoints").iterdir()]
    # the resumed and the straight run in processes like the first (one CPU device)
    resumed = cli_process([*args(mnist_dir, tmp_path / "cut", *extra), "--resume"])
    assert resumed.returncode == 0 and resumed.stdout.startswith("epoch 2/3"), resumed.stderr
    straight = cli_process(args(mnist_dir, tmp_path / "straight", *extra))
    assert straight.returncode == 0, straight.stderr
    assert _final_digest(tmp_path / "cut") == _final_digest(tmp_path / "straight")
    assert metrics(tmp_path / "cut") == metrics(tmp_path / "straight")


def test_checkpoint_every_resumes_mid_epoch_bit_identically(tmp_path, mnist_dir, capsys):
    """--checkpoint-every 3: a run that lost everything after step 12 (a crash)
    resumes there and ends as the run that did not crash."""
    import shutil

    extra = ["--epochs", "2", "--dropout", "0.5", "--checkpoint-every", "3"]
    out = tmp_path / "run"
    assert cli(capsys, [*args(mnist_dir, out, *extra), "--keep-checkpoints", "9"])[0] == 0
    steps = sorted(int(p.name) for p in (out / "checkpoints").iterdir())
    assert steps == [3, 6, 8, 9, 12, 15, 16]  # every 3 steps and at each epoch's end
    straight = _final_digest(out), metrics(out)
    for step in (15, 16):
        shutil.rmtree(out / "checkpoints" / str(step))
    code, stdout, _ = cli(capsys, [*args(mnist_dir, out, *extra), "--resume"])
    assert code == 0 and stdout.startswith("epoch 2/2")
    assert (_final_digest(out), metrics(out)) == straight


def test_a_second_ctrl_c_during_the_save_waits_for_it(tmp_path, mnist_dir):
    proc = _run_signalled(
        tmp_path / "run", mnist_dir, ["--epochs", "2"], at_step=5, sig="SIGINT", again_in_save=True
    )
    assert proc.returncode == 130, proc.stderr[-3000:]
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("SIGINT: stopped at epoch 1, step 5"), err
    assert [int(p.name) for p in (tmp_path / "run" / "checkpoints").iterdir()] == [5]
