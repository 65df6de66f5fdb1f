"""Stopping a run cleanly when the machine is taken back: SIGTERM (what SLURM,
Kubernetes and preemptible cloud machines send before killing), Ctrl-C (SIGINT) and
SIGHUP (a closed terminal or SSH session).

The signal handlers only record the signal; the training loop asks after each step
(``fit(..., stop=signals)``), saves a checkpoint at that step and stops. A signal
that arrives while the checkpoint is being written waits for it: the handler
never interrupts the save, so a second Ctrl-C cannot leave a half-written
checkpoint or crash JAX's runtime.

With several processes (``jax.distributed``) they must stop at the same step:
JAX's coordination service turns a SIGTERM on any host into a preemption notice
for all, and ``multihost_utils.reached_preemption_sync_point`` tells every process
at the same step.
"""

import os
import signal

import jax

# 128 + the signal's number
EXIT_CODES = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGHUP: 129}


class StopSignals:
    """A context that records SIGTERM, SIGINT and SIGHUP instead of letting them kill
    the process, and is the ``stop`` callable of :func:`~inna_optax.training.fit`.

    Example:
      >>> import os, signal
      >>> from inna_optax.training.preemption import StopSignals
      >>> with StopSignals() as stop:
      ...     os.kill(os.getpid(), signal.SIGTERM)
      ...     stop(1), stop.received
      (True, <Signals.SIGTERM: 15>)
    """

    def __init__(self):
        self.received: signal.Signals | None = None
        self._previous = {}
        self._wakeup = None  # (read end, write end, the previous wakeup fd)

    def _handle(self, signum, frame) -> None:
        if self.received is None:  # the first one counts; later ones wait for the save
            self.received = self._first_arrived() or signal.Signals(signum)

    def _first_arrived(self) -> signal.Signals | None:
        """The first of our signals to reach the process. Python runs the handlers of
        signals that arrived during one long call (a compiled step) in the order of
        their numbers, SIGINT's before SIGTERM's; its wakeup file descriptor gets
        their numbers in the order they came."""
        if self._wakeup is None:
            return None
        try:
            arrived = os.read(self._wakeup[0], 512)
        except OSError:  # nothing there (EAGAIN)
            return None
        return next((signal.Signals(n) for n in arrived if n in self._previous), None)

    def __enter__(self) -> "StopSignals":
        for sig in EXIT_CODES:
            if sig == signal.SIGTERM and jax.process_count() > 1:
                continue  # JAX's preemption notifier handles it for all processes
            self._previous[sig] = signal.signal(sig, self._handle)
        read, write = os.pipe()
        os.set_blocking(read, False)
        os.set_blocking(write, False)
        self._wakeup = (read, write, signal.set_wakeup_fd(write, warn_on_full_buffer=False))
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._wakeup is not None:
            read, write, previous = self._wakeup
            signal.set_wakeup_fd(previous)
            os.close(read)
            os.close(write)
            self._wakeup = None

    def __call__(self, step: int) -> bool:
        """Whether to stop after `step` steps: a signal arrived here, or (several
        processes) JAX's preemption notice reached this step on every process."""
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            try:
                if multihost_utils.reached_preemption_sync_point(step):
                    self.received = self.received or signal.SIGTERM
                    return True
            except RuntimeError:  # no preemption service in this runtime
                pass
            return False
        return self.received is not None

    @property
    def exit_code(self) -> int:
        return 130 if self.received is None else EXIT_CODES.get(self.received, 130)
