"""Progress reports and cancellation shared by every long-running operation.

Model code never prints or sleeps: it calls ``progress(Progress(...))`` between units of work and
``cancel.raise_if_cancelled()`` at safe points. The CLI renders progress with tqdm; the daemon turns
it into protocol events.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from common.errors import Cancelled


@dataclass(frozen=True)
class Progress:
    """One progress report. ``done``/``total`` count units of ``stage`` (samples, tokens, steps)."""

    stage: str  # "encode", "decode", "sample", "train", ...
    done: int
    total: int
    level: int | None = None  # VQ-VAE / prior level, 0 = bottom
    window: int | None = None  # index of the current sampling window
    windows: int | None = None  # number of sampling windows at this level

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)


ProgressFn = Callable[[Progress], None]


class CancelToken:
    """Thread-safe cancellation flag, set from any thread and checked by the worker between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = "cancelled"

    def cancel(self, reason: str = "cancelled") -> None:
        self.reason = reason
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled(self.reason)


def report(progress: ProgressFn | None, item: Progress) -> None:
    """Call ``progress`` if given; the one place that tolerates a missing callback."""
    if progress is not None:
        progress(item)
