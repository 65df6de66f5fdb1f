"""The character-level GPT on text: the loader, the model, its registry entries and
its training through the one trainer (`fit` and the command line)."""

import json
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

nnx = pytest.importorskip("flax.nnx")
from runs import ROOT, cli_process, metrics  # noqa: E402

from inna_optax.training import Config, ConfigError, DataError, fit, prepare  # noqa: E402
from inna_optax.training.data import DATASETS  # noqa: E402
from inna_optax.training.models import GPT, MODELS, count_params  # noqa: E402
from inna_optax.training.optimizers import decays_matrices, make  # noqa: E402
from inna_optax.training.text import load_text  # noqa: E402

PLAY = "To be, or not to be: that is the question.\n" * 20
# a one-block GPT on 8-character windows: 12 steps, evaluated every 6
TINY = dict(
    model="gpt", layers=1, heads=2, embed_dim=16, context=8, batch_size=8, steps=12,
    eval_every=6, log_every=5, test_examples=8, progress=False,
)  # fmt: skip


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "plays.txt"
    path.write_text(PLAY, encoding="utf-8")
    return path


def tiny(path, **changes) -> Config:
    return Config(**{"dataset": "text", "data_dir": str(path), **TINY, **changes})


# ------------------------------------------------------------------- the loader
def test_text_is_split_90_10_into_character_ids(text_file):
    text = load_text(text_file, context=8)
    raw = text_file.read_text()
    assert text.vocab == "".join(sorted(set(raw)))
    assert len(text.train) == round(0.9 * len(raw)) and len(text.valid) == len(raw) - len(
        text.train
    )
    decoded = "".join(text.vocab[i] for i in np.concatenate([text.train, text.valid]))
    assert decoded == raw
    assert text.train.dtype == np.int32


