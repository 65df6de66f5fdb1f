"""The progress of a run: a bar on a terminal, a line now and then elsewhere."""

import sys
import time


class Progress:
    """A bar on a terminal that moves at least every second; elsewhere (a log file
    of a background run) one line to stderr every `every` seconds."""

    def __init__(self, enabled: bool, total: int, desc: str, every: float = 30.0):
        self.bar = None
        self.enabled, self.total, self.desc, self.every = enabled, total, desc, every
        self.done = 0
        self.start = self.shown = time.monotonic()
        self.paused_at: float | None = None  # when a phase (an evaluation) began
        if enabled and sys.stderr.isatty():
            self.bar = self._bar(0)

    def _bar(self, initial: int):
        from tqdm.auto import tqdm

        return tqdm(
            total=self.total,
            initial=initial,
            desc=self.desc,
            unit="step",
            leave=False,
            mininterval=1.0,
        )

    def step(self, losses_fn):
        if not self.enabled:
            return
        self.done += 1
        now = time.monotonic()
        if self.done == 1:  # the first step compiled: rates and the ETA time the rest
            self.start = now
            if self.bar is not None:
                self.bar.close()
                self.bar = self._bar(1)  # tqdm's rate counts from `initial`
            return
        if self.bar is not None:
            self.bar.update(1)
            if now - self.shown > 2.0:
                self.shown = now
                self.bar.set_postfix(loss=f"{losses_fn():.4f}", refresh=False)
        elif now - self.shown > self.every:
            self.shown = now
            rate = (self.done - 1) / max(now - self.start, 1e-9)
            print(
                f"{self.desc}: step {self.done}/{self.total}, {rate:.2f} steps/s, "
                f"loss {losses_fn():.4f}",
                file=sys.stderr,
                flush=True,
            )

    def phase(self, name: str | None) -> None:
        """Names what the run does now on the bar (``evaluating``), or the steps again
        (``None``). The time spent in a phase counts in neither the rate nor the ETA
        of the steps."""
        now = time.monotonic()
        if name is not None:
            self.paused_at = now
        elif self.paused_at is not None:
            self.start += now - self.paused_at
            self.paused_at = None
            if self.bar is not None:
                self.bar.unpause()  # tqdm's clock skips the phase too
        if self.bar is not None:
            self.bar.set_description(self.desc if name is None else name, refresh=True)

    def write(self, log, line: str) -> None:
        """`log(line)` on a line of its own: the bar cleared first, drawn again after."""
        if self.bar is None:
            log(line)
            return
        self.bar.clear()
        log(line)
        self.bar.refresh()

    def close(self):
        if self.bar is not None:
            self.bar.close()
