"""The data sets, by name (:data:`DATASETS`), and the one data preparation of the
training pipeline (:func:`prepare`): a data set read from its files (or downloaded
and checked), a fixed draw of examples, and per-channel normalisation of images or
windows of text. The image loaders are in :mod:`inna_optax.training.loaders` and
:mod:`inna_optax.training.images`, text
in :mod:`inna_optax.training.text`. The core optimizer does not import this module.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tempfile
import urllib.request
from collections.abc import Callable
from pathlib import Path

import numpy as np

from inna_optax.training.archives import ARCHIVE_LIMIT
from inna_optax.training.errors import DataError
from inna_optax.training.images import load_folder
from inna_optax.training.loaders import Split, load_cifar, load_digits, load_mnist
from inna_optax.training.text import load_text

__all__ = ["DATASETS", "DataSet", "Split", "download", "load", "prepare", "subset"]


@dataclasses.dataclass(frozen=True)
class DataSet:
    """How to read one data set of the registry.

    Attributes:
      load: ``load(path, archive_limit=..., context=...)`` returns a :class:`Split`
        (uint8 images, or windows of token ids for text); `path` is None for a
        data set without files.
      kind: ``"images"`` (a classifier's: epochs over a shuffled training set) or
        ``"text"`` (a language model's: windows of `context` characters drawn at
        random, evaluated on a fixed draw of validation windows).
      help: one line for the documentation.
      downloads: (url, SHA-256) of the official files, for ``--download``.
      needs_files: whether ``--data-dir`` (or ``--download``) is needed.
      test_examples: the test (validation) draw when none is asked (None: all).
    """

    load: Callable[..., Split]
    kind: str
    help: str
    downloads: tuple[tuple[str, str], ...] = ()
    needs_files: bool = True
    test_examples: int | None = None


def _cifar(which: str) -> Callable[..., Split]:
    def load_one(path: Path, archive_limit: int = ARCHIVE_LIMIT, **_) -> Split:
        folder = _image_folder(path)
        if folder is None:
            return load_cifar(path, which, archive_limit)
        ds = load_folder(folder, archive_limit)  # CIFAR as train/<class>/, test/<class>/
        want = 10 if which == "cifar10" else 100
        if ds.num_classes != want:
            raise DataError(f"{folder}: {ds.num_classes} classes, {which} has {want}")
        return ds._replace(name=f"{which}:{folder.name}")

    return load_one


def _folder(path: Path, archive_limit: int = ARCHIVE_LIMIT, **_) -> Split:
    return load_folder(_image_folder(path) or path, archive_limit)


def _text(path: Path, context: int = 128, **_) -> Split:
    """Tiny Shakespeare's usual split (the first 90% of the characters for training)
    as windows: inputs ``ids[i : i + context]`` and targets one character on, as
    read-only views of the ids (nothing copied until a batch is drawn)."""
    text = load_text(path, context)

    def windows(ids):
        view = np.lib.stride_tricks.sliding_window_view
        return view(ids[:-1], context), view(ids[1:], context)

    (x_train, y_train), (x_valid, y_valid) = windows(text.train), windows(text.valid)
    return Split(x_train, y_train, x_valid, y_valid, len(text.vocab), text.name)


_OSSCI = "https://ossci-datasets.s3.amazonaws.com/mnist/"
_TORONTO = "https://www.cs.toronto.edu/~kriz/"

#: The registry: name -> :class:`DataSet`. ``--dataset``'s choices are its keys.
DATASETS: dict[str, DataSet] = {
    "digits": DataSet(
        lambda path, **_: load_digits(),
        "images",
        "scikit-learn's 1,797 8x8 digits, embedded (no files needed)",
        needs_files=False,
    ),
    "mnist": DataSet(
        lambda path, **_: load_mnist(path),
        "images",
        "MNIST: a directory of its four IDX files (gzipped or not)",
        downloads=(
            (
                _OSSCI + "train-images-idx3-ubyte.gz",
                "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            ),
            (
                _OSSCI + "train-labels-idx1-ubyte.gz",
                "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            ),
            (
                _OSSCI + "t10k-images-idx3-ubyte.gz",
                "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            ),
            (
                _OSSCI + "t10k-labels-idx1-ubyte.gz",
                "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            ),
        ),
    ),
    "cifar10": DataSet(
        _cifar("cifar10"),
        "images",
        "CIFAR-10: its python pickles (a directory or the .tar.gz), or an image folder",
        downloads=(
            (
                _TORONTO + "cifar-10-python.tar.gz",
                "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
            ),
        ),
    ),
    "cifar100": DataSet(
        _cifar("cifar100"),
        "images",
        "CIFAR-100: its python pickles (a directory or the .tar.gz), or an image folder",
        downloads=(
            (
                _TORONTO + "cifar-100-python.tar.gz",
                "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
            ),
        ),
    ),
    "folder": DataSet(
        _folder, "images", "an image folder (or .zip): train/<class>/ and test/<class>/"
    ),
    "text": DataSet(
        _text,
        "text",
        "a UTF-8 text file, as characters (the first nine tenths for training)",
        test_examples=2048,
    ),
}


def download(dataset: str, cache_dir: str | os.PathLike, sources=None, progress=True) -> Path:
    """Fetches `dataset`'s files into `cache_dir`, verifying SHA-256.

    Files already present with the right checksum are kept. A file is written
    to a temporary name and renamed only once its checksum matches, so a failed
    or corrupted download leaves no partial file behind.

    Args:
      dataset: "mnist", "cifar10" or "cifar100".
      cache_dir: where the files go.
      sources: (url, sha256) pairs overriding the official ones (for tests and mirrors).
      progress: print one line per file.

    Returns:
      `cache_dir`, ready for the dataset's loader.
    """
    offered = sorted(k for k, v in DATASETS.items() if v.downloads)
    if dataset not in offered and sources is None:
        raise ValueError(f"--download supports {offered}, not {dataset!r}")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    for url, sha256 in sources or DATASETS[dataset].downloads:
        target = cache / url.rsplit("/", 1)[-1]
        if target.is_file() and _sha256(target) == sha256:
            continue
        if progress:
            print(f"downloading {url}")
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{target.name}.", suffix=".part")
        try:
            digest = hashlib.sha256()
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as response:
                while chunk := response.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != sha256:
                raise DataError(
                    f"{url}: SHA-256 {digest.hexdigest()} does not match the expected {sha256}"
                )
            os.replace(tmp, target)
        except OSError as e:  # urllib's URLError included: no network, refused, timed out
            Path(tmp).unlink(missing_ok=True)
            raise DataError(f"{url}: download failed ({getattr(e, 'reason', e)})") from e
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return cache


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load(
    dataset: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download_to=None,
    archive_limit: int = ARCHIVE_LIMIT,
    context: int = 128,
) -> Split:
    """Loads `dataset` (a key of :data:`DATASETS`) with its loader.

    Args:
      dataset: the data set's name; CIFAR-10 and 100 also read an image folder or
        ``.zip``.
      data_dir: the data set's files (not needed for the digits).
      download_to: a directory: fetch the official files there first
        (:func:`download`).
      archive_limit: the most an archive may inflate to, in bytes.
      context: for text, the windows' length in characters.

    Returns:
      A :class:`Split`.

    Raises:
      DataError: the files are missing or bad (the message names them), or the
        training and test images differ in shape.

    Example:
      >>> from inna_optax.training.data import load
      >>> load("digits").name
      'digits'
    """
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose from {sorted(DATASETS)}")
    spec = DATASETS[dataset]
    if download_to is not None:
        data_dir = download(dataset, download_to)
    if spec.needs_files and data_dir is None:
        raise ValueError(f"--dataset {dataset} needs --data-dir (or --download)")
    if spec.needs_files and data_dir is not None and not Path(data_dir).exists():
        raise DataError(f"{data_dir}: no such file or directory")
    path = None if data_dir is None else Path(data_dir)
    ds = spec.load(path, archive_limit=archive_limit, context=context)
    if ds.x_train.shape[1:] != ds.x_test.shape[1:]:
        raise DataError(
            f"{data_dir}: the test images are {'x'.join(map(str, ds.x_test.shape[1:]))}, "
            f"the training images {'x'.join(map(str, ds.x_train.shape[1:]))}: they must agree"
        )
    return ds


def _image_folder(path: Path) -> Path | None:
    """`path` itself, or its only .zip, when it holds an image folder; else None."""
    if path.is_file():
        return path if path.suffix.lower() == ".zip" else None
    if (path / "train").is_dir():
        return path
    zips = sorted(path.glob("*.zip"))
    return zips[0] if len(zips) == 1 else None


def subset(x: np.ndarray, y: np.ndarray, n: int | None, seed: int = 0):
    """n examples drawn without replacement by a fixed permutation (all when n is None
    or too large). Not the first n: image folders list their files class by class."""
    if n is None or n >= len(x):
        return x, y
    idx = np.sort(np.random.default_rng(seed).permutation(len(x))[:n])
    return x[idx], y[idx]


def prepare(config, strict: bool = False) -> Split:
    """The one data preparation: load `config.dataset` (from `config.data_dir`, or
    downloaded into `config.cache_dir`), draw `config.train_examples` and
    `config.test_examples` (a fixed random draw, :func:`subset`; the data set's
    own test draw when unset), and normalise images with the drawn training
    images' per-channel mean and std (text stays token ids).

    Args:
      config: a :class:`~inna_optax.training.Config`.
      strict: refuse `train_examples` or `test_examples` above what the data set
        has (the command line's choice); otherwise all of it is used, and
        ``summary.json`` records the numbers used.

    Returns:
      A :class:`Split` of float32 images (or int32 windows of text) and int32
      labels.

    Raises:
      DataError: bad files, more examples asked than the data set has (`strict`),
        or fewer training examples than one batch.

    Example:
      >>> from inna_optax.training import Config, prepare
      >>> split = prepare(Config(train_examples=320))
      >>> split.x_train.shape, split.x_train.dtype.name
      ((320, 8, 8, 1), 'float32')
    """
    spec = DATASETS[config.dataset]
    download_to = None
    if config.download:
        download_to = Path(config.cache_dir).expanduser() / config.dataset
    ds = load(
        config.dataset,
        config.data_dir,
        download_to=download_to,
        archive_limit=config.archive_limit_mb << 20,
        context=config.context,
    )
    test_examples = config.test_examples or spec.test_examples
    for flag, asked, have in (
        ("--train-examples", config.train_examples, len(ds.x_train)),
        ("--test-examples", config.test_examples, len(ds.x_test)),
    ):
        if strict and asked is not None and asked > have:
            raise DataError(f"{flag}: {asked:,} asked, {ds.name} has {have:,}")
    x_train, y_train = subset(ds.x_train, ds.y_train, config.train_examples)
    x_test, y_test = subset(ds.x_test, ds.y_test, test_examples)
    what = "windows" if spec.kind == "text" else "images"
    if len(x_train) < config.batch_size:
        raise DataError(
            f"{ds.name}: {len(x_train)} training {what}, fewer than one batch of "
            f"{config.batch_size}"
        )
    if len(x_test) == 0:
        raise DataError(f"{ds.name}: no test {what}")
    if spec.kind == "text":
        return Split(x_train, y_train, x_test, y_test, ds.num_classes, ds.name)
    mean, std = channel_stats(x_train)
    return Split(
        normalize(x_train, mean, std),
        y_train,
        normalize(x_test, mean, std),
        y_test,
        ds.num_classes,
        ds.name,
        ds.classes,
    )


def check(split: Split) -> None:
    """Refuses what training would take silently: a non-finite input or a label
    outside 0 .. num_classes - 1, in either part.

    Raises:
      DataError: naming the part and the value.
    """
    for part, x, y in (
        ("training", split.x_train, split.y_train),
        ("test", split.x_test, split.y_test),
    ):
        if np.issubdtype(x.dtype, np.floating) and not np.isfinite(x).all():
            raise DataError(f"{split.name}: a {part} input is not finite (NaN or inf)")
        if y.size and (y.min() < 0 or y.max() >= split.num_classes):
            bad = y.min() if y.min() < 0 else y.max()
            raise DataError(
                f"{split.name}: a {part} label is {bad}, outside 0 to {split.num_classes - 1}"
            )


def digest(split: Split) -> str:
    """A fingerprint of the examples and labels a run trains and tests on, kept in
    its checkpoints so that ``--resume`` on other data (files replaced, a class
    added) is refused instead of trained on. A view (text's windows) is hashed
    through the array that owns its memory, with its shape and strides."""
    h = hashlib.blake2b(digest_size=16)
    for a in split[:4]:
        owner = a
        while isinstance(owner.base, np.ndarray):
            owner = owner.base
        h.update(f"{a.dtype}{a.shape}{a.strides}{split.num_classes};".encode())
        h.update(np.ascontiguousarray(owner).data)
    return h.hexdigest()


def normalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((x.astype(np.float32) / 255.0) - mean) / std


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std on [0, 1], from the training images."""
    x = x.reshape(-1, x.shape[-1]).astype(np.float64) / 255.0
    return x.mean(0).astype(np.float32), np.maximum(x.std(0), 1e-6).astype(np.float32)
