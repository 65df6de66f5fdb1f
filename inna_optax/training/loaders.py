"""The image data sets' loaders: MNIST (IDX), CIFAR-10/100 (python pickles) and an
embedded default (scikit-learn's digits); image folders are in
:mod:`inna_optax.training.images`.

Each returns a :class:`Split` of uint8 images (N, H, W, C) and int32 labels;
errors name the file and what is wrong with it.
"""

from __future__ import annotations

import gzip
import io
import math
import os
import pickle
import struct
import tarfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

from inna_optax.training.archives import ARCHIVE_LIMIT, read_bounded
from inna_optax.training.errors import DataError


class Split(NamedTuple):
    """A data set's training and test parts: what a loader returns (uint8 images),
    and what :func:`~inna_optax.training.data.prepare` makes of it for the network
    (float32 normalised images; for text, windows of token ids and their next
    tokens as labels). Labels are int32; `num_classes` counts the classes (the
    vocabulary for text)."""

    x_train: np.ndarray  # (N, H, W, C) images, or (N, context) token ids
    y_train: np.ndarray  # (N,) labels, or (N, context) next tokens
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str
    classes: tuple[str, ...] = ()  # the class names, where the data name them (folders)


# ------------------------------------------------------------------ MNIST (IDX)
MNIST_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _find(directory: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (directory / name).is_file():
            return directory / name
    raise DataError(f"{directory / stem}[.gz]: file not found")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Reads an IDX file (gzipped or not) of unsigned bytes."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot read ({e})") from e
    if len(raw) < 4:
        raise DataError(f"{path}: truncated header ({len(raw)} bytes)")
    zero, dtype_code, ndim = raw[0] * 256 + raw[1], raw[2], raw[3]
    if zero != 0 or dtype_code != 0x08 or not 1 <= ndim <= 4:
        raise DataError(f"{path}: not an IDX file of unsigned bytes (magic {raw[:4].hex()})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated header")
    shape = struct.unpack(">" + "I" * ndim, raw[4:header])
    expected = math.prod(shape)  # Python's integers: a crafted header cannot overflow
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: shape {shape} needs {expected} bytes of data, found {len(raw) - header}"
            + (" (truncated)" if len(raw) - header < expected else "")
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _not_integer(values):
    """The first of `values` that is not an integer of int64's range."""
    return next(
        (v for v in values if not (isinstance(v, int | np.integer) and abs(int(v)) < 2**63)),
        values[0],
    )


def _integer_labels(origin: str, values) -> np.ndarray:
    """A pickle's labels as int64, refusing what a cast would bend: fractions (3.7
    would train as 3), strings, None, mappings, nested lists, integers past int64."""
    try:
        labels = np.asarray(values)
    except (ValueError, TypeError, OverflowError):  # ragged lists
        raise DataError(
            f"{origin}: labels must be a flat list of integers, found {_not_integer(values)!r:.40}"
        ) from None
    if labels.ndim != 1:
        got = f"shape {labels.shape}" if labels.ndim else f"a {type(values).__name__}"
        raise DataError(f"{origin}: labels must be a flat list of integers, got {got}")
    if labels.dtype == object or labels.dtype.kind in "USVb":
        bad = _not_integer(labels.tolist())
        raise DataError(f"{origin}: labels must be integers, found {bad!r:.40}")
    if np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels)):
        return labels.astype(np.int64)  # 3.0 is 3
    if np.issubdtype(labels.dtype, np.floating):
        example = labels[labels != np.round(labels)][0]
        raise DataError(f"{origin}: labels must be integers, got {labels.dtype} (e.g. {example})")
    if not np.issubdtype(labels.dtype, np.integer):  # complex numbers, dates
        raise DataError(f"{origin}: labels must be integers, got {labels.dtype} values")
    if labels.size and labels.max() > np.iinfo(np.int64).max:
        raise DataError(f"{origin}: a label is {labels.max()}, past any class number")
    return labels.astype(np.int64)


def _check_labels(path, labels, num_classes, n_images):
    if len(labels) != n_images:
        raise DataError(f"{path}: {len(labels)} labels for {n_images} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{path}: labels must be in [0, {num_classes}), found {labels.min()}..{labels.max()}"
        )


