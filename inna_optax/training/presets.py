"""The figure benchmarks' run sizes, as data: :data:`PRESETS` and :func:`preset`."""

from typing import Any

from inna_optax.training.config import Config

#: Run sizes of the figure benchmarks, as Config changes (None: the whole split):
#: ``smoke`` (seconds on tiny data, for the tests), ``quick`` (a 2-core CPU, about
#: 20 minutes per figure), ``medium`` (the full-width NiN on a CPU in an hour or
#: two), ``long`` (ten times the quick preset's steps per run, about two hours on a
#: CPU) and ``paper`` (the paper's sizes, for a GPU). See :func:`preset`.
PRESETS: dict[str, dict[str, Any]] = {
    # seconds on tiny data: the test suite's smoke runs
    "smoke": dict(
        train_examples=64, test_examples=32, width=0.0625, epochs=2, seeds=(0, 1), batch_size=16
    ),
    # a 2-core CPU, within about 20 minutes per figure: the paper's settings, small
    "quick": dict(train_examples=3200, test_examples=1000, width=0.125, epochs=10, seeds=(0, 1, 2)),
    # Figure 3 on a CPU in an hour or two: the paper's full-width NiN
    "medium": dict(train_examples=10_000, test_examples=2000, width=1.0, epochs=2, seeds=(0, 1, 2)),
    # ten times the quick preset's steps per run (10,000 on MNIST), on a CPU in about
    # two hours per figure: the quick preset's width on 40,000 images for 8 epochs
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
# A CIFAR step (3 colour channels, 32x32 pixels) costs about twice an MNIST step on a
# 2-core CPU, so the quick preset trains on half as many images there.
DATASET_PRESETS: dict[tuple[str, str], dict[str, Any]] = {
    ("quick", "cifar10"): dict(train_examples=1600),
    ("quick", "cifar100"): dict(train_examples=1600),
}


def preset(name: str, dataset: str, **changes) -> Config:
    """The Config of preset `name` for `dataset`, with `changes` (None values ignored).

    Args:
      name: a key of :data:`PRESETS`.
      dataset: the data set; CIFAR's quick preset draws half as many images.
      **changes: Config fields to set over the preset.

    Returns:
      A :class:`Config` (not yet validated: see :meth:`Config.validate`).

    Example:
      >>> from inna_optax.training import preset
      >>> config = preset("quick", "cifar10", epochs=2)
      >>> config.train_examples, config.width, config.epochs
      (1600, 0.125, 2)
    """
    values = {**PRESETS[name], **DATASET_PRESETS.get((name, dataset), {})}
    values.update({k: v for k, v in changes.items() if v is not None})
    return Config(dataset=dataset, **values)
