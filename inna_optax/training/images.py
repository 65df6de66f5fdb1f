"""Image folders, ``train/<class>/*`` and ``test/<class>/*``, as a directory or a
``.zip``: the loader behind ``--dataset folder`` (and CIFAR-10 as JPEG files)."""

from __future__ import annotations

import io
import os
import sys
import zipfile
from pathlib import Path

import numpy as np

from inna_optax.training.archives import ARCHIVE_LIMIT, read_bounded
from inna_optax.training.errors import DataError
from inna_optax.training.loaders import Split

# what Pillow decodes; other files in the folder are skipped with a note
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def load_folder(source: str | os.PathLike, archive_limit: int = ARCHIVE_LIMIT) -> Split:
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
      A :class:`Split` of uint8 images (N, H, W, C) and int32 labels, the classes
      numbered in the sorted order of their names.

    Raises:
      DataError: a split or class is missing, an image cannot be decoded or has
        another size; the message names the file.

    Example:
      >>> import pathlib, tempfile
      >>> from PIL import Image
      >>> from inna_optax.training.images import load_folder
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
        files = [n for n in archive.namelist() if not n.endswith("/")]
        budget = [archive_limit]

        def read(name):
            info = archive.getinfo(name)
            with archive.open(info) as member:
                where = f"{source}:{name}"
                return read_bounded(where, info.file_size, member.read, budget, archive_limit)
    else:
        files = [str(p.relative_to(source)) for p in sorted(source.rglob("*")) if p.is_file()]

        def read(name):
            return (source / name).read_bytes()

    by_split = _layout(source, files)
    classes = sorted({c for c, _ in by_split["train"]})
    if len(classes) < 2:
        raise DataError(
            f"{source}: train/ has one class ({classes[0]}); a classifier needs two or more"
        )
    index = {c: i for i, c in enumerate(classes)}
    arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for part, items in by_split.items():
        xs: list[np.ndarray] = []
        ys: list[int] = []
        for cls, name in items:
            if cls not in index:
                raise DataError(f"{source}: {name}: class {cls!r} is not among train's {classes}")
            img = _decode_image(f"{source}: {name}", read(name), Image)
            if xs and img.shape != xs[0].shape:
                raise DataError(f"{source}: {name}: size {img.shape}, others are {xs[0].shape}")
            xs.append(img)
            ys.append(index[cls])
        arrays[part] = (np.stack(xs).astype(np.uint8), np.asarray(ys, np.int32))
    (x_train, y_train), (x_test, y_test) = arrays["train"], arrays["test"]
    return Split(
        x_train, y_train, x_test, y_test, len(classes), f"folder:{source.name}", tuple(classes)
    )


def _layout(source: Path, files: list[str]) -> dict[str, list[tuple[str, str]]]:
    """The images of each split as (class, file name) pairs; other files are named in
    a note, an image below its class folder refused."""
    by_split: dict[str, list[tuple[str, str]]] = {"train": [], "test": []}
    skipped = []
    for name in sorted(files):
        parts = Path(name).parts
        if any(part.startswith(".") or part == "__MACOSX" for part in parts):
            continue  # hidden files and folders, and a Mac archiver's resource forks
        if not name.lower().endswith(IMAGE_SUFFIXES):
            skipped.append(name)
            continue
        # allow one leading folder (e.g. cifar10/train/cat/0001.jpg)
        split = next((i for i in range(len(parts) - 2) if parts[i] in by_split), None)
        if split is None:
            skipped.append(name)
        elif len(parts) - split != 3:
            raise DataError(
                f"{source}: {name}: images must lie directly in train/<class>/ or "
                "test/<class>/, not in a folder below it"
            )
        else:
            by_split[parts[split]].append((parts[split + 1], name))
    if not by_split["train"] or not by_split["test"]:
        raise DataError(f"{source}: expected images under train/<class>/ and test/<class>/")
    if skipped:
        print(
            f"note: {source}: skipped {len(skipped)} file{'s' if len(skipped) != 1 else ''} "
            f"that {'are' if len(skipped) != 1 else 'is'} not an image under train/ or "
            f"test/ (first: {skipped[0]})",
            file=sys.stderr,
        )
    return by_split


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
