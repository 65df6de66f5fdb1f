"""Several processes with jax.distributed, on this machine: 2 processes of 2 CPU
devices each (parameters and state sharded) against 1 process of 4 (replicated), a
resume of their checkpoint by 1 process of 1 device, and clear failures when the
processes cannot meet."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from datagen import make_mnist
from once import made_once
from runs import child_env

pytestmark = pytest.mark.slow  # processes of their own: `-m "not slow"` skips them

ROOT = Path(__file__).resolve().parents[1]
# LeCun init, no batch norm: losses that move, and no batch statistics whose sums
# the gloo collectives could order differently
BASE = [
    *("--width", "0.0625", "--batch-size", "8", "--no-progress", "--dropout", "0"),
    *("--no-norm", "--init", "lecun", "--lr", "0.3"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(argv, devices: int):
    env = child_env(JAX_NUM_CPU_DEVICES=str(devices))
    return subprocess.Popen(
        [sys.executable, "-m", "inna_optax.train", *argv],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc, timeout=600):
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def _start_two(argv, out: Path, devices: int):
    port = _free_port()
    return [
        _start(
            [*argv, "--out", str(out), "--coordinator", f"127.0.0.1:{port}"]
            + ["--num-processes", "2", "--process-id", str(i), "--connect-timeout", "120"],
            devices=devices,
        )
        for i in (0, 1)
    ]


def _two_processes(argv, out: Path):
    return [_finish(p) for p in _start_two(argv, out, devices=2)]


def _metrics(out: Path) -> list[dict]:
    return [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]


def _final_params(out: Path):
    """The newest checkpoint's params (of the first replica group), restored onto
    this process's first device, whatever the topology they were saved from."""
    import jax
    import orbax.checkpoint as ocp

    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    newest = max(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    path = (out / "checkpoints" / str(newest) / "state").absolute()
    with ocp.StandardCheckpointer() as ckpt:
        tree = ckpt.metadata(path).item_metadata.tree
        target = jax.tree.map(
            lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=device), tree
        )
        return ckpt.restore(path, target)[0]["params"]


@pytest.fixture(scope="module")
def two_process_run():
    """Two processes train 2 epochs (made once per session: once.made_once; the data
    lie beside the run, so every worker names them by the same path, as a resume
    must)."""

    def argv(path):
        return ["--dataset", "mnist", "--data-dir", str(path / "mnist"), *BASE, "--epochs", "2"]

    def make(path):
        make_mnist(path / "mnist", n_train=64, n_test=32)
        # the 2 processes also shard the parameters and state (and checkpoint them so)
        results = _two_processes([*argv(path), "--shard", "params"], path / "run")
        for code, _, err in results:
            assert code == 0, err[-2000:]
        (path / "results.json").write_text(json.dumps(results))

    path = made_once("two_process_run", make)
    return path / "run", argv(path), json.loads((path / "results.json").read_text())


def test_two_processes_match_one_process_with_four_devices(two_process_run, tmp_path):
    out, argv, results = two_process_run
    # only process 0 prints and writes metrics and the summary
    # (gloo prints its own lines, sometimes interleaved: look for ours only)
    ours = [
        [line for line in out_.splitlines() if "epoch" in line or "results in" in line]
        for _, out_, _ in results
    ]
    assert any("results in" in line for line in ours[0]) and ours[1] == []
    code, _, err = _finish(_start([*argv, "--out", str(tmp_path / "one")], devices=4))
    assert code == 0, err[-2000:]
    two, one = _metrics(out), _metrics(tmp_path / "one")
    assert [m["epoch"] for m in two] == [1, 2]
    for key in ("train_loss", "test_loss"):
        np.testing.assert_allclose(
            [m[key] for m in two], [m[key] for m in one], rtol=1e-5, err_msg=key
        )
    assert two[-1]["train_loss"][0] < two[0]["train_loss"][0]  # it trains
    a, b = _final_params(out), _final_params(tmp_path / "one")
    import jax

    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-5, atol=1e-6)


