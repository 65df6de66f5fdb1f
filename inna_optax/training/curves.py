"""A run's curves: per epoch (evaluation) and per window of steps, as
``metrics.jsonl`` records them."""

import dataclasses

import numpy as np


@dataclasses.dataclass
class Curves:
    """A run's curves, NaN where not done: per epoch (replicas, epochs) and per
    window of `every` steps (replicas, epochs * per_epoch windows)."""

    epochs: dict[str, np.ndarray]  # train_loss, test_loss, test_accuracy
    windows: np.ndarray
    per_epoch: int
    every: int

    @classmethod
    def empty(cls, replicas: int, epochs: int, steps: int, every: int) -> "Curves":
        per_epoch = -(-steps // every)
        names = ("train_loss", "test_loss", "test_accuracy")
        return cls(
            {k: np.full((replicas, epochs), np.nan) for k in names},
            np.full((replicas, epochs * per_epoch), np.nan),
            per_epoch,
            every,
        )

    def _span(self, epoch: int) -> slice:
        return slice((epoch - 1) * self.per_epoch, epoch * self.per_epoch)

    def window_ends(self, steps: int) -> np.ndarray:
        """The number of steps done at the end of each window."""
        epochs = self.windows.shape[1] // self.per_epoch
        ends = np.minimum(np.arange(1, self.per_epoch + 1) * self.every, steps)
        return (np.arange(epochs)[:, None] * steps + ends).ravel()

    def of(self, epoch: int) -> dict[str, np.ndarray]:
        """One epoch's curves, as metrics.jsonl records them."""
        return {
            **{k: v[:, epoch - 1] for k, v in self.epochs.items()},
            "train_loss_steps": self.windows[:, self._span(epoch)],
        }

    def put(self, epoch: int, record: dict) -> None:
        """Writes back what :meth:`of` gave (from metrics.jsonl or a checkpoint)."""
        for k, v in self.epochs.items():
            v[:, epoch - 1] = np.asarray(record[k], np.float64)
        if "train_loss_steps" in record:  # absent from the records of 0.1.0
            self.windows[:, self._span(epoch)] = np.asarray(record["train_loss_steps"])

    def put_losses(self, part: slice, epoch: int, losses: np.ndarray) -> None:
        """A replica group's mini-batch losses of one epoch, (steps, group): their
        mean and the mean of each window."""
        with np.errstate(invalid="ignore", over="ignore"):
            self.epochs["train_loss"][part, epoch - 1] = losses.mean(0)
            windows = [
                losses[a : a + self.every].mean(0) for a in range(0, len(losses), self.every)
            ]
            self.windows[part, self._span(epoch)] = np.stack(windows, axis=1)


def plain(arrays: dict) -> dict:
    """Lists for JSON (NaN included: orbax's JSON and json.loads read it back);
    float32 values round-trip exactly through float64."""
    return {k: np.asarray(v, np.float64).tolist() for k, v in arrays.items()}
