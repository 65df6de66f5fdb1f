"""The character-level GPT, the text loader and the language-model training."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

nnx = pytest.importorskip("flax.nnx")
from inna_optax.training import DataError, language  # noqa: E402
from inna_optax.training.models import GPT, count_params  # noqa: E402
from inna_optax.training.text import load_text  # noqa: E402

TINY = language.LMConfig(
    layers=1, heads=2, width=16, context=8, batch_size=4, steps=12, warmup=3,
    log_every=5, eval_every=6, eval_batches=2,
)  # fmt: skip


@pytest.fixture
def text_file(tmp_path):
    path = tmp_path / "plays.txt"
    path.write_text("To be, or not to be: that is the question.\n" * 20, encoding="utf-8")
    return path


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
    ],
)
def test_bad_text_files_are_named_with_the_reason(tmp_path, content, message):
    path = tmp_path / "corpus.txt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=message) as e:
        load_text(path, context=8)
    assert str(path) in str(e.value) and "\n" not in str(e.value)


# -------------------------------------------------------------------- the model
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


# ------------------------------------------------------------------ the training
def test_weight_decay_applies_to_the_kernels_only():
    _, params = nnx.split(GPT(7, 4, 1, 1, 8, rngs=nnx.Rngs(0)), nnx.Param)
    mask = language.decay_mask(params)
    decayed = {
        jax.tree_util.keystr(path) for path, m in jax.tree_util.tree_leaves_with_path(mask) if m
    }
    assert len(decayed) == 5  # qkv, out, up, down and the head
    assert all("['kernel']" in name for name in decayed)


@pytest.mark.parametrize("optimizer", ["innaprop", "adamw"])
def test_zero_gradients_shrink_the_kernels_and_nothing_else(optimizer):
    _, params = nnx.split(GPT(7, 4, 1, 1, 8, rngs=nnx.Rngs(0)), nnx.Param)
    config = dataclasses.replace(TINY, optimizer=optimizer, warmup=0)
    tx = language.make_optimizer(config, 0.1, params)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    for path, u in jax.tree_util.tree_leaves_with_path(updates):
        name = jax.tree_util.keystr(path)
        if "['kernel']" in name:
            assert np.max(np.abs(u)) > 1e-5, name
        else:
            # INNAprop's inertial step is 0 at rest up to float32 rounding
            np.testing.assert_allclose(u, 0, atol=1e-8, err_msg=name)


def test_schedule_warms_up_then_decays_to_a_tenth():
    """The update of a one-parameter problem with a constant gradient traces the
    schedule: AdamW's first step moves by lr * schedule(0) = 0 (warm-up), later
    steps follow the warm-up line, then the cosine down to lr / 10."""
    config = dataclasses.replace(TINY, optimizer="adamw", weight_decay=0.0, steps=20, warmup=4)
    params = {"kernel": jnp.ones((1, 1))}
    tx = language.make_optimizer(config, 0.5, params)
    state = tx.init(params)
    moves = []
    for _ in range(20):
        updates, state = tx.update({"kernel": jnp.full((1, 1), 0.01)}, state, params)
        moves.append(-float(updates["kernel"][0, 0]))
    # Adam's normalised step is 1 for a constant gradient: the move is the rate
    np.testing.assert_allclose(moves[:5], [0.0, 0.125, 0.25, 0.375, 0.5], atol=1e-5)
    assert moves[-1] == pytest.approx(0.05 + 0.45 * (1 + np.cos(np.pi * 15 / 16)) / 2, rel=1e-4)


@pytest.mark.parametrize("optimizer", ["innaprop", "adamw"])
def test_training_lowers_the_loss_and_records_curves(text_file, optimizer):
    text = load_text(text_file, TINY.context)
    config = dataclasses.replace(TINY, optimizer=optimizer, steps=30)
    result = language.train(config, text, lr=1e-2, seed=0)
    np.testing.assert_array_equal(result["window_end_step"], [5, 10, 15, 20, 25, 30])
    np.testing.assert_array_equal(result["eval_step"], [6, 12, 18, 24, 30])
    assert result["train_loss"][-1] < result["train_loss"][0] - 0.3
    assert result["valid_loss"][-1] < np.log(len(text.vocab))


def test_a_seed_fixes_the_run_and_the_rate_is_not_compiled_in(text_file):
    text = load_text(text_file, TINY.context)
    a = language.train(TINY, text, lr=1e-2, seed=3)
    b = language.train(TINY, text, lr=1e-2, seed=3)
    c = language.train(TINY, text, lr=3e-2, seed=3)
    np.testing.assert_array_equal(a["train_loss"], b["train_loss"])
    assert not np.allclose(a["train_loss"], c["train_loss"])


def test_unknown_optimizer_is_refused():
    with pytest.raises(ValueError, match="'innaprop' or 'adamw'"):
        language.make_optimizer(dataclasses.replace(TINY, optimizer="sgd"), 0.1, {})


def test_clipping_bounds_the_first_update():
    """With clipping at 1, a huge gradient moves AdamW no more than a small one."""
    config = dataclasses.replace(TINY, optimizer="adamw", warmup=0, weight_decay=0.0)
    params = {"kernel": jnp.zeros((2, 2))}
    tx = language.make_optimizer(config, 0.1, params)
    clipped = optax.chain(optax.clip_by_global_norm(1.0))
    big, _ = clipped.update({"kernel": jnp.full((2, 2), 1e6)}, clipped.init(params))
    assert float(optax.global_norm(big)) == pytest.approx(1.0)
    updates, _ = tx.update({"kernel": jnp.full((2, 2), 1e6)}, tx.init(params), params)
    assert np.all(np.isfinite(updates["kernel"]))