def test_a_two_process_checkpoint_resumes_in_one_process(two_process_run, tmp_path):
    out, argv, _ = two_process_run
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    code, stdout, err = _finish(
        _start([*argv[:-1], "3", "--out", str(copy), "--resume"], devices=1)
    )
    assert code == 0, err[-2000:]
    resumed = _metrics(copy)
    assert [m["epoch"] for m in resumed] == [1, 2, 3]
    assert resumed[:2] == _metrics(out)


def test_an_unreachable_coordinator_is_a_clear_error_in_bounded_time(tmp_path):
    start = time.monotonic()
    argv = ["--out", str(tmp_path / "x"), "--coordinator", f"127.0.0.1:{_free_port()}"]
    argv += ["--num-processes", "2", "--process-id", "1", "--connect-timeout", "1"]
    code, _, err = _finish(_start(argv, devices=1), timeout=120)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "nothing answers" in err, err
    assert time.monotonic() - start < 60


def test_a_missing_process_ends_the_wait_in_bounded_time(tmp_path):
    # process 0 alone, told there are 2: one line and exit 2 after --connect-timeout
    start = time.monotonic()
    argv = ["--out", str(tmp_path / "x"), "--coordinator", f"127.0.0.1:{_free_port()}"]
    argv += ["--num-processes", "2", "--process-id", "0", "--connect-timeout", "1"]
    code, _, err = _finish(_start(argv, devices=1), timeout=120)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "not all 2 processes joined" in errors[0], err
    assert time.monotonic() - start < 60


def test_processes_started_with_other_counts_stop_at_once(tmp_path):
    # JAX's runtime lets a process that says 3 join a job of 2; the first
    # collective would then wait forever: both stop, naming the mismatch
    port = _free_port()
    argv = ["--out", str(tmp_path / "x"), "--coordinator", f"127.0.0.1:{port}"]
    argv += ["--connect-timeout", "30"]
    procs = [
        _start([*argv, "--num-processes", n, "--process-id", i], devices=1)
        for n, i in (("2", "0"), ("3", "1"))
    ]
    start = time.monotonic()
    for code, _, err in (_finish(p, timeout=120) for p in procs):
        assert code == 2
        assert "--num-processes: process" in err and "was started with" in err, err
    assert time.monotonic() - start < 60


@pytest.mark.parametrize(
    "bad, named",
    [
        (["--coordinator", "nohost"], "--coordinator"),
        (["--coordinator", "h:1", "--num-processes", "2"], "--coordinator"),
        (["--coordinator", "h:1", "--num-processes", "2", "--process-id", "2"], "--process-id"),
        (["--num-processes", "2"], "--num-processes"),
    ],
)
def test_bad_distributed_flags_exit_2_naming_the_flag(tmp_path, bad, named, capsys):
    from inna_optax import train

    assert train.main(["--out", str(tmp_path / "x"), *bad]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and named in err, err


def test_a_sigterm_to_one_process_stops_all_at_the_same_step(tmp_path):
    """SIGTERM to process 1 after epoch 1: JAX's preemption notice reaches both, and
    both save the same step, exit 143 and name that step."""
    import signal

    data = tmp_path / "mnist"
    make_mnist(data, n_train=640, n_test=32)  # 80 steps an epoch
    out = tmp_path / "run"
    argv = ["--dataset", "mnist", "--data-dir", str(data), *BASE, "--epochs", "30"]
    procs = _start_two(argv, out, devices=1)
    deadline = time.monotonic() + 300
    for line in procs[0].stdout:  # process 0 prints the epochs
        if line.startswith("epoch 1/30") or time.monotonic() > deadline:
            break
    procs[1].send_signal(signal.SIGTERM)
    results = [_finish(p) for p in procs]
    stops = []
    for code, _, err in results:
        assert code == 143, err[-2000:]
        stops += [line for line in err.splitlines() if line.startswith("SIGTERM: stopped at")]
    assert len(stops) == 2 and stops[0] == stops[1], stops
    step = int(stops[0].split("step ")[1].split(";")[0])
    epoch = int(stops[0].split("epoch ")[1].split(",")[0])
    saved = sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())
    assert saved[-1] == (epoch - 1) * 80 + step
