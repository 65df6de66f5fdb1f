"""Runs as data: the figure benchmarks' run sizes and the GPT's recipes
(:data:`PRESETS`, ``--preset`` of the command line) and :func:`preset`."""

from typing import Any

from inna_optax.training.config import Config

#: Runs as Config changes (None: the whole split). The NiN's run sizes of the figure
#: benchmarks: ``smoke`` (seconds on tiny data, for the tests), ``quick`` (a 2-core
#: CPU, minutes per figure), ``medium`` (the full-width NiN on a CPU in an hour or
#: two), ``long`` (ten times the quick preset's steps per run, half an hour per figure
#: on a CPU) and ``paper`` (the paper's sizes, for a GPU); ``benchmarks/RESULTS.md``
#: gives each run's time. The GPT's recipes
#: (they set ``model``): ``nanogpt-cpu``, nanoGPT's Tiny Shakespeare run for a CPU
#: (its README's command), and ``nanogpt-gpu``, its ``train_shakespeare_char``
#: config as it is (for a GPU). See :func:`preset`.
PRESETS: dict[str, dict[str, Any]] = {
    # seconds on tiny data: the test suite's smoke runs, on one device (a program
    # sharded over several compiles slower; the tests of sharding ask for it)
    "smoke": dict(
        train_examples=64,
        test_examples=32,
        width=0.0625,
        epochs=2,
        seeds=(0, 1),
        batch_size=16,
        devices=1,
    ),
    # a 2-core CPU, within about 20 minutes per figure: the paper's settings, small
    "quick": dict(train_examples=3200, test_examples=1000, width=0.125, epochs=10, seeds=(0, 1, 2)),
    # Figure 3 on a CPU in an hour or two: the paper's full-width NiN
    "medium": dict(train_examples=10_000, test_examples=2000, width=1.0, epochs=2, seeds=(0, 1, 2)),
    # ten times the quick preset's steps per run (10,000 on MNIST), on a CPU in about
    # half an hour per figure: the quick preset's width on 40,000 images for 8 epochs
    "long": dict(
        train_examples=40_000,
        test_examples=2000,
        width=0.125,
        epochs=8,
        seeds=(0, 1),
        log_every=50,
    ),
    # the paper: full data and NiN, batch 32, five seeds (meant for a GPU)
    "paper": dict(
        train_examples=None, test_examples=None, width=1.0, epochs=100, seeds=(0, 1, 2, 3, 4)
    ),
}
# nanoGPT's character-level Tiny Shakespeare (karpathy/nanoGPT,
# config/train_shakespeare_char.py): no biases, the head tied to the token embedding,
# AdamW at 1e-3 warmed up over 100 steps then down a cosine to 1e-4 at the last step,
# weight decay 0.1 on the matrices, clipping at 1; validation every 250 steps
_NANOGPT = dict(
    model="gpt",
    dataset="text",
    layers=4,
    heads=4,
    embed_dim=128,
    context=64,
    batch_size=12,
    bias=False,
    tie_embeddings=True,
    dropout=0.0,
    steps=2000,
    eval_every=250,
    test_examples=240,  # 20 batches of 12 (its README's --eval_iters=20)
    log_every=10,
    optimizer="adamw",
    lr=1e-3,
    schedule="cosine",
    warmup=100,
    final_lr_ratio=0.1,
    clip=1.0,
)
PRESETS["nanogpt-cpu"] = _NANOGPT
PRESETS["nanogpt-gpu"] = {
    **_NANOGPT,
    **dict(layers=6, heads=6, embed_dim=384, context=256, batch_size=64, dropout=0.2),
    **dict(steps=5000, test_examples=12_800),  # eval_iters 200 batches of 64
}
# Settings of one optimizer in a preset: nanoGPT's AdamW betas (0.9, 0.99) and the
# weight decay 0.1 that every optimizer with one takes (the INNAprop paper's protocol)
OPTIMIZER_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    **{(name, "adamw"): dict(b2=0.99, weight_decay=0.1) for name in ("nanogpt-cpu", "nanogpt-gpu")},
    **{(name, "adam"): dict(b2=0.99) for name in ("nanogpt-cpu", "nanogpt-gpu")},
    # INNAprop's RMSprop average at AdamW's beta_2
    **{
        (name, "innaprop"): dict(sigma=0.99, weight_decay=0.1)
        for name in ("nanogpt-cpu", "nanogpt-gpu")
    },
    **{(name, "inna"): dict(weight_decay=0.1) for name in ("nanogpt-cpu", "nanogpt-gpu")},
}
# A CIFAR step (3 colour channels, 32x32 pixels) costs about twice an MNIST step on a
# 2-core CPU, so the quick preset trains on half as many images there.
DATASET_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("quick", "cifar10"): dict(train_examples=1600),
    ("quick", "cifar100"): dict(train_examples=1600),
}


def preset_values(name: str, dataset: str | None = None, optimizer: str | None = None) -> dict:
    """The Config changes of preset `name`, for `dataset` (CIFAR's quick preset
    draws half as many images) and `optimizer` (a recipe's settings of it), or the
    preset's own."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
    values = dict(PRESETS[name])
    dataset = dataset or values.get("dataset")
    optimizer = optimizer or values.get("optimizer")
    values.update(DATASET_PRESETS.get((name, dataset or ""), {}))
    values.update(OPTIMIZER_PRESETS.get((name, optimizer or ""), {}))
    return values


def preset(name: str, dataset: str | None = None, **changes) -> Config:
    """The Config of preset `name` for `dataset`, with `changes` (None values ignored).

    Args:
      name: a key of :data:`PRESETS`.
      dataset: the data set (default: the preset's); CIFAR's quick preset draws half
        as many images.
      **changes: Config fields to set over the preset (an ``optimizer`` among them
        picks the preset's settings of it).

    Returns:
      A :class:`Config` (not yet validated: see :meth:`Config.validate`).

    Example:
      >>> from inna_optax.training import preset
      >>> config = preset("quick", "cifar10", epochs=2)
      >>> config.train_examples, config.width, config.epochs
      (1600, 0.125, 2)
      >>> config = preset("nanogpt-cpu", data_dir="input.txt")
      >>> config.optimizer, config.b2, config.context, config.steps
      ('adamw', 0.99, 64, 2000)
    """
    values = preset_values(name, dataset, changes.get("optimizer"))
    if dataset is not None:
        values["dataset"] = dataset
    values.update({k: v for k, v in changes.items() if v is not None})
    return Config(**values)
