"""The training command line (`python -m inna_optax.train`): its outputs, and one
line with exit code 2 (3 for a diverged run) for each bad value or fault, leaving the
disk as it was."""

import json
import subprocess
import sys

import pytest
from datagen import make_mnist

pytest.importorskip("flax.nnx")
from runs import ROOT, TINY, args, child_env, cli, cli_process, metrics, snapshot  # noqa: E402

from inna_optax import train  # noqa: E402
from inna_optax.training import devices  # noqa: E402


@pytest.mark.slow
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
    assert not (out / ".lock").exists()  # the lock goes with the run


@pytest.mark.slow
def test_default_out_is_a_new_directory_per_run(tmp_path, monkeypatch, capsys, mnist_dir):
    monkeypatch.chdir(tmp_path)
    argv = ["--dataset", "mnist", "--data-dir", str(mnist_dir), *TINY, "--epochs", "1"]
    assert cli(capsys, argv)[0] == 0
    assert cli(capsys, argv)[0] == 0
    runs = sorted((tmp_path / "results").iterdir())
    assert len(runs) == 2 and all((r / "summary.json").exists() for r in runs)
    assert all(r.name.startswith("mnist-inna-") for r in runs)


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
    (["--batch-size", "3"], "--batch-size"),  # a setting changed on resume
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


