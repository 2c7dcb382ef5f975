"""A ``WindowSession`` over any cached step function (a Jukebox prior's ``logits_step`` or the core's ``step``).

The step function feeds newly known music codes (B, T) into the window's cache and returns the logits
(B, V) of the next code; on a fresh cache it feeds position 0 first (``JukeboxPrior.logits_step`` is one;
wrap the core's ``step``, which returns every fed position, as ``lambda t: model.step(t, cache, ...)[:, -1]``).
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
        return self._step(codes)  # (B, V): predicts the next code
