"""A ``WindowSession`` over the transformer core's incremental decoding (``ConditionalAutoregressive.step``).

The window's conditioning (``x_cond``, ``y_cond``, ``encoder_kv``) is fixed when the session opens.
``prefix`` tokens (the lyric window of a merged lyrics+music model) are fed before the music as forced
context; music codes are shifted by ``vocab_shift`` into the merged vocabulary, and sampled ids are
shifted back (ids below the shift, i.e. lyric characters, become code 0, as in Jukebox).
"""

from __future__ import annotations

from typing import Protocol

import torch
from torch import Tensor

from model.prior.cache import KVCache


class Steppable(Protocol):
    def step(
        self, tokens: Tensor, cache: KVCache, x_cond: Tensor | None = None, y_cond: Tensor | None = None,
        encoder_kv: Tensor | None = None,
    ) -> Tensor: ...  # fmt: skip


class ARSession:
    """One window: a reset cache, fixed conditioning, chunked context refill, then one token per step."""

    def __init__(
        self, model: Steppable, cache: KVCache, x_cond: Tensor | None = None, y_cond: Tensor | None = None,
        encoder_kv: Tensor | None = None, prefix: Tensor | None = None, vocab_shift: int = 0,
    ) -> None:  # fmt: skip
        self.model, self.cache = model, cache
        self.x_cond, self.y_cond, self.encoder_kv = x_cond, y_cond, encoder_kv
        self.prefix, self.vocab_shift = prefix, vocab_shift
        cache.reset()

    def _step(self, tokens: Tensor) -> Tensor:  # (B, T) -> (B, V) logits of the last position
        first = self.cache.length == 0
        logits = self.model.step(
            tokens, self.cache, x_cond=self.x_cond, y_cond=self.y_cond if first else None,
            encoder_kv=self.encoder_kv if first else None,
        )  # (B, T or T+1, V)  # fmt: skip
        return logits[:, -1]

    def prefill(self, context: Tensor, chunk_size: int) -> Tensor:
        seq = context + self.vocab_shift  # (B, C)
        if self.prefix is not None:
            seq = torch.cat([self.prefix.to(seq), seq], dim=1)  # (B, P + C)
        logits = self._step(seq[:, :chunk_size])  # fresh cache: position 0 plus the first chunk
        for start in range(chunk_size, seq.shape[1], chunk_size):
            logits = self._step(seq[:, start : start + chunk_size])
        return logits  # (B, V)

    def step(self, tokens: Tensor) -> Tensor:
        return self._step(tokens[:, None])  # (B, V)

    def to_music(self, tokens: Tensor) -> Tensor:
        return (tokens - self.vocab_shift).clamp_(min=0) if self.vocab_shift else tokens