def test_a_batch_the_devices_do_not_divide_is_a_clear_error(tmp_path, mnist_dir, capsys):
    out = tmp_path / "run"
    code, _, err = cli(capsys, args(mnist_dir, out, "--batch-size", "3", "--devices", "2"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "--batch-size: 3 is not divisible by the 2 devices" in err
    assert not out.exists()


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


@pytest.mark.slow
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
    assert "The data are not the cause" in err  # fit checked every input and label
    assert snapshot(tmp_path / "checkpoints") == before


@pytest.mark.slow
def test_piped_output_has_no_progress_bar(tmp_path, mnist_dir):
    argv = args(mnist_dir, tmp_path, "--epochs", "1")
    argv.remove("--no-progress")
    proc = subprocess.run(
        [sys.executable, "-m", "inna_optax.train", *argv], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "\r" not in proc.stdout + proc.stderr and "step/s" not in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "flag, env, expected",
    [
        # one per core, a divisor of the batch of 8
        ([], {}, devices.default_cpu_devices(8, devices.usable_cores())),
        (["--cpu-devices", "1"], {}, 1),
        (["--cpu-devices", "2"], {}, 2),
        ([], {"JAX_NUM_CPU_DEVICES": "4"}, 4),  # the environment's count wins
    ],
)
def test_cli_cpu_devices(tmp_path, mnist_dir, flag, env, expected):
    argv = args(mnist_dir, tmp_path / "run", "--epochs", "1", *flag)
    at = argv.index("--devices")  # the tiny run's one device; here the default: all
    del argv[at : at + 2]
    proc = subprocess.run(
        [sys.executable, "-m", "inna_optax.train", *argv],
        cwd=ROOT,
        env=child_env(**env),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["devices"] == expected


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


@pytest.mark.slow
def test_a_refusal_after_the_directory_opened_removes_what_it_made(tmp_path, mnist_dir, capsys):
    """An --out whose checkpoint cannot be read: the lock the refused run made goes."""
    assert cli(capsys, args(mnist_dir, tmp_path / "run", "--epochs", "1"))[0] == 0
    assert not (tmp_path / "run" / ".lock").exists()  # a finished run leaves none
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


def test_a_full_disk_while_saving_is_one_line(tmp_path, mnist_dir, capsys, monkeypatch):
    import errno

    import orbax.checkpoint as ocp

    def full(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ocp.CheckpointManager, "save", full)
    code, _, err = cli(capsys, args(mnist_dir, tmp_path, "--epochs", "1"))
    assert code == 2 and "the disk is full" in err and len(err.strip().splitlines()) == 1, err


_ABANDONED_SAVE = """
import errno, sys
import orbax.checkpoint as ocp
from inna_optax import train

async def write_fragment():  # orbax's writer, abandoned when the disk fills
    pass

def save(self, *a, **k):
    cycle = [write_fragment()]  # held by a cycle: collected at exit, never awaited
    cycle.append(cycle)
    raise OSError(errno.ENOSPC, "No space left on device")

ocp.CheckpointManager.save = save
sys.exit(train.main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_failed_save_s_abandoned_coroutines_do_not_add_lines(tmp_path, mnist_dir):
    """orbax's writers left unawaited by a full disk: Python warns about each at exit,
    after the one line (CI saw `coroutine 'async_serialize_from_host.<locals>.
    write_fragment' was never awaited` on a real full tmpfs)."""
    argv = args(mnist_dir, tmp_path / "run", "--epochs", "1")
    proc = subprocess.run([sys.executable, "-c", _ABANDONED_SAVE, *argv], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert proc.returncode == 2 and "the disk is full" in proc.stderr, proc.stderr[-3000:]
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-3000:]


@pytest.mark.slow
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


@pytest.mark.slow
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


@pytest.mark.slow
def test_the_command_line_keeps_freed_memory_when_told_to(tmp_path, mnist_dir, capsys, monkeypatch):
    asked = []
    monkeypatch.setattr(devices, "keep_freed_memory", lambda c: asked.append(c.keep_freed_memory))
    assert cli(capsys, args(mnist_dir, tmp_path / "a", "--epochs", "1"))[0] == 0
    flag = "--keep-freed-memory"
    assert cli(capsys, args(mnist_dir, tmp_path / "b", "--epochs", "1", flag))[0] == 0
    assert asked == [False, True]


def test_only_orbaxs_thread_exceptions_are_kept_quiet(capsys):
    """The command line's thread hook drops the traceback of an exception raised in
    orbax's code (the main thread reports it) and prints any other thread's."""
    import threading

    def raise_in(filename):
        code = compile("def fail():\n    raise OSError('disk')\n", filename, "exec")
        space = {}
        exec(code, space)
        try:
            space["fail"]()
        except OSError as e:
            return threading.ExceptHookArgs((type(e), e, e.__traceback__, None))

    train._quiet(raise_in("/site-packages/orbax/checkpoint/fake.py"))
    assert capsys.readouterr().err == ""
    train._quiet(raise_in("/somewhere/else.py"))
    err = capsys.readouterr().err
    assert "Traceback" in err and "OSError: disk" in err


def test_without_the_train_extra_the_command_line_says_what_to_install():
    """With the base install (Flax missing: a None entry in sys.modules makes its
    import fail as an absent package's), one line and exit code 2."""
    script = (
        "import sys, runpy; sys.modules['flax'] = None; "
        "runpy.run_module('inna_optax.train', run_name='__main__')"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: the training command line needs the train extra (no module 'flax'): "
        "pip install 'inna-optax[train]'"
    ]


@pytest.mark.slow
def test_on_a_terminal_each_epoch_line_starts_a_line_of_its_own(tmp_path):
    """In a pseudo-terminal of 120 columns, as a terminal emulator (pyte) shows it:
    the bar is cleared before each epoch's line (none starts inside a bar or is cut
    across two rows), evaluation is a phase of its own on the bar, and the ETA shown
    after the first step does not count its compilation."""
    from benchmarks.terminal_screen import capture

    argv = ["--train-examples", "320", "--test-examples", "64", "--width", "0.0625"]
    code, lines, frames = capture([*argv, "--epochs", "2"], cwd=tmp_path, columns=120)
    assert code == 0
    assert any(line.startswith("training:") for _, line in frames)  # the bar was drawn
    assert any(line.startswith("evaluating:") for _, line in frames)
    epochs = [line for line in lines if "train loss" in line]
    assert [line[: len("epoch 1/2: ")] for line in epochs] == ["epoch 1/2: ", "epoch 2/2: "]
    assert lines[2].startswith("test accuracy: "), lines  # the last line (it may wrap)
    assert not any("%|" in line for line in lines), lines  # no bar left on the screen
    # tqdm's [elapsed<remaining]: after the first (compiling) step, no guess at all
    first = next(line for _, line in frames if " 1/20 " in line)
    assert "<?" in first, first


def test_help_names_the_program_says_what_off_flags_do_and_shows_typed_defaults():
    text = " ".join(train.parser().format_help().split())
    assert text.startswith("usage: python -m inna_optax.train ")
    assert "--no-norm turns off: batch normalisation" in text
    assert "--no-progress turns off: a progress bar" in text
    assert "(e.g. 0,1,2) (default 0)" in text and "(0,)" not in text


@pytest.mark.slow
@pytest.mark.parametrize(
    "argv, message",
    [
        (
            # the campaign's 1000 devices, scaled to be absurd on any host
            ["--cpu-devices", "100000", "--batch-size", "100000"],
            "error: --cpu-devices: 100000 is more than this host runs",
        ),
        (["--cpu-devices", "4", "--batch-size", "2"], "error: --cpu-devices: 4 devices cannot"),
        (["--data-dir", "mnist/"], "error: --data-dir: say which data set it holds with --dataset"),
    ],
)
def test_settings_that_cannot_work_are_refused_before_jax_starts(tmp_path, argv, message):
    """One line, exit code 2, within seconds and with nothing written."""
    proc = subprocess.run(
        [sys.executable, "-m", "inna_optax.train", *argv],
        cwd=tmp_path,
        env=child_env(PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert list(tmp_path.iterdir()) == []
