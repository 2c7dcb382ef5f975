"""Render ``Progress`` reports as tqdm bars on stderr (one bar per stage and level).

Bars appear only after a second (``delay``), so quick operations print nothing. When stderr is not a
terminal (a log file, a pipe) a bar is redrawn at most every ``LOG_INTERVAL_S`` seconds, not ten times a
second, so a long run leaves a readable log instead of megabytes of carriage returns.
"""

from __future__ import annotations

import sys
from types import TracebackType

from tqdm import tqdm

from common.progress import Progress

LOG_INTERVAL_S = 30.0
_UNITS = {"encode": "sample", "decode": "token", "sample": "token", "train": "step"}


class ProgressBars:
    """A context manager whose instance is a ``ProgressFn``: ``with ProgressBars() as bars: f(progress=bars)``."""

    def __init__(self, *, disable: bool = False, delay: float = 1.0) -> None:
        self._bars: dict[tuple[str, int | None], tqdm] = {}
        self._disable = disable
        self._delay = delay

    def __call__(self, item: Progress) -> None:
        key = (item.stage, item.level)
        bar = self._bars.get(key)
        if bar is None:
            label = item.stage if item.level is None else f"{item.stage} level {item.level}"
            bar = tqdm(
                total=item.total,
                desc=label,
                unit=_UNITS.get(item.stage, "it"),
                unit_scale=True,
                delay=self._delay,
                disable=self._disable,
                leave=False,
                mininterval=0.1 if sys.stderr.isatty() else LOG_INTERVAL_S,
            )
            self._bars[key] = bar
        if bar.total != item.total:
            bar.total = item.total
        bar.update(item.done - bar.n)

    def __enter__(self) -> ProgressBars:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        for bar in self._bars.values():
            bar.close()
        self._bars.clear()
