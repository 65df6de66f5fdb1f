"""Training the character-level GPT (:class:`~inna_optax.training.models.GPT`) on a
text file, with the settings of the INNAprop paper's GPT-2 runs (Bolte et al. 2024,
after nanoGPT): linear warm-up then cosine decay to a tenth of the peak, weight
decay on the matrices only (an optax `mask`), gradient clipping at global norm 1.

    from inna_optax.training import language
    text = language.load_text("input.txt", context=128)
    result = language.train(language.LMConfig(steps=200), text, lr=1e-3, seed=0)

One compiled step serves every learning rate and seed of a configuration: the
learning rate is an argument of the step, not a constant folded into it.
"""

import dataclasses
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

import inna_optax
from inna_optax.training.models import GPT, count_params
from inna_optax.training.text import Text, load_text

__all__ = ["LMConfig", "Text", "decay_mask", "load_text", "make_optimizer", "train"]


@dataclasses.dataclass(frozen=True)
class LMConfig:
    """One language-model run but its learning rate and seed.

    The optimizer's own settings are those of the INNAprop paper's GPT-2 configs:
    AdamW with betas (0.9, 0.95); INNAprop with sigma 0.99 and the given
    (alpha, beta); both with weight decay 0.1 on the matrices.

    Example:
      >>> from inna_optax.training.language import LMConfig
      >>> LMConfig(optimizer="adamw", steps=1000, warmup=100).layers
      4
    """

    optimizer: str = "innaprop"  # "innaprop" or "adamw"
    alpha: float = 0.1
    beta: float = 0.9
    context: int = 128
    layers: int = 4
    heads: int = 4
    width: int = 128
    batch_size: int = 32
    steps: int = 600
    warmup: int = 60
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    clip: float = 1.0
    log_every: int = 25  # steps per point of the training-loss curve
    eval_every: int = 100  # steps between validation losses (and at the end)
    eval_batches: int = 8


def decay_mask(params) -> object:
    """True for the leaves weight decay applies to: the linear layers' kernels (not
    the biases, LayerNorm scales or embeddings, as GPT-2 and nanoGPT).

    Args:
      params: a model's parameters (``nnx.split(model, nnx.Param)[1]``).

    Returns:
      A tree of booleans of the same structure, for optax's ``mask``.

    Example:
      >>> import jax
      >>> from flax import nnx
      >>> from inna_optax.training.language import decay_mask
      >>> _, params = nnx.split(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), nnx.Param)
      >>> sorted(jax.tree_util.keystr(p) for p, m in
      ...        jax.tree_util.tree_leaves_with_path(decay_mask(params)) if m)
      ["['kernel'].value"]
    """

    def is_kernel(path, _):
        names = [k.key for k in path if isinstance(k, jax.tree_util.DictKey)]
        return bool(names) and names[-1] == "kernel"

    return jax.tree_util.tree_map_with_path(is_kernel, params)


def make_optimizer(config: LMConfig, lr, params) -> optax.GradientTransformation:
    """Clipping, then the optimizer on the warm-up-cosine schedule peaking at `lr`
    (a number or a traced scalar), weight decay masked by :func:`decay_mask`.

    Args:
      config: the run's :class:`LMConfig` (optimizer, schedule, decay, clipping).
      lr: the peak learning rate.
      params: the parameters, for the weight-decay mask.

    Returns:
      An ``optax.GradientTransformation``.

    Raises:
      ValueError: an optimizer other than ``"innaprop"`` or ``"adamw"``.

    Example:
      >>> import jax.numpy as jnp
      >>> from inna_optax.training.language import LMConfig, make_optimizer
      >>> params = {"kernel": jnp.ones((2, 2))}
      >>> tx = make_optimizer(LMConfig(steps=100, warmup=10), 1e-3, params)
      >>> state = tx.init(params)
    """
    if config.optimizer not in ("innaprop", "adamw"):
        raise ValueError(f"LMConfig.optimizer: 'innaprop' or 'adamw', got {config.optimizer!r}")
    decay = optax.warmup_cosine_decay_schedule(
        0.0, 1.0, config.warmup, config.steps, end_value=config.min_lr_ratio
    )
    schedule = lambda count: lr * decay(count)
    mask = decay_mask(params)
    if config.optimizer == "innaprop":
        opt = inna_optax.innaprop(
            schedule,
            config.alpha,
            config.beta,
            sigma=0.99,
            weight_decay=config.weight_decay,
            mask=mask,
        )
    else:
        opt = optax.adamw(schedule, b1=0.9, b2=0.95, weight_decay=config.weight_decay, mask=mask)
    return optax.chain(optax.clip_by_global_norm(config.clip), opt)


