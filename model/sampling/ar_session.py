"""A ``WindowSession`` over any cached step function (a Jukebox prior's ``logits_step`` or the core's ``step``).

The step function feeds newly known music codes (B, T) into the window's cache and returns logits
(B, T or T + 1, V) whose last row predicts the next code; on a fresh cache it feeds position 0 first.
``sample_window`` decides how many codes each call feeds (context chunks, then one code per token).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from model.prior.cache import KVCache


class CachedSession:
    """One window: the cache is rewound on open; the step function closes over the window's conditioning."""

    def __init__(self, step: Callable[[Tensor], Tensor], cache: KVCache, fold: int = 0) -> None:
        self._step, self.cache, self.fold = step, cache, fold  # fold: see WindowSession
        cache.reset()

    def feed(self, codes: Tensor) -> Tensor:
        return self._step(codes)[:, -1]  # (B, V): the last row predicts the next code
