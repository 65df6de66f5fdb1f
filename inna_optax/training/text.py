"""Text files as characters, for the language model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from inna_optax.training.errors import DataError


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
      DataError: the file is missing, unreadable, not UTF-8, empty, of one
        distinct character, or a part is not longer than `context`.
      ValueError: `valid_fraction` outside (0, 1).

    Example:
      >>> import pathlib, tempfile
      >>> from inna_optax.training.text import load_text
      >>> path = pathlib.Path(tempfile.mkdtemp()) / "abc.txt"
      >>> _ = path.write_text("abcabc" * 10)
      >>> text = load_text(path, context=4)
      >>> text.vocab, len(text.train), len(text.valid), text.train[:4].tolist()
      ('abc', 54, 6, [0, 1, 2, 0])
    """
    if not 0 < valid_fraction < 1:
        raise ValueError(f"load_text: `valid_fraction` must be in (0, 1), got {valid_fraction!r}")
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
    if len(vocab) < 2:
        raise DataError(f"{path}: one distinct character ({vocab!r}): nothing to predict")
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