def load_mnist(directory: str | os.PathLike) -> Split:
    """MNIST from its IDX files, gzipped or not, as published.

    Args:
      directory: holds train-images-idx3-ubyte, train-labels-idx1-ubyte,
        t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each possibly ``.gz``).

    Returns:
      A :class:`Split` of uint8 images (N, 28, 28, 1) and int32 labels.

    Raises:
      DataError: a file is missing, truncated, of the wrong magic number or shape,
        or a label is outside 0..9; the message names the file.

    Example:
      >>> import pathlib, struct, tempfile
      >>> import numpy as np
      >>> from inna_optax.training.loaders import load_mnist
      >>> d = pathlib.Path(tempfile.mkdtemp())
      >>> def idx(name, a):  # the IDX format: magic, shape, then the bytes
      ...     head = struct.pack(">HBB", 0, 8, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
      ...     (d / name).write_bytes(head + a.astype(np.uint8).tobytes())
      >>> for split, n in (("train", 6), ("t10k", 2)):
      ...     idx(f"{split}-images-idx3-ubyte", np.zeros((n, 28, 28)))
      ...     idx(f"{split}-labels-idx1-ubyte", np.arange(n) % 10)
      >>> ds = load_mnist(d)
      >>> ds.x_train.shape, ds.y_test.tolist()
      ((6, 28, 28, 1), [0, 1])
    """
    directory = Path(directory)
    paths = {k: _find(directory, stem) for k, stem in MNIST_FILES.items()}
    arrays = {k: read_idx(p) for k, p in paths.items()}
    for split in ("train", "test"):
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if x.ndim != 3:
            raise DataError(f"{paths[f'x_{split}']}: expected 3-D images, got shape {x.shape}")
        if y.ndim != 1:
            raise DataError(f"{paths[f'y_{split}']}: expected 1-D labels, got shape {y.shape}")
        _check_labels(paths[f"y_{split}"], y, 10, len(x))
    return Split(
        arrays["x_train"][..., None],
        arrays["y_train"].astype(np.int32),
        arrays["x_test"][..., None],
        arrays["y_test"].astype(np.int32),
        10,
        "mnist",
    )


# ------------------------------------------------------- CIFAR (python pickles)
CIFAR = {
    "cifar10": (
        "cifar-10-batches-py",
        [f"data_batch_{i}" for i in range(1, 6)],
        ["test_batch"],
        b"labels",
        10,
    ),
    "cifar100": ("cifar-100-python", ["train"], ["test"], b"fine_labels", 100),
}


def _cifar_members(
    source: Path, folder: str, names: list[str], limit: int = ARCHIVE_LIMIT
) -> dict[str, bytes]:
    """Reads the named batch files from a directory or a .tar.gz archive; archive
    members that are links are refused, and their sizes bounded by `limit`."""
    out = {}
    if source.is_file():
        budget = [limit]
        try:
            with tarfile.open(source, "r:*") as tar:
                for name in names:
                    where = f"{source}:{folder}/{name}"
                    try:
                        member = tar.getmember(f"{folder}/{name}")
                    except KeyError:
                        raise DataError(f"{source}: archive has no {folder}/{name}") from None
                    if member.issym() or member.islnk():
                        raise DataError(
                            f"{where}: is a link (to {member.linkname!r}), not a file: refusing it"
                        )
                    if not member.isfile():
                        raise DataError(f"{where}: is not a regular file")
                    handle = tar.extractfile(member)
                    if handle is None:  # a member that is no regular file
                        raise DataError(f"{where}: not a regular file")
                    out[name] = read_bounded(where, member.size, handle.read, budget, limit)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(f"{source}: not a readable .tar.gz ({e})") from e
        return out
    base = source / folder if (source / folder).is_dir() else source
    for name in names:
        path = base / name
        if not path.is_file():
            raise DataError(f"{path}: file not found")
        out[name] = path.read_bytes()
    return out


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles only what the official CIFAR batches hold: dicts, lists, bytes,
    numbers and NumPy arrays. Any other global (a function a crafted file would call)
    is refused before it is looked up."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed")
        return super().find_class(module, name)