def batches(ids: np.ndarray, context: int, batch: int, rng: np.random.Generator):
    """`batch` random windows of `ids`: inputs (batch, context) and the next
    characters as targets."""
    starts = rng.integers(0, len(ids) - context, batch)
    index = starts[:, None] + np.arange(context + 1)
    windows = ids[index]
    return windows[:, :-1], windows[:, 1:]


def _loss(model, x, y):
    logits = model(x)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def train(config: LMConfig, text: Text, lr: float, seed: int, progress=None) -> dict:
    """Trains a fresh GPT (initialised from `seed`, batches drawn from `seed`) for
    `config.steps` steps at peak learning rate `lr`.

    Args:
      config: the run (:class:`LMConfig`).
      text: the corpus (:func:`~inna_optax.training.text.load_text`).
      lr: the peak learning rate.
      seed: the initialisation's and the batches' seed.
      progress: called as ``progress(step, loss)`` after each step, or None.

    Returns:
      A dict: ``train_loss`` (the mean mini-batch loss over each window of
      `log_every` steps) with ``window_end_step``, ``valid_loss`` (the mean loss over
      `eval_batches` fixed validation batches) with ``eval_step``, ``n_params``,
      ``steps_per_second`` (compilation excluded) and ``seconds``.

    Example:
      >>> import pathlib, tempfile
      >>> from inna_optax.training.language import LMConfig, load_text, train
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "t.txt"
      >>> _ = path.write_text("to be or not to be " * 20)
      >>> config = LMConfig(layers=1, heads=1, width=8, context=8, batch_size=4,
      ...                   steps=4, warmup=1, log_every=2, eval_every=4, eval_batches=1)
      >>> result = train(config, load_text(path, 8), lr=1e-2, seed=0)
      >>> result["window_end_step"].tolist(), result["eval_step"].tolist()
      ([2, 4], [4])
    """
    start = time.perf_counter()
    model = GPT(
        len(text.vocab),
        config.context,
        config.layers,
        config.heads,
        config.width,
        rngs=nnx.Rngs(seed),
    )
    graphdef, params = nnx.split(model, nnx.Param)
    step_fn, eval_fn = _steps(config, graphdef)
    opt_state = make_optimizer(config, lr, params).init(params)
    rng = np.random.default_rng([seed, 1])
    valid = [
        batches(text.valid, config.context, config.batch_size, np.random.default_rng([2**31, i]))
        for i in range(config.eval_batches)
    ]
    lr = jnp.float32(lr)
    losses, valid_loss, eval_step = [], [], []
    timed_from = None
    for step in range(1, config.steps + 1):
        x, y = batches(text.train, config.context, config.batch_size, rng)
        params, opt_state, loss = step_fn(params, opt_state, x, y, lr)
        losses.append(loss)
        if timed_from is None:
            jax.block_until_ready(loss)
            timed_from = time.perf_counter()
        if step % config.eval_every == 0 or step == config.steps:
            valid_loss.append(float(np.mean([eval_fn(params, vx, vy) for vx, vy in valid])))
            eval_step.append(step)
        if progress is not None:
            progress(step, loss)
    losses = np.asarray(jnp.stack(losses))
    every = config.log_every
    window_start = np.arange(0, config.steps, every)
    window_end = np.minimum(window_start + every, config.steps)
    seconds = time.perf_counter() - start
    return {
        "train_loss": np.asarray(
            [losses[a:e].mean() for a, e in zip(window_start, window_end, strict=True)]
        ),
        "window_end_step": window_end,
        "valid_loss": np.asarray(valid_loss),
        "eval_step": np.asarray(eval_step),
        "n_params": count_params(model),
        "steps_per_second": (config.steps - 1) / max(time.perf_counter() - timed_from, 1e-9),
        "seconds": seconds,
    }


def _steps(config: LMConfig, graphdef):
    """The jitted train step (params, opt_state, x, y, lr) and evaluation (params, x, y)."""

    @jax.jit
    def evaluate(params, x, y):
        return _loss(nnx.merge(graphdef, params), x, y)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, x, y, lr):
        loss, grads = jax.value_and_grad(lambda p: _loss(nnx.merge(graphdef, p), x, y))(params)
        updates, opt_state = make_optimizer(config, lr, params).update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    return step, evaluate
