"""The engine's view of a ``JukeboxPrior`` (``LevelPrior``): per-window conditioning and a reused cache.

Precision is chosen where the model is loaded (model/sampling/precision.py ``place_prior``); a level keeps
no second copy of its weights. ``use_precision("auto")`` keeps that choice, ``"bf16"`` casts an fp32 prior
down in place (for good), and ``"fp32"`` on a bf16 prior is refused, since its fp32 weights are gone.

Step strategy (``step``, model/prior/fast_step.py ``STEPS``): ``compiled`` sends single codes through a
torch.compile'd ``FastStep`` made per cache, ``eager`` through the sliced eager step, ``auto`` picks compiled
where torch.compile can work here. A FastStep whose compilation fails logs why and the level goes on eagerly.
"""

from __future__ import annotations

import torch
from torch import Tensor

from common.errors import InputError
from model.prior.cache import KVCache
from model.prior.fast_step import FastStep, resolve_step
from model.prior.prior import JukeboxPrior
from model.sampling.ar_session import CachedSession
from model.sampling.precision import DTYPES, PRECISIONS


class JukeboxLevel:
    """Wraps one level's ``JukeboxPrior`` for ``sample_levels``; one cache is kept and rewound per window.

    ``step``: ``"auto"``, ``"compiled"`` or ``"eager"``, resolved on the prior's device now (``self.step`` is
    then ``"compiled"`` or ``"eager"``). ``fold``: the ids in front of the codes in this level's logits.
    """

    def __init__(self, prior: JukeboxPrior, step: str = "auto") -> None:
        self.prior = prior
        c = prior.config
        self.level, self.n_ctx, self.cond_downsample = c.level, c.n_ctx, c.cond_downsample
        self.fold = prior.step_fold
        self.step = resolve_step(step, self.device)
        self._cache: KVCache | None = None
        self._fast: FastStep | None = None

    @property
    def device(self) -> torch.device:
        return self.prior.prior.x_emb.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.prior.prior.x_emb.weight.dtype

    @property
    def precision(self) -> str:
        """``"bf16"`` or ``"fp32"``: what the prior runs in."""
        return "bf16" if self.dtype == torch.bfloat16 else "fp32"

    def use_precision(self, precision: str) -> None:
        """Run in ``precision``: ``auto`` keeps the precision chosen at load; ``bf16`` casts an fp32 prior
        down in place (no fp32 copy is kept); ``fp32`` on a bf16 prior is an ``InputError``."""
        if precision not in PRECISIONS:
            raise InputError(f"precision {precision!r} is not known: use one of {', '.join(PRECISIONS)}")
        if precision in ("auto", self.precision):
            return
        if precision == "fp32":
            raise InputError(
                f"the level-{self.level} prior runs in bf16 (chosen when the model was loaded) and its fp32 weights "
                "are not kept: load the model with precision fp32 to sample in fp32"
            )
        self.prior.to(DTYPES[precision])
        self._cache = self._fast = None  # both hold the old dtype (and the FastStep its frozen weights)

    def open_window(self, labels: Tensor | None, upper: Tensor | None, batch: int) -> CachedSession:
        cond = self.prior.conditioning(labels, upper)
        cache = self._cache_for(batch)
        prior = self.prior

        def feed(codes: Tensor) -> Tensor:  # (B, T) -> (B, V); single codes go to the compiled step while it works
            fast = self._fast if self._fast is not None and self._fast.compiled else None
            return prior.logits_step(codes, cond, cache, fast)

        return CachedSession(feed, cache, self.fold)

    def _cache_for(self, batch: int) -> KVCache:
        if self._cache is None or self._cache.batch != batch:
            self._cache = self._fast = None  # free the old ones before allocating
            self._cache = self.prior.new_cache(batch, self.dtype, self.device)
            if self.step == "compiled":
                self._fast = FastStep(self.prior.prior, self._cache, compile=True)
        return self._cache
