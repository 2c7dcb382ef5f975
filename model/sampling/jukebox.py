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
from model.conditioners.network import ConditionerSet, ConditionInput
from model.conditioners.window import WindowConditions
from model.prior.cache import KVCache
from model.prior.fast_step import FastStep, resolve_step
from model.prior.prior import JukeboxPrior
from model.sampling.ar_session import CachedSession
from model.sampling.precision import DTYPES, PRECISIONS


class JukeboxLevel:
    """Wraps one level's ``JukeboxPrior`` for ``sample_levels``; one cache is kept and rewound per window.

    ``step``: ``"auto"``, ``"compiled"`` or ``"eager"``, resolved on the prior's device now (``self.step`` is
    then ``"compiled"`` or ``"eager"``). ``fold``: the ids in front of the codes in this level's logits.
    ``conditioners``: the MIDI, stem and grid conditioners of this level (``model.conditioners``), if any.
    """

    def __init__(self, prior: JukeboxPrior, step: str = "auto", conditioners: ConditionerSet | None = None) -> None:
        self.prior = prior
        self.conditioners = conditioners
        if conditioners is not None:
            conditioners.eval().to(self.device)
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

    def open_window(
        self, labels: Tensor | None, upper: Tensor | None, batch: int, conditions: WindowConditions | None = None,
        label_weights: Tensor | None = None,
    ) -> CachedSession:  # fmt: skip
        """A window for ``batch`` rows. With ``conditions`` the conditioners' output is added to ``x_cond``;
        each guided condition (scale s != 0) adds ``batch`` unconditioned rows (that condition left out) to
        the same cache, and the logits become ``l_c + sum_i s_i * (l_c - l_u_i)`` (classifier-free guidance),
        so a scale of 0 gives exactly the logits without guidance. ``label_weights`` (K,): a style blend, with
        ``labels`` (batch, K, n_y) (``JukeboxPrior.conditioning``)."""
        variants: list[dict[str, ConditionInput] | None] = [None]
        scales: list[float] = []
        if conditions is not None and conditions.inputs:
            if self.conditioners is None:
                raise InputError(
                    f"the level-{self.level} prior has no conditioners for {', '.join(conditions.inputs)}"
                )
            guided = conditions.guided()
            variants = [dict(conditions.inputs)]
            variants += [{k: v for k, v in conditions.inputs.items() if k != name} for name, _ in guided]
            scales = [s for _, s in guided]
        k = len(variants)
        extra = self._extra(variants, batch)
        rep = (lambda t: t) if k == 1 else (lambda t: t.repeat(k, *([1] * (t.dim() - 1))))
        cond = self.prior.conditioning(
            None if labels is None else rep(labels), None if upper is None else rep(upper), extra, label_weights
        )
        cache = self._cache_for(k * batch)
        prior = self.prior

        def feed(codes: Tensor) -> Tensor:  # (B, T) -> (B, V); single codes go to the compiled step while it works
            fast = self._fast if self._fast is not None and self._fast.compiled else None
            logits = prior.logits_step(rep(codes), cond, cache, fast)  # (k B, V)
            if k == 1:
                return logits
            parts = logits.view(k, batch, -1)
            out = parts[0].clone()
            for i, s in enumerate(scales, start=1):
                both = torch.isfinite(parts[0]) & torch.isfinite(parts[i])  # masked ids stay masked
                out += s * torch.where(both, parts[0] - parts[i], torch.zeros_like(out))
            return out

        return CachedSession(feed, cache, self.fold)

    def _extra(self, variants: list[dict[str, ConditionInput] | None], batch: int) -> Tensor | None:
        """The conditioners' output for each variant of the conditions, stacked (k batch, n_ctx, W)."""
        if self.conditioners is None or variants == [None]:
            return None
        width = self.prior.config.transformer.width
        outs = []
        for inputs in variants:
            out = self.conditioners(inputs) if inputs else None
            outs.append(out if out is not None else torch.zeros(batch, self.n_ctx, width, device=self.device))
        return torch.cat(outs).to(self.dtype)  # (k batch, n_ctx, W) in the prior's dtype

    def _cache_for(self, batch: int) -> KVCache:
        if self._cache is None or self._cache.batch != batch:
            self._cache = self._fast = None  # free the old ones before allocating
            self._cache = self.prior.new_cache(batch, self.dtype, self.device)
            if self.step == "compiled":
                self._fast = FastStep(self.prior.prior, self._cache, compile=True)
        return self._cache