def test_non_ascii_characters_are_tokens(tmp_path):
    path = tmp_path / "u.txt"
    path.write_text("café, naïve — ça va ? " * 10, encoding="utf-8")
    text = load_text(path, context=4)
    assert "é" in text.vocab and "—" in text.vocab
    assert "".join(text.vocab[i] for i in text.train[:5]) == "café,"


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        (b"", "empty"),
        (b"\xff\xfe\x00bad", "not UTF-8"),
        (b"short text", "not more than the context"),
        (b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "one distinct character"),
    ],
)
def test_bad_text_files_are_named_with_the_reason(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as e:
        load_text(path, context=8)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("fraction", [0.0, 1.0, 1.5, -0.1])
def test_a_validation_share_outside_zero_one_is_refused(text_file, fraction):
    with pytest.raises(ValueError, match="`valid_fraction` must be in"):
        load_text(text_file, context=8, valid_fraction=fraction)


# -------------------------------------------------------------------- the model
@pytest.mark.slow
def test_gpt_is_causal():
    """Changing the last token changes the logits at the last position only."""
    model = GPT(11, context=8, layers=2, heads=2, width=16, rngs=nnx.Rngs(0))
    ids = jnp.asarray([[1, 2, 3, 4, 5, 6, 7, 8]])
    changed = ids.at[0, -1].set(0)
    a, b = model(ids), model(changed)
    assert a.shape == (1, 8, 11)
    np.testing.assert_array_equal(a[:, :-1], b[:, :-1])
    assert not np.allclose(a[:, -1], b[:, -1])


def test_gpt_parameter_count_is_gpt2s_formula():
    v, t, n, w = 65, 128, 4, 128
    model = GPT(v, context=t, layers=n, heads=4, width=w, rngs=nnx.Rngs(0))
    # embeddings, per block (two LayerNorms, qkv and output without bias, MLP with
    # bias), final LayerNorm, head without bias
    block = 2 * 2 * w + 3 * w * w + w * w + (w * 4 * w + 4 * w) + (4 * w * w + w)
    assert count_params(model) == v * w + t * w + n * block + 2 * w + w * v


def test_gpt_refuses_a_sequence_longer_than_its_context():
    model = GPT(5, context=4, layers=1, heads=1, width=4, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="longer than the context 4"):
        model(jnp.zeros((1, 5), jnp.int32))


@pytest.mark.slow
def test_gpt_options_nanogpts_layout():
    """No biases and a tied head: nanoGPT's 0.80M parameters at its CPU recipe's
    shape (position embeddings not counted there); dropout changes a training call
    only."""
    model = GPT(65, 64, 4, 4, 128, 0.1, bias=False, tie_embeddings=True, rngs=nnx.Rngs(0))
    assert count_params(model) - 64 * 128 == 795_904
    ids = jnp.arange(16)[None] % 65
    np.testing.assert_array_equal(model(ids), model(ids))
    dropped = model(ids, train=True, key=jax.random.key(1))
    assert not np.allclose(dropped, model(ids))
    with pytest.raises(ValueError, match="needs a `key`"):
        model(ids, train=True)


def test_training_attention_drops_its_weights_as_nanogpt():
    """With a key, attention is softmax(q k^T / sqrt(d)) over the past with each
    weight kept with probability 1 - rate and scaled by 1 / (1 - rate) (float64
    NumPy below); at rate 0 it is XLA's fused causal attention."""
    from inna_optax.training.models import causal_attention

    q, k, v = jax.random.normal(jax.random.key(0), (3, 2, 5, 3, 4))
    key, rate = jax.random.key(7), 0.25
    keep = np.asarray(jax.random.bernoulli(key, 1 - rate, (2, 3, 5, 5)))
    q64, k64, v64 = (np.asarray(z, np.float64) for z in (q, k, v))
    scores = np.einsum("bqhd,bkhd->bhqk", q64, k64) / 2.0
    scores[..., ~np.tri(5, dtype=bool)] = -np.inf
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    expected = np.einsum("bhqk,bkhd->bqhd", weights * keep / (1 - rate), v64)
    np.testing.assert_allclose(causal_attention(q, k, v, rate, key), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        causal_attention(q, k, v, 0.0, key),
        jax.nn.dot_product_attention(q, k, v, is_causal=True),
        rtol=1e-5,
        atol=1e-6,
    )


def test_a_gpt_training_call_with_dropout_stays_causal():
    model = GPT(11, context=8, layers=2, heads=2, width=16, dropout=0.5, rngs=nnx.Rngs(0))
    ids = jnp.asarray([[1, 2, 3, 4, 5, 6, 7, 8]])
    a, b = (model(x, train=True, key=jax.random.key(3)) for x in (ids, ids.at[0, -1].set(0)))
    np.testing.assert_array_equal(a[:, :-1], b[:, :-1])
    assert not np.allclose(a[:, -1], b[:, -1])


# ------------------------------------------------------------- the registries
def test_the_text_data_set_is_windows_and_their_next_characters(text_file):
    split = prepare(tiny(text_file))
    text = load_text(text_file, 8)
    assert split.x_train.shape == (len(text.train) - 8, 8)
    np.testing.assert_array_equal(split.x_train[5], text.train[5:13])
    np.testing.assert_array_equal(split.y_train[5], text.train[6:14])
    assert split.x_test.shape == (8, 8) and split.num_classes == len(text.vocab)
    assert DATASETS["text"].kind == MODELS["gpt"].data == "text"


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(width=0.5), "--width: applies to nin only"),
        (dict(epochs=3), "--epochs: applies to images only"),
        (dict(dataset="digits"), "--dataset: --model gpt trains on text, not digits"),
        (dict(steps=10), "--steps: 10 is not a multiple of --eval-every 6"),
        (dict(optimizer="sgd", decay_mask="all"), "--decay-mask: sgd has no weight decay"),
        (dict(optimizer="adam", sigma=0.9), "--sigma: adam takes none"),
        (dict(warmup=3), "--warmup: needs --schedule cosine"),
    ],
)
def test_a_setting_that_does_not_apply_is_refused_naming_it(text_file, changes, message):
    with pytest.raises(ConfigError, match=message):
        tiny(text_file, **changes).validate()


@pytest.mark.parametrize(
    "changes, message",
    [  # the fault campaign's GPT inputs: NaN losses, an MLIR error or ZeroDivisionError
        (dict(context=0), "--context: must be >= 1, got 0"),
        (dict(context=-4), "--context: must be >= 1, got -4"),
        (dict(batch_size=0), "--batch-size: must be >= 1, got 0"),
        (dict(lr=float("nan")), "--lr: must be a finite number > 0, got nan"),
        (dict(log_every=0), "--log-every: must be >= 1, got 0"),
        (dict(eval_every=0), "--eval-every: must be >= 1, got 0"),
        (dict(steps=0), "--steps: must be >= 1, got 0"),
    ],
)
def test_the_gpts_settings_are_checked_naming_the_flag(text_file, changes, message):
    with pytest.raises(ConfigError, match=message):
        tiny(text_file, **changes).validate()


@pytest.mark.slow
def test_the_nins_own_flags_are_refused_for_the_gpt(text_file, capsys):
    proc = cli_process(["--model", "gpt", "--data-dir", str(text_file), "--width", "0.5"])
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "error: --width: applies to nin only, not --model gpt on --dataset text"
    )


