"""Run directories (`training.run_dir`): resume, bit-identical after an
interruption (SIGTERM, Ctrl-C, mid-epoch checkpoints), refusals of changed settings,
damaged checkpoints and metrics, locks and overwrites."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import numpy as np
import pytest

pytest.importorskip("flax.nnx")
from runs import ROOT, TINY, args, cli, cli_process, metrics, snapshot  # noqa: E402

from inna_optax import train  # noqa: E402
from inna_optax.training import fit, trainer  # noqa: E402


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_resume_with_another_dataset_is_refused(tmp_path, mnist_dir, capsys):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))[0] == 0
    other = ["--dataset", "digits", *TINY, "--out", str(tmp_path), "--epochs", "2", "--resume"]
    code, _, err = cli(capsys, other)
    assert code == 2 and "--dataset mnist -> digits" in err


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_longer_epochs_resume_after_a_finished_run(tmp_path, mnist_dir, capsys):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "2"))[0] == 0
    code, stdout, _ = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "3", "--resume"))
    assert code == 0 and stdout.startswith("epoch 3/3")
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1", "--resume"))
    assert code == 2 and "--epochs" in err and "3 epochs" in err
    assert snapshot(tmp_path) == before


def _strict(text: str):
    """json.loads refusing NaN and Infinity, as JavaScript's JSON.parse and jq do."""

    def refuse(name):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.slow
def test_resuming_a_finished_run_writes_strict_json_without_a_rate(tmp_path, mnist_dir, capsys):
    """Nothing left to train: no step was timed, so there is no rate (null in the
    summary, none in the last line), never NaN or "0.0 steps/s"."""
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))[0] == 0
    code, stdout, _ = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1", "--resume"))
    assert code == 0 and "steps/s" not in stdout
    summary = _strict((tmp_path / "summary.json").read_text())
    assert summary["steps_per_second"] is None
    assert summary["steps_per_second_note"].startswith("not measured: no step was timed")
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        _strict(line)


@pytest.mark.slow
def test_fresh_run_into_another_runs_directory_is_refused(tmp_path, mnist_dir, capsys):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))[0] == 0
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1", "--seeds", "1"))
    assert code == 2 and "--overwrite" in err and "--resume" in err
    assert snapshot(tmp_path) == before


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_default_given_explicitly_on_resume_is_not_a_change(tmp_path, mnist_dir, capsys):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))[0] == 0
    same = ["--alpha", "0.5", "--beta", "0.1", "--lr", "1", "--schedule", "power"]
    code, _, err = cli(capsys, [*args(mnist_dir, tmp_path, "--epochs", "2", "--resume"), *same])
    assert code == 0, err
    code, _, err = cli(
        capsys, [*args(mnist_dir, tmp_path, "--epochs", "3", "--resume"), "--alpha", "0.4"]
    )
    assert code == 2 and "--alpha 0.5 -> 0.4" in err


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_damaged_line_inside_metrics_is_refused(tmp_path, mnist_dir, capsys):
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "2"))[0] == 0
    path = tmp_path / "metrics.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("{broken\n" + lines[1] + "\n")
    code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "3", "--resume"))
    assert code == 2 and "metrics.jsonl: line 1 is damaged" in err


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


@pytest.mark.slow
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


@pytest.mark.slow
def test_sighup_saves_that_step_and_exits_129(tmp_path, mnist_dir):
    """A closed terminal (SIGHUP) stops the run as SIGTERM does: the step finishes,
    its checkpoint is saved, one line names the signal, exit code 129."""
    proc = _run_signalled(tmp_path / "cut", mnist_dir, ["--epochs", "2"], at_step=5, sig="SIGHUP")
    assert proc.returncode == 129, proc.stderr[-3000:]
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("SIGHUP: stopped at epoch 1, step 5"), err
    assert 5 in [int(p.name) for p in (tmp_path / "cut" / "checkpoints").iterdir()]


@pytest.mark.slow
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


@pytest.mark.slow
def test_a_second_ctrl_c_during_the_save_waits_for_it(tmp_path, mnist_dir):
    proc = _run_signalled(
        tmp_path / "run", mnist_dir, ["--epochs", "2"], at_step=5, sig="SIGINT", again_in_save=True
    )
    assert proc.returncode == 130, proc.stderr[-3000:]
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("SIGINT: stopped at epoch 1, step 5"), err
    assert [int(p.name) for p in (tmp_path / "run" / "checkpoints").iterdir()] == [5]


