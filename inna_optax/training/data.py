"""Data sets for the training pipeline: MNIST (IDX), CIFAR-10/100 (python pickles),
image folders (directory or .zip), an embedded default (scikit-learn's digits), and
text files as characters (:func:`load_text`, for the language model).

Every loader returns a :class:`Dataset` of uint8 images (N, H, W, C) and int32
labels. Errors name the file and what is wrong with it. The core optimizer does
not import this module.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import tarfile
import tempfile
import urllib.request
import zipfile
from pathlib import Path
from typing import NamedTuple

import numpy as np


class DataError(ValueError):
    """A data file is missing, truncated, corrupted or mislabelled."""


#: The most an archive (CIFAR's .tar.gz, an image folder's .zip) may inflate to, in
#: all; one member may take a quarter of it. `--archive-limit-mb` raises it.
ARCHIVE_LIMIT = 2 << 30


def _member_limit(total: int) -> int:
    return total // 4


def _bounded(origin: str, size: int, read, budget: list[int], total: int) -> bytes:
    """Reads one archive member of declared `size` with `read(n)`, refusing it when it
    inflates past a quarter of `total` or past what `budget[0]` has left."""
    limit = min(_member_limit(total), budget[0])
    if size > limit:
        raise DataError(
            f"{origin}: inflates to {size:,} bytes, more than the {limit:,} allowed "
            f"(--archive-limit-mb {total >> 20}: a member may take a quarter of it)"
        )
    data = read(limit + 1)  # a header may understate the size
    if len(data) > limit:
        raise DataError(f"{origin}: inflates past the {limit:,} bytes allowed")
    budget[0] -= len(data)
    return data


class Dataset(NamedTuple):
    x_train: np.ndarray  # uint8 (N, H, W, C)
    y_train: np.ndarray  # int32 (N,)
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str


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
    expected = int(np.prod(shape))
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: shape {shape} needs {expected} bytes of data, found {len(raw) - header}"
            + (" (truncated)" if len(raw) - header < expected else "")
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(shape)


def _check_labels(path, labels, num_classes, n_images):
    if len(labels) != n_images:
        raise DataError(f"{path}: {len(labels)} labels for {n_images} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(
            f"{path}: labels must be in [0, {num_classes}), found {labels.min()}..{labels.max()}"
        )


def load_mnist(directory: str | os.PathLike) -> Dataset:
    """MNIST from its IDX files, gzipped or not, as published.

    Args:
      directory: holds train-images-idx3-ubyte, train-labels-idx1-ubyte,
        t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each possibly ``.gz``).

    Returns:
      A :class:`Dataset` of uint8 images (N, 28, 28, 1) and int32 labels.

    Raises:
      DataError: a file is missing, truncated, of the wrong magic number or shape,
        or a label is outside 0..9; the message names the file.

    Example:
      >>> import pathlib, struct, tempfile
      >>> import numpy as np
      >>> from inna_optax.training.data import load_mnist
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
    return Dataset(
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
                    out[name] = _bounded(where, member.size, handle.read, budget, limit)
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
    labels = np.asarray(batch[label_key], np.int64)
    if data.ndim != 2 or data.shape[1] != 3072:
        raise DataError(f"{origin}: data must be (N, 3072) uint8, got {data.shape}")
    _check_labels(origin, labels, num_classes, len(data))
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels.astype(np.int32)


def load_cifar(
    source: str | os.PathLike, which: str = "cifar10", archive_limit: int = ARCHIVE_LIMIT
) -> Dataset:
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
      A :class:`Dataset` of uint8 images (N, 32, 32, 3) and int32 labels.

    Raises:
      DataError: a batch is missing or is not a CIFAR pickle of (N, 3072) images
        with labels in range; the message names it.

    Example:
      >>> import pathlib, pickle, tempfile
      >>> import numpy as np
      >>> from inna_optax.training.data import load_cifar
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
    return Dataset(x_tr, y_tr, x_te, y_te, num_classes, which)


# --------------------------------------------------------------- image folders
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def load_folder(source: str | os.PathLike, archive_limit: int = ARCHIVE_LIMIT) -> Dataset:
    """Images in `train/<class>/*` and `test/<class>/*`, as a directory or a .zip.

    Classes are the sorted folder names of `train/`; all images must share one size.

    Images are converted by mode: gray and RGB as they are, palette images to their
    colours, 16-bit gray scaled to 8 bits, RGBA and gray-alpha without the alpha;
    other modes (32-bit integers, floats) are refused naming the file.

    Args:
      source: the folder, or a ``.zip`` holding it.
      archive_limit: the most a ``.zip`` may inflate to, in bytes (one image a
        quarter of it).

    Returns:
      A :class:`Dataset` of uint8 images (N, H, W, C) and int32 labels, the classes
      numbered in the sorted order of their names.

    Raises:
      DataError: a split or class is missing, an image cannot be decoded or has
        another size; the message names the file.

    Example:
      >>> import pathlib, tempfile
      >>> from PIL import Image
      >>> from inna_optax.training.data import load_folder
      >>> root = pathlib.Path(tempfile.mkdtemp())
      >>> for split in ("train", "test"):
      ...     for cls in ("cat", "dog"):
      ...         (root / split / cls).mkdir(parents=True)
      ...         Image.new("RGB", (8, 8)).save(root / split / cls / "0.png")
      >>> ds = load_folder(root)
      >>> ds.x_train.shape, ds.y_train.tolist(), ds.num_classes
      ((2, 8, 8, 3), [0, 1], 2)
    """
    from PIL import Image  # pillow comes with matplotlib; only this loader needs it

    source = Path(source)
    if source.is_file():
        try:
            archive = zipfile.ZipFile(source)
        except (zipfile.BadZipFile, OSError) as e:
            raise DataError(f"{source}: not a readable .zip ({e})") from e
        names = [n for n in archive.namelist() if n.lower().endswith(IMAGE_SUFFIXES)]
        budget = [archive_limit]

        def read(name):
            info = archive.getinfo(name)
            with archive.open(info) as member:
                where = f"{source}:{name}"
                return _bounded(where, info.file_size, member.read, budget, archive_limit)
    else:
        names = [
            str(p.relative_to(source))
            for p in sorted(source.rglob("*"))
            if p.suffix.lower() in IMAGE_SUFFIXES
        ]

        def read(name):
            return (source / name).read_bytes()

    by_split: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    for name in sorted(names):
        parts = Path(name).parts
        # allow one leading folder (e.g. cifar10/train/cat/0001.jpg)
        for i in range(len(parts) - 2):
            if parts[i] in by_split and len(parts) - i == 3:
                by_split[parts[i]].append((parts[i + 1], name))
                break
    if not by_split["train"] or not by_split["test"]:
        raise DataError(f"{source}: expected images under train/<class>/ and test/<class>/")
    classes = sorted({c for c, _ in by_split["train"]})
    index = {c: i for i, c in enumerate(classes)}
    out = {}
    for split, items in by_split.items():
        xs, ys = [], []
        for cls, name in items:
            if cls not in index:
                raise DataError(f"{source}: {name}: class {cls!r} is not among train's {classes}")
            img = _decode_image(f"{source}: {name}", read(name), Image)
            if xs and img.shape != xs[0].shape:
                raise DataError(f"{source}: {name}: size {img.shape}, others are {xs[0].shape}")
            xs.append(img)
            ys.append(index[cls])
        out[split] = (np.stack(xs).astype(np.uint8), np.asarray(ys, np.int32))
    return Dataset(*out["train"], *out["test"], len(classes), f"folder:{source.name}")


def _decode_image(origin: str, raw: bytes, image_module) -> np.ndarray:
    """uint8 (H, W, 1) or (H, W, 3) pixels of one image file, converted by mode."""
    try:
        img = image_module.open(io.BytesIO(raw))
        img.load()
    except Exception as e:  # noqa: BLE001 - any decoding failure means a bad file
        raise DataError(f"{origin}: cannot decode image ({e})") from e
    mode = img.mode
    if mode.startswith("I;16"):  # 16-bit gray: 0..65535 onto 0..255
        pixels = np.asarray(img, np.uint16).astype(np.float64)
        return np.round(pixels / 257.0).astype(np.uint8)[..., None]
    if mode in ("1", "L", "LA"):
        return np.asarray(img.convert("L"))[..., None]
    if mode in ("P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr", "LAB", "HSV"):
        return np.asarray(img.convert("RGB"))
    kind = {"I": "32-bit integer", "F": "32-bit float"}.get(mode, "unsupported")
    raise DataError(
        f"{origin}: image mode {mode} ({kind}) cannot be read as 8-bit pixels; save it "
        "as 8-bit gray or RGB (or 16-bit gray)"
    )


# ------------------------------------------------------ embedded default: digits
def load_digits() -> Dataset:
    """scikit-learn's 1,797 8x8 handwritten digits (shipped with it: no download).

    A deterministic 80/20 split (stratified by order: every fifth image is test).

    Returns:
      A :class:`Dataset` of uint8 images (N, 8, 8, 1), the 0..16 intensities
      scaled to 0..255, and int32 labels.

    Example:
      >>> from inna_optax.training.data import load_digits
      >>> ds = load_digits()
      >>> ds.x_train.shape, ds.x_test.shape, ds.num_classes
      ((1437, 8, 8, 1), (360, 8, 8, 1), 10)
    """
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    x = np.clip(bunch.images * (255.0 / 16.0), 0, 255).astype(np.uint8)[..., None]
    y = bunch.target.astype(np.int32)
    test = np.arange(len(x)) % 5 == 0
    return Dataset(x[~test], y[~test], x[test], y[test], 10, "digits")


# ----------------------------------------------------------- text (characters)
class Text(NamedTuple):
    """A character-level corpus: token ids of the training and validation parts
    (int32) and the vocabulary, the sorted distinct characters of the whole file."""

    train: np.ndarray
    valid: np.ndarray
    vocab: str
    name: str


def load_text(path: str | os.PathLike, context: int, valid_fraction: float = 0.1) -> Text:
    """Reads a UTF-8 text file as characters: the first ``1 - valid_fraction`` of
    them for training, the rest for validation (Tiny Shakespeare's usual 90/10).

    Args:
      path: the text file.
      context: the model's context; each part must hold more characters than
        that, so that one input and its next-character targets fit.
      valid_fraction: the validation part's share, in (0, 1).

    Returns:
      A :class:`Text`.

    Raises:
      DataError: the file is missing, unreadable, not UTF-8, empty, or a part is
        not longer than `context`.

    Example:
      >>> import pathlib, tempfile
      >>> from inna_optax.training.data import load_text
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "abc.txt"
      >>> _ = path.write_text("abcabc" * 10)
      >>> text = load_text(path, context=4)
      >>> text.vocab, len(text.train), len(text.valid), text.train[:4].tolist()
      ('abc', 54, 6, [0, 1, 2, 0])
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror})") from None
    if not text:
        raise DataError(f"{path}: empty")
    vocab = "".join(sorted(set(text)))
    ids = np.searchsorted(
        np.frombuffer(vocab.encode("utf-32-le"), np.uint32),
        np.frombuffer(text.encode("utf-32-le"), np.uint32),
    ).astype(np.int32)
    cut = int(round(len(ids) * (1 - valid_fraction)))
    for name, part in (("training", ids[:cut]), ("validation", ids[cut:])):
        if len(part) <= context:
            raise DataError(
                f"{path}: its {name} part has {len(part):,} characters, not more than the "
                f"context of {context} (the file has {len(text):,})"
            )
    return Text(ids[:cut], ids[cut:], vocab, path.name)


# -------------------------------------------------------------------- download
# Official locations and SHA-256 of the published archives.
DOWNLOADS = {
    "mnist": [
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz",
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/train-labels-idx1-ubyte.gz",
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-images-idx3-ubyte.gz",
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/t10k-labels-idx1-ubyte.gz",
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    ],
    "cifar10": [
        (
            "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
        ),
    ],
    "cifar100": [
        (
            "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
            "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
        ),
    ],
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
    if dataset not in DOWNLOADS and sources is None:
        raise ValueError(f"--download supports {sorted(DOWNLOADS)}, not {dataset!r}")
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    for url, sha256 in sources or DOWNLOADS[dataset]:
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


# ------------------------------------------------------------------ dispatcher
def load(
    dataset: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download_to=None,
    archive_limit: int = ARCHIVE_LIMIT,
) -> Dataset:
    """Loads `dataset` with its loader.

    Args:
      dataset: ``"digits"``, ``"mnist"``, ``"cifar10"``, ``"cifar100"`` or
        ``"folder"``; CIFAR-10 also reads an image folder or ``.zip``.
      data_dir: the data set's files (not needed for the digits).
      download_to: a directory: fetch the official files there first
        (:func:`download`).
      archive_limit: the most an archive may inflate to, in bytes.

    Returns:
      A :class:`Dataset`.

    Raises:
      DataError: the files are missing or bad (the message names them), or the
        training and test images differ in shape.

    Example:
      >>> from inna_optax.training.data import load
      >>> load("digits").name
      'digits'
    """
    if dataset == "digits":
        return load_digits()
    if download_to is not None:
        data_dir = download(dataset, download_to)
    if data_dir is None:
        raise ValueError(f"--dataset {dataset} needs --data-dir (or --download)")
    if not Path(data_dir).exists():
        raise DataError(f"{data_dir}: no such file or directory")
    ds = _load_files(dataset, Path(data_dir), archive_limit)
    if ds.x_train.shape[1:] != ds.x_test.shape[1:]:
        raise DataError(
            f"{data_dir}: the test images are {'x'.join(map(str, ds.x_test.shape[1:]))}, "
            f"the training images {'x'.join(map(str, ds.x_train.shape[1:]))}: they must agree"
        )
    return ds


def _load_files(dataset: str, data_dir: Path, archive_limit: int) -> Dataset:
    if dataset == "mnist":
        return load_mnist(data_dir)
    if dataset in CIFAR:
        folder = _image_folder(data_dir)
        if folder is None:
            return load_cifar(data_dir, dataset, archive_limit)
        ds = load_folder(folder, archive_limit)  # CIFAR as train/<class>/, test/<class>/
        want = 10 if dataset == "cifar10" else 100
        if ds.num_classes != want:
            raise DataError(f"{folder}: {ds.num_classes} classes, {dataset} has {want}")
        return ds._replace(name=f"{dataset}:{folder.name}")
    if dataset == "folder":
        return load_folder(_image_folder(data_dir) or data_dir, archive_limit)
    raise ValueError(f"unknown dataset {dataset!r}")


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


class Split(NamedTuple):
    """Training and test arrays ready for the network: float32 images normalised
    with the training set's per-channel statistics, int32 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    name: str


def prepare(config, strict: bool = False) -> Split:
    """The one data preparation: load `config.dataset` (from `config.data_dir`, or
    downloaded into `config.cache_dir`), draw `config.train_examples` and
    `config.test_examples` (a fixed random draw, :func:`subset`), and normalise both
    splits with the drawn training images' per-channel mean and std.

    Args:
      config: a :class:`~inna_optax.training.Config`.
      strict: refuse `train_examples` or `test_examples` above what the data set
        has (the command line's choice); otherwise all of it is used, and
        ``summary.json`` records the numbers used.

    Returns:
      A :class:`Split` of float32 images and int32 labels.

    Raises:
      DataError: bad files, more examples asked than the data set has (`strict`),
        or fewer training images than one batch.

    Example:
      >>> from inna_optax.training import Config, prepare
      >>> split = prepare(Config(train_examples=320))
      >>> split.x_train.shape, split.x_train.dtype.name
      ((320, 8, 8, 1), 'float32')
    """
    download_to = None
    if config.download:
        download_to = Path(config.cache_dir).expanduser() / config.dataset
    ds = load(
        config.dataset,
        config.data_dir,
        download_to=download_to,
        archive_limit=config.archive_limit_mb << 20,
    )
    for flag, asked, have in (
        ("--train-examples", config.train_examples, len(ds.x_train)),
        ("--test-examples", config.test_examples, len(ds.x_test)),
    ):
        if strict and asked is not None and asked > have:
            raise DataError(f"{flag}: {asked:,} asked, {ds.name} has {have:,}")
    x_train, y_train = subset(ds.x_train, ds.y_train, config.train_examples)
    x_test, y_test = subset(ds.x_test, ds.y_test, config.test_examples)
    if len(x_train) < config.batch_size:
        raise DataError(
            f"{ds.name}: {len(x_train)} training images, fewer than one batch of "
            f"{config.batch_size}"
        )
    if len(x_test) == 0:
        raise DataError(f"{ds.name}: no test images")
    mean, std = channel_stats(x_train)
    return Split(
        normalize(x_train, mean, std),
        y_train,
        normalize(x_test, mean, std),
        y_test,
        ds.num_classes,
        ds.name,
    )


def normalize(x: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    return ((x.astype(np.float32) / 255.0) - mean) / std


def channel_stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std on [0, 1], from the training images."""
    x = x.reshape(-1, x.shape[-1]).astype(np.float64) / 255.0
    return x.mean(0).astype(np.float32), np.maximum(x.std(0), 1e-6).astype(np.float32)
