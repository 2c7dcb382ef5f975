"""A tiny bigram "prior" with the engine's LevelPrior interface, for testing the engine's bookkeeping.

Its next-token logits depend on the previous token, the position in the window, the labels and the
codes of the level above, so windows, labels and conditioning slices all show in its output.
"""

from __future__ import annotations

import torch
from torch import Tensor


class ToySession:
    fold = 0  # logits over the codes only

    def __init__(self, prior: ToyPrior, y: Tensor | None, upper: Tensor | None, batch: int) -> None:
        self.prior, self.y, self.upper, self.batch, self.pos = prior, y, upper, batch, 0

    def _logits(self, prev: Tensor) -> Tensor:
        p = self.prior
        logits = p.table[prev] + p.pos_table[self.pos % p.pos_table.shape[0]]  # (B, V)
        if self.y is not None:
            logits = logits + p.label_table[self.y.sum(-1) % p.label_table.shape[0]]
        if self.upper is not None:
            r = p.cond_downsample
            logits = logits + p.upper_table[self.upper[:, min(self.pos // r, self.upper.shape[1] - 1)]]
        return logits

    def feed(self, codes: Tensor) -> Tensor:
        self.pos += codes.shape[1]
        prev = codes[:, -1] if codes.shape[1] else torch.full((self.batch,), self.prior.bins)
        return self._logits(prev)


class ToyPrior:
    def __init__(self, level: int, n_ctx: int, bins: int = 16, cond_downsample: int = 0, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed + level)
        self.level, self.n_ctx, self.bins, self.cond_downsample = level, n_ctx, bins, cond_downsample
        self.device = torch.device("cpu")
        self.table = torch.randn(bins + 1, bins, generator=g) * 2
        self.pos_table = torch.randn(n_ctx, bins, generator=g)
        self.label_table = torch.randn(97, bins, generator=g)
        self.upper_table = torch.randn(bins, bins, generator=g) * 2
        self.windows_opened = 0

    def use_precision(self, precision: str) -> None:
        self.precision = precision

    def open_window(self, labels: Tensor | None, upper: Tensor | None, batch: int) -> ToySession:
        self.windows_opened += 1
        if upper is not None:
            assert upper.shape == (batch, self.n_ctx // self.cond_downsample)
        return ToySession(self, labels, upper, batch)