@pytest.mark.slow
def test_ctrl_c_saves_exits_130_and_the_run_resumes(tmp_path, mnist_dir, capsys, monkeypatch):
    """SIGINT during epoch 2's evaluation: epoch 2 is finished and saved, then the
    run stops with 130 and resumes at epoch 3."""
    import signal

    real = trainer.Trainer.evaluate
    calls = []

    def interrupted(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    monkeypatch.setattr(trainer.Trainer, "evaluate", interrupted)
    code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "3"))
    assert code == 130 and "SIGINT: stopped at epoch 3, step 0" in err and "--resume" in err
    assert len(err.strip().splitlines()) == 1
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [8, 16]
    monkeypatch.setattr(trainer.Trainer, "evaluate", real)
    code, stdout, _ = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "3", "--resume"))
    assert code == 0 and stdout.startswith("epoch 3/3")


def test_ctrl_c_before_training_writes_nothing(tmp_path, mnist_dir, capsys, monkeypatch):
    def interrupted(config, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "prepare", interrupted)
    code, _, err = cli(capsys, args(mnist_dir, tmp_path / "out", "--epochs", "1"))
    assert code == 130 and "before training started: nothing was written" in err
    assert not (tmp_path / "out").exists()


_FAILED_SAVE = """
import shutil, sys
import jax.numpy as jnp
from inna_optax import train
from inna_optax.training import Config
from inna_optax.training.run_dir import RunDir, RunDirError
out = sys.argv[1]
run = RunDir(Config(dataset="digits", out=out, progress=False))
run.begin()
run.save(1, {"w": jnp.ones(3)}, epochs_done=0)
shutil.rmtree(out + "/checkpoints")  # the folder replaced by a file mid-run
open(out + "/checkpoints", "w").close()
try:
    run.save(2, {"w": jnp.ones(3)}, epochs_done=1)
except RunDirError as e:
    print(f"error: {e}", file=sys.stderr)
run.close()
train.exit_process(2)
"""


def test_a_failed_checkpoint_save_ends_the_process_instead_of_hanging(tmp_path):
    # orbax leaves threads waiting minutes for a signal the failed save never sends;
    # `python -m inna_optax.train` ends through exit_process, which does not join them
    done = subprocess.run(
        [sys.executable, "-c", _FAILED_SAVE, str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "while saving step 2; checkpoint 1 is intact" in done.stderr
    source = (ROOT / "inna_optax" / "train.py").read_text()
    assert source.rstrip().endswith("exit_process(main())")


def _replace_checkpoints_by_a_file(out):
    shutil.rmtree(out / "checkpoints")
    (out / "checkpoints").write_text("")


def _empty_checkpoints(out):
    shutil.rmtree(out / "checkpoints")
    (out / "checkpoints").mkdir()


@pytest.mark.slow
@pytest.mark.parametrize(
    "damage, says",
    [
        (_replace_checkpoints_by_a_file, "is a file, not the run's checkpoints"),
        (_empty_checkpoints, "holds no checkpoint although metrics.jsonl records 1 epoch"),
    ],
)
def test_resume_without_its_checkpoints_is_refused_not_restarted(
    tmp_path, mnist_dir, capsys, damage, says
):
    # before: the run started again from step 0, emptying metrics.jsonl
    assert cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))[0] == 0
    damage(tmp_path)
    before = snapshot(tmp_path)
    code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "2", "--resume"))
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_resume_on_replaced_data_is_refused(tmp_path, capsys):
    from datagen import make_mnist

    data, out = tmp_path / "mnist", tmp_path / "out"
    make_mnist(data, n_train=64, n_test=32)
    assert cli(capsys, args(data, out, "--epochs", "1"))[0] == 0
    make_mnist(data, n_train=64, n_test=32, seed=1)  # the files replaced: other pixels
    before = snapshot(out)
    code, _, err = cli(capsys, args(data, out, "--epochs", "2", "--resume"))
    assert code == 2 and "the data differ from those the run" in err, err
    assert snapshot(out) == before
    assert "--resume-other-data" in err
    # deliberately: it goes on with these
    deliberate = [*args(data, out, "--epochs", "2", "--resume"), "--resume-other-data"]
    assert cli(capsys, deliberate)[0] == 0