def test_a_warm_up_as_long_as_the_run_is_refused_in_one_line(text_file, tmp_path):
    """optax's warm-up cosine raises on a decay of no steps; the command line names
    the flag and the run's length instead, before making the output directory."""
    out = tmp_path / "run"
    flags = ["--model", "gpt", "--data-dir", str(text_file), "--steps", "6", "--eval-every"]
    flags += ["6", "--context", "8", "--schedule", "cosine", "--warmup", "6", "--out", str(out)]
    proc = cli_process(flags)
    assert (proc.returncode, proc.stderr.strip()) == (
        2,
        "error: --warmup: 6 steps is not fewer than the run's 6",
    )
    assert not out.exists()


# --------------------------------------------------------------- the optimizer
def test_weight_decay_applies_to_the_matrices_only():
    _, params = nnx.split(GPT(7, 4, 1, 1, 8, rngs=nnx.Rngs(0)), nnx.Param)
    mask = decays_matrices(params)
    decayed = {
        jax.tree_util.keystr(path) for path, m in jax.tree_util.tree_leaves_with_path(mask) if m
    }
    # qkv, out, up, down, the head and both embeddings; no bias or LayerNorm scale
    assert len(decayed) == 7
    assert all("kernel" in name or "embedding" in name for name in decayed)


@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["innaprop", "adamw"])
def test_zero_gradients_shrink_the_matrices_and_nothing_else(optimizer):
    _, params = nnx.split(GPT(7, 4, 1, 1, 8, rngs=nnx.Rngs(0)), nnx.Param)
    tx = make(optimizer, 0.1, weight_decay=0.1, decay_mask="matrices")
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    for path, u in jax.tree_util.tree_leaves_with_path(updates):
        name = jax.tree_util.keystr(path)
        if "kernel" in name or "embedding" in name:
            assert np.max(np.abs(u)) > 1e-5, name
        else:
            # INNAprop's inertial step is 0 at rest up to float32 rounding
            np.testing.assert_allclose(u, 0, atol=1e-8, err_msg=name)


def test_schedule_warms_up_then_decays_to_a_tenth():
    """The update of a one-parameter problem with a constant gradient traces the
    schedule: AdamW's first step moves by lr * schedule(0) = 0 (warm-up), later
    steps follow the warm-up line, then the cosine down to lr / 10."""
    tx = make(
        "adamw", 0.5, schedule="cosine", total_steps=20, warmup=4, final_lr_ratio=0.1,
        weight_decay=0.0,
    )  # fmt: skip
    params = {"kernel": jnp.ones((1, 1))}
    state = tx.init(params)
    moves = []
    for _ in range(20):
        updates, state = tx.update({"kernel": jnp.full((1, 1), 0.01)}, state, params)
        moves.append(-float(updates["kernel"][0, 0]))
    # Adam's normalised step is 1 for a constant gradient: the move is the rate
    np.testing.assert_allclose(moves[:5], [0.0, 0.125, 0.25, 0.375, 0.5], atol=1e-5)
    assert moves[-1] == pytest.approx(0.05 + 0.45 * (1 + np.cos(np.pi * 15 / 16)) / 2, rel=1e-4)


def test_clipping_bounds_the_first_update():
    """Clipped at global norm 1, a gradient of norm 2e6 moves AdamW as the clipped
    one does: its first (bias-corrected) step is lr times the sign."""
    tx = make("adamw", 0.1, clip=1.0, weight_decay=0.0)
    params = {"kernel": jnp.zeros((2, 2))}
    huge = {"kernel": jnp.full((2, 2), 1e6)}
    clipped, _ = optax.clip_by_global_norm(1.0).update(huge, optax.EmptyState())
    assert float(jnp.linalg.norm(clipped["kernel"])) == pytest.approx(1.0)
    updates, _ = tx.update(huge, tx.init(params), params)
    np.testing.assert_allclose(updates["kernel"], -0.1, rtol=1e-5)


# ---------------------------------------------------------------- the training
@pytest.mark.slow
@pytest.mark.parametrize("optimizer", ["innaprop", "adamw"])
def test_training_lowers_the_loss_and_records_curves(text_file, optimizer):
    config = tiny(text_file, optimizer=optimizer, lr=1e-2, steps=30)
    history = fit(config, sweep=None)
    np.testing.assert_array_equal(history.window_end_step, [5, 6, 11, 12, 17, 18, 23, 24, 29, 30])
    assert history.test_loss.shape == (1, 5)
    assert history.train_loss[0, -1] < history.train_loss[0, 0] - 0.3
    assert history.test_loss[0, -1] < np.log(len(set(PLAY)))


