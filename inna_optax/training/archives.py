"""Reading archives with bounds: what an archive member (CIFAR's .tar.gz, an image
folder's .zip) may inflate to."""

from __future__ import annotations

from inna_optax.training.errors import DataError

#: The most an archive (CIFAR's .tar.gz, an image folder's .zip) may inflate to, in
#: all; one member may take a quarter of it. `--archive-limit-mb` raises it.
ARCHIVE_LIMIT = 2 << 30


def _member_limit(total: int) -> int:
    return total // 4


def read_bounded(origin: str, size: int, read, budget: list[int], total: int) -> bytes:
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
