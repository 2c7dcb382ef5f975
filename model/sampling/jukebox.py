"""The engine's view of a ``JukeboxPrior`` (``LevelPrior``): per-window conditioning and a reused cache.

Precision: ``use_precision`` casts the prior module in place (``bf16`` or ``fp32``) the first time a
run asks for a different one; the prior keeps LayerNorm, softmax and logits in fp32 inside. The
fp32 weights are kept aside when first cast down, so switching back to fp32 is exact.
"""

from __future__ import annotations

import torch
from torch import Tensor

from model.prior.cache import KVCache
from model.prior.fast_step import FastStep
from model.prior.prior import JukeboxPrior
from model.sampling.ar_session import CachedSession

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


class JukeboxLevel:
    """Wraps one level's ``JukeboxPrior`` for ``sample_levels``; one cache is kept and rewound per window."""

    def __init__(self, prior: JukeboxPrior, compile: bool = False) -> None:
        self.prior = prior
        self.compile = compile  # single tokens through a torch.compile'd FastStep (docs/priors.md)
        c = prior.config
        self.level, self.n_ctx, self.cond_downsample = c.level, c.n_ctx, c.cond_downsample
        self._cache: KVCache | None = None
        self._fp32_state: dict[str, Tensor] | None = None

    @property
    def device(self) -> torch.device:
        return self.prior.prior.x_emb.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.prior.prior.x_emb.weight.dtype

    def use_precision(self, precision: str) -> None:
        """Cast the prior to ``precision``; fp32 weights are kept aside on the first cast down, so a
        later switch back to fp32 restores them exactly (bf16 -> fp32 alone would lose their low bits)."""
        dtype = DTYPES[precision]
        if self.dtype == dtype:
            return
        if self._fp32_state is None and self.dtype == torch.float32:
            self._fp32_state = {k: v.detach().clone() for k, v in self.prior.state_dict().items()}
        self.prior.to(dtype)
        if dtype == torch.float32 and self._fp32_state is not None:
            self.prior.load_state_dict(self._fp32_state)
        self._cache = None

    def open_window(self, labels: Tensor | None, upper: Tensor | None, batch: int) -> CachedSession:
        cond = self.prior.conditioning(labels, upper)
        cache = self._cache_for(batch)
        c = self.prior.config
        if c.lyrics == "merged":  # sample over all merged ids, as Jukebox does (see sample_from_logits)
            return CachedSession(lambda codes: self.prior.logits_step(codes, cond, cache, fold=False), cache, c.n_vocab)
        return CachedSession(lambda codes: self.prior.logits_step(codes, cond, cache), cache)

    def _cache_for(self, batch: int) -> KVCache:
        if self._cache is None or self._cache.batch != batch:
            self._cache = None  # free the old one before allocating
            self._cache = self.prior.new_cache(batch, self.dtype, self.device)
            if self.compile:
                FastStep(self.prior.prior, self._cache).attach()
        return self._cache