@pytest.mark.slow
def test_a_class_added_to_an_image_folder_is_named_on_resume_not_the_checkpoint(tmp_path, capsys):
    from datagen import make_folder

    data, out = tmp_path / "images", tmp_path / "out"
    make_folder(data, classes=("cat", "dog"), per_class=4)
    flags = ["--dataset", "folder", "--data-dir", str(data), *TINY, "--out", str(out)]
    assert cli(capsys, [*flags, "--epochs", "1"])[0] == 0
    make_folder(tmp_path / "more", classes=("cow",), per_class=4)
    shutil.copytree(tmp_path / "more" / "train" / "cow", data / "train" / "cow")
    shutil.copytree(tmp_path / "more" / "test" / "cow", data / "test" / "cow")
    code, _, err = cli(capsys, [*flags, "--epochs", "2", "--resume"])
    assert code == 2 and "the data set has 3 classes (added: cow)" in err, err
    assert "trained on 2:" in err and "unreadable" not in err
    # the same count of classes, one of them another: named, not "files replaced"
    shutil.rmtree(data / "train" / "cat")
    shutil.rmtree(data / "test" / "cat")
    code, _, err = cli(capsys, [*flags, "--epochs", "2", "--resume"])
    assert code == 2 and "2 classes (added: cow; gone: cat)" in err, err
    assert "trained on 2 others" in err and "files replaced" not in err


def test_of_two_signals_during_one_long_call_the_first_to_arrive_counts():
    """SIGTERM, then SIGINT 5 ms later, both while the main thread is inside one call
    (a compiled step; here a sort): Python runs their handlers after it, SIGINT's
    first, as it goes by signal number. The run still reports SIGTERM."""
    import signal
    import threading
    import time

    from inna_optax.training.preemption import StopSignals

    def send(started, sent):
        started.wait()
        time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.005)
        os.kill(os.getpid(), signal.SIGINT)
        sent.append(time.perf_counter())

    # A sort of about half a second on this machine, sized from a small one (a fixed
    # size ran in 0.24 s on a faster machine, before the signals were sent).
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    np.sort(rng.random(1_000_000))
    size = int(1_000_000 * min(200, max(4, 0.5 / (time.perf_counter() - start))))
    values = rng.random(size)
    started, sent = threading.Event(), []
    with StopSignals() as stop:
        sender = threading.Thread(target=send, args=(started, sent))
        sender.start()
        started.set()
        np.sort(values)  # one call, no Python between; the sender runs meanwhile
        ended = time.perf_counter()
        sender.join()
    assert sent and sent[0] < ended, "the sort ended before both signals were sent"
    assert stop.received == signal.SIGTERM and stop.exit_code == 143


def test_a_metrics_file_that_cannot_be_written_is_named_not_the_checkpoints(tmp_path):
    import jax.numpy as jnp

    from inna_optax.training import Config
    from inna_optax.training.run_dir import RunDir, RunDirError

    with RunDir(Config(dataset="digits", out=str(tmp_path), progress=False)) as run:
        run.begin()
        run.save(4, {"w": jnp.ones(3)}, {"epoch": 1}, epochs_done=1)
        (tmp_path / "metrics.jsonl").unlink()
        (tmp_path / "metrics.jsonl").mkdir()  # appending to it fails (IsADirectoryError)
        with pytest.raises(RunDirError) as e:
            run.save(8, {"w": jnp.ones(3)}, {"epoch": 2}, epochs_done=2)
    assert str(e.value).startswith(f"{tmp_path / 'metrics.jsonl'}: cannot be written")
    assert str(e.value).endswith("at step 8; checkpoint 4 is intact")


def _make_immutable(folder):
    if shutil.which("chattr") is None:
        pytest.skip("no chattr on this machine")
    done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"chattr +i is not possible here: {done.stderr.strip()}")


def _replace_by_a_file(folder):
    import time

    for attempt in range(100):  # orbax may be writing there: move the folder away whole
        try:
            folder.rename(folder.parent / f"moved-{attempt}")
            folder.write_text("")
            return
        except OSError:  # it made the folder again in between; try once more
            time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("damage", [_make_immutable, _replace_by_a_file])
def test_checkpoints_unwritable_mid_run_end_the_command_line_within_seconds(
    tmp_path, mnist_dir, damage
):
    """The command line, saving every step, has its checkpoints folder made immutable
    (`chattr +i`, as root) or replaced by a file after its first checkpoint: it exits
    2 with one line, in bounded time (it hung before, on orbax's waiting threads), the
    last good checkpoint intact."""
    import time

    out = tmp_path / "out"
    argv = args(mnist_dir, out, "--epochs", "200", "--checkpoint-every", "1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "inna_optax.train", *argv],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while not (out / "checkpoints" / "1").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    try:
        damage(out / "checkpoints")
        try:
            _, err = proc.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise AssertionError("the run did not end within 120 s of the failed save") from None
    finally:
        subprocess.run(["chattr", "-i", str(out / "checkpoints")], capture_output=True)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "checkpoints" in lines[0] and "cannot be written" in lines[0], err
    assert "is intact" in lines[0], err