def _cifar_batch(origin: str, raw: bytes, label_key: bytes, num_classes: int):
    try:
        batch = _CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DataError(f"{origin}: not a CIFAR python pickle ({type(e).__name__}: {e})") from e
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        raise DataError(f"{origin}: missing b'data' or {label_key!r}")
    data = np.asarray(batch[b"data"])
    if data.dtype != np.uint8:
        lo, hi = (data.min(), data.max()) if data.size else (0, 0)
        if not (np.issubdtype(data.dtype, np.integer) and 0 <= lo and hi <= 255):
            raise DataError(
                f"{origin}: data must be uint8 pixel values 0..255, got {data.dtype} "
                f"in [{lo}, {hi}]"
            )
        data = data.astype(np.uint8)
    labels = _integer_labels(origin, batch[label_key])
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{origin}: data must be (N, 3072) uint8, got {data.shape}")
    _check_labels(origin, labels, num_classes, len(data))
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int32)


def load_cifar(
    source: str | os.PathLike, which: str = "cifar10", archive_limit: int = ARCHIVE_LIMIT
) -> Split:
    """CIFAR-10 or CIFAR-100 from the official python version (directory or .tar.gz).

    The batches are read with an unpickler that accepts only the arrays, lists,
    numbers and strings those files hold, so a crafted pickle cannot run code.

    Args:
      source: the extracted folder (``cifar-10-batches-py`` or
        ``cifar-100-python``), a directory holding it or its ``.tar.gz``, or the
        ``.tar.gz`` itself.
      which: ``"cifar10"`` or ``"cifar100"`` (fine labels).
      archive_limit: the most a ``.tar.gz`` may inflate to, in bytes (one batch a
        quarter of it); links inside it are refused.

    Returns:
      A :class:`Split` of uint8 images (N, 32, 32, 3) and int32 labels.

    Raises:
      DataError: a batch is missing or is not a CIFAR pickle of (N, 3072) images
        with labels in range; the message names it.

    Example:
      >>> import pathlib, pickle, tempfile
      >>> import numpy as np
      >>> from inna_optax.training.loaders import load_cifar
      >>> d = pathlib.Path(tempfile.mkdtemp()) / "cifar-10-batches-py"
      >>> d.mkdir()
      >>> for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
      ...     batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [3, 7]}
      ...     _ = (d / name).write_bytes(pickle.dumps(batch))
      >>> ds = load_cifar(d.parent)
      >>> ds.x_train.shape, ds.num_classes
      ((10, 32, 32, 3), 10)
    """
    folder, train, test, label_key, num_classes = CIFAR[which]
    source = Path(source)
    if source.is_dir() and not (source / folder).is_dir():
        archive = (
            source / f"{folder.replace('-batches-py', '').replace('-python', '')}-python.tar.gz"
        )
        if archive.is_file():
            source = archive
    raw = _cifar_members(source, folder, train + test, archive_limit)
    parts = {
        n: _cifar_batch(f"{source}:{folder}/{n}", raw[n], label_key, num_classes)
        for n in train + test
    }
    x_tr = np.concatenate([parts[n][0] for n in train])
    y_tr = np.concatenate([parts[n][1] for n in train])
    x_te = np.concatenate([parts[n][0] for n in test])
    y_te = np.concatenate([parts[n][1] for n in test])
    return Split(x_tr, y_tr, x_te, y_te, num_classes, which)


# ------------------------------------------------------ embedded default: digits
def load_digits() -> Split:
    """scikit-learn's 1,797 8x8 handwritten digits (shipped with it: no download).

    A deterministic 80/20 split (stratified by order: every fifth image is test).

    Returns:
      A :class:`Split` of uint8 images (N, 8, 8, 1), the 0..16 intensities
      scaled to 0..255, and int32 labels.

    Example:
      >>> from inna_optax.training.loaders import load_digits
      >>> ds = load_digits()
      >>> ds.x_train.shape, ds.x_test.shape, ds.num_classes
      ((1437, 8, 8, 1), (360, 8, 8, 1), 10)
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = np.clip(bunch.images * (255.0 / 16.0), 0, 255).astype(np.uint8)[..., None]
    y = bunch.target.astype(np.int32)
    test = np.arange(len(x)) % 5 == 0
    return Split(x[~test], y[~test], x[test], y[test], 10, "digits")
