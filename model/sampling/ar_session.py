"""A ``WindowSession`` over any cached step function (a Jukebox prior's ``logits_step`` or the core's ``step``).

The step function feeds newly known music codes (B, T) into the window's cache and returns logits
(B, T or T + 1, V) whose last row predicts the next code; on a fresh cache it feeds position 0 first.
The session refills a window's context in ``chunk_size`` pieces, then feeds one code per token.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import Tensor

from model.prior.cache import KVCache


class CachedSession:
    """One window: the cache is rewound on open; the step function closes over the window's conditioning."""

    def __init__(self, step: Callable[[Tensor], Tensor], cache: KVCache) -> None:
        self._step, self.cache = step, cache
        cache.reset()

    def prefill(self, context: Tensor, chunk_size: int) -> Tensor:
        logits = self._step(context[:, :chunk_size])[:, -1]  # fresh cache: position 0 plus the first chunk
        for start in range(chunk_size, context.shape[1], chunk_size):
            logits = self._step(context[:, start : start + chunk_size])[:, -1]  # (B, V)
        return logits

    def step(self, tokens: Tensor) -> Tensor:
        return self._step(tokens[:, None])[:, -1]  # (B, V)

    def to_music(self, tokens: Tensor) -> Tensor:
        return tokens
