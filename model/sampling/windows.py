"""Which stretch of tokens each sampling window covers (Jukebox's windowing, spec 5.2).

A level with ``total`` tokens and a prior of context ``n_ctx`` is sampled in windows of ``n_ctx``
tokens that advance by ``hop = int(hop_fraction * n_ctx)``; the last window is pulled back so it
ends exactly at ``total``. Tokens already present in a window (a prime, saved codes, or the overlap
with the previous window) are its context; the rest are new. Windows with nothing new are skipped.
A level shorter than one window is sampled in one partial window.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import InputError


@dataclass(frozen=True)
class Window:
    """Tokens ``[start, end)`` of one level: the first ``context`` are given, the next ``new`` are sampled."""

    start: int
    end: int
    context: int

    @property
    def new(self) -> int:
        return self.end - self.start - self.context

    @property
    def length(self) -> int:
        return self.end - self.start


def window_starts(total: int, n_ctx: int, hop: int) -> list[int]:
    """Start token of every full window over ``total`` tokens (needs ``total >= n_ctx``)."""
    if hop < 1:
        raise InputError(f"window hop of {hop} tokens is too small: the hop fraction must give at least 1 token")
    starts = []
    for start in range(0, total - n_ctx + hop, hop):
        starts.append(min(start, total - n_ctx))  # the last window ends exactly at the end
    return starts


def plan_windows(total: int, n_ctx: int, hop_fraction: float, existing: int = 0) -> list[Window]:
    """Windows that sample tokens ``existing .. total`` of one level, skipping those with nothing new."""
    if total < 1:
        raise InputError(f"nothing to sample: the level has {total} tokens")
    existing = max(0, min(existing, total))
    if total <= n_ctx:
        return [] if existing >= total else [Window(0, total, existing)]
    hop = int(hop_fraction * n_ctx)
    windows = []
    filled = existing
    for start in window_starts(total, n_ctx, hop):
        end = start + n_ctx
        context = min(max(0, filled - start), n_ctx)
        if end - start - context > 0:
            windows.append(Window(start, end, context))
            filled = end
    return windows