@pytest.mark.slow
def test_seeds_and_learning_rates_are_replicas_of_one_program(text_file):
    """Two seeds and a learning-rate sweep in one fit: each replica equals the same
    run trained alone."""
    config = tiny(text_file, optimizer="adamw", seeds=(3, 3), replica_group=2)
    both = fit(config, sweep={"lr": [1e-2, 3e-2]})
    alone = fit(tiny(text_file, optimizer="adamw", seeds=(3,), lr=3e-2))
    np.testing.assert_allclose(both.train_loss[1], alone.train_loss[0], rtol=2e-5)
    assert not np.allclose(both.train_loss[0], both.train_loss[1])


@pytest.mark.slow
def test_summary_reports_the_validation_loss_and_tokens_per_second(text_file, tmp_path):
    out = tmp_path / "run"
    argv = ["--data-dir", str(text_file), "--out", str(out), "--log-every", "5"]
    tiny_flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k != "progress"]
    proc = cli_process([*tiny_flags, *argv, "--no-progress"])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0].startswith("step 6/12: train loss ")
    assert proc.stdout.splitlines()[-1].startswith("validation loss: ")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["valid_loss"] == summary["test_loss"] and summary["steps"] == 12
    assert summary["tokens_per_second"] == pytest.approx(
        summary["replica_steps_per_second"] * 8 * 8
    )
    assert [r["epoch"] for r in metrics(out)] == [1, 2]


SIGNALLED = """
import os, signal, sys
from inna_optax import train
from inna_optax.training import distributed

real_batch, calls = distributed.global_batch, []

def batch(sharding, array, idx):
    calls.append(1)  # inputs and targets: two calls a step
    if len(calls) == 2 * {at} - 1:
        os.kill(os.getpid(), signal.SIGTERM)
    return real_batch(sharding, array, idx)

distributed.global_batch = batch
sys.exit(train.main({argv!r}))
"""


@pytest.mark.slow
def test_a_sigtermed_gpt_run_resumes_bit_identically(text_file, tmp_path):
    """Two seeds in one compiled program, SIGTERM as step 8 starts (mid-interval,
    after the first checkpoint at step 6): exit 143, checkpoint 8; --resume ends on
    the last metrics line of an uninterrupted run, bit for bit."""
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in TINY.items() if k != "progress"]
    flags += ["--data-dir", str(text_file), "--seeds", "0,1", "--replica-group", "2"]
    flags += ["--optimizer", "innaprop", "--dropout", "0.1", "--no-progress"]
    cut = [*flags, "--out", str(tmp_path / "cut")]
    script = textwrap.dedent(SIGNALLED).format(at=8, argv=cut)
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 143, proc.stderr[-3000:]
    assert proc.stderr.strip().startswith("SIGTERM: stopped at step 8;"), proc.stderr
    assert {6, 8} <= {int(p.name) for p in (tmp_path / "cut" / "checkpoints").iterdir()}
    resumed = cli_process([*cut, "--resume"])
    assert resumed.returncode == 0, resumed.stderr
    straight = cli_process([*flags, "--out", str(tmp_path / "straight")])
    assert straight.returncode == 0, straight.stderr
    assert metrics(tmp_path / "cut") == metrics(tmp_path / "straight")


def test_the_nanogpt_cpu_preset_is_the_recipe_and_flags_override_it():
    """nanoGPT's README command for a CPU with config/train_shakespeare_char.py's
    other settings; a flag given wins, and INNAprop gets its own settings."""
    from inna_optax import train

    c = train.parse_args(["--preset", "nanogpt-cpu", "--data-dir", "input.txt"]).validate()
    shape = (c.model, c.dataset, c.layers, c.heads, c.embed_dim, c.context, c.batch_size)
    assert shape == ("gpt", "text", 4, 4, 128, 64, 12)
    assert (c.bias, c.tie_embeddings, c.dropout) == (False, True, 0.0)
    assert (c.optimizer, c.lr, c.b1, c.b2, c.weight_decay, c.weight_decay_mask) == (
        "adamw",
        1e-3,
        None,
        0.99,
        0.1,
        "matrices",
    )
    assert (c.schedule, c.warmup, c.final_lr_ratio, c.clip) == ("cosine", 100, 0.1, 1.0)
    assert (c.steps, c.eval_every, c.test_examples) == (2000, 250, 240)
    argv = ["--preset", "nanogpt-cpu", "--data-dir", "x", "--optimizer", "innaprop"]
    c = train.parse_args([*argv, "--steps", "10000"]).validate()
    assert (c.optimizer, c.sigma, c.b2, c.weight_decay, c.steps) == (
        "innaprop",
        0.99,
        None,
        0.1,
        10000,
    )
