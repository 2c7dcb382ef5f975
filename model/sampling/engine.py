"""The level loop: sample levels top to bottom, each in windows, candidates in sub-batches.

Precision is chosen where the model is loaded (model/sampling/precision.py); each sampled prior is asked
to run in ``params.precision`` (``LevelPrior.use_precision``: ``auto`` keeps the load-time choice, and the
model keeps LayerNorm, softmax and logits in fp32 inside).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from torch import Tensor

from common.errors import InputError
from common.progress import CancelToken, Progress, ProgressFn, report
from model.conditioners.window import LevelConditions
from model.sampling.hooks import NO_HOOKS, Hooks
from model.sampling.lengths import Geometry
from model.sampling.logits import draw_uniforms, level_generators
from model.sampling.params import SamplingParams
from model.sampling.result import LevelTiming, SampleResult
from model.sampling.session import Draw, LevelPrior, sample_window
from model.sampling.windows import Window, plan_windows


class Labeller(Protocol):
    """A song's labels for one prior (``conditioning.labels.SongLabels``): per-window ``y`` (n_y,) int64."""

    def for_window(self, start_token: int, hop: int | None = None, n_ctx: int | None = None) -> Any: ...


@dataclass(frozen=True)
class LevelPlan:
    """What one sampling run extends: ``codes[level]`` (n_candidates, existing) to ``sample_length`` audio
    samples, for every level in ``levels`` in the order given (top first). ``labels[level]`` gives that
    prior's per-window labels (``SongLabels``); ``conditions[level]`` its MIDI, stem and grid conditions with
    their guidance scales (``model.conditioners.window``); ``mode`` is the task's name, kept in the result."""

    priors: Mapping[int, LevelPrior]
    geometry: Geometry
    codes: tuple[Tensor, ...]  # per level, level 0 first: (n_candidates, existing) int64
    sample_length: int
    levels: tuple[int, ...]
    labels: Mapping[int, Labeller] = field(default_factory=dict)
    mode: str = "generate"
    conditions: Mapping[int, LevelConditions] = field(default_factory=dict)  # MIDI, stems, grid per level


def sample_levels(plan: LevelPlan, params: SamplingParams, hooks: Hooks = NO_HOOKS) -> SampleResult:
    """Sample every level of ``plan``; returns every level's codes, given and sampled.

    ``hooks.level_done(level)`` fires after each level; progress and cancel as ``Hooks`` says.
    """
    geometry, n = plan.geometry, params.n_candidates
    codes = [c.long() for c in plan.codes]
    seeds = params.candidate_seeds()
    timings = []
    for level in plan.levels:
        if level not in plan.priors:
            raise InputError(f"this model has no prior for level {level}: it has levels {sorted(plan.priors)}")
        prior = plan.priors[level]
        for lv in (level, level + 1) if prior.cond_downsample else (level,):
            if codes[lv].shape[0] != n:
                raise InputError(f"level {lv} codes have {codes[lv].shape[0]} rows for {n} candidates: give one per candidate")
        prior.use_precision(params.precision)  # auto: the precision chosen at load (model/sampling/precision.py)
        run = _LevelRun.plan(prior, plan, level, codes[level].shape[1], params, hooks)
        generators = level_generators(seeds, level, geometry.n_levels - 1)  # a fresh stream per (seed, level)
        upper = codes[level + 1] if prior.cond_downsample else None
        t0 = time.perf_counter()
        parts = []
        with torch.inference_mode():
            for first in range(0, n, params.max_batch_size):
                rows = slice(first, min(n, first + params.max_batch_size))
                parts.append(run.rows(codes[level][rows], None if upper is None else upper[rows], generators[rows]))
        codes[level] = torch.cat(parts)  # (n, total)
        timings.append(LevelTiming(level, time.perf_counter() - t0, run.new_tokens * n, len(run.windows)))
        if hooks.level_done is not None:
            hooks.level_done(level)
    return SampleResult(plan.mode, tuple(codes), plan.sample_length, seeds, params, tuple(timings))


class _Counter:
    """Turns per-window token counts into ``Progress`` reports for one level."""

    def __init__(self, progress: ProgressFn | None, level: int, windows: int, total: int) -> None:
        self.progress, self.level, self.windows, self.total, self.done = progress, level, windows, total, 0

    def window(self, index: int, batch: int) -> Callable[[int], None]:
        base = self.done

        def on_tokens(done_in_window: int) -> None:
            self.done = base + done_in_window * batch
            report(self.progress, Progress("sample", self.done, self.total, self.level, index, self.windows))

        return on_tokens


@dataclass(frozen=True)
class _LevelRun:
    """One level's windows and draw settings; ``rows`` samples them for one sub-batch of candidates."""

    prior: LevelPrior
    total: int  # tokens of this level once sampled
    windows: list[Window]
    hop: int  # audio samples per token at this level
    draw: Draw
    labels: Labeller | None
    conditions: LevelConditions | None
    counter: _Counter
    cancel: CancelToken | None

    @classmethod
    def plan(
        cls, prior: LevelPrior, plan: LevelPlan, level: int, existing: int, params: SamplingParams, hooks: Hooks
    ) -> _LevelRun:
        geo = plan.geometry
        total = geo.tokens(plan.sample_length, level)
        windows = plan_windows(total, prior.n_ctx, params.hop_fraction_at(level, geo.n_levels), existing)
        new = sum(w.new for w in windows)
        draw = Draw(params.temperature_at(level, geo.n_levels), params.top_k, params.top_p, params.chunk_size,
                    params.progress_every)  # fmt: skip
        counter = _Counter(hooks.progress, level, len(windows), new * params.n_candidates)
        return cls(prior, total, windows, geo.hops[level], draw, plan.labels.get(level), plan.conditions.get(level),
                   counter, hooks.cancel)  # fmt: skip

    @property
    def new_tokens(self) -> int:
        return sum(w.new for w in self.windows)

    def rows(self, existing: Tensor, upper: Tensor | None, generators: list[torch.Generator]) -> Tensor:
        """All windows of this level for one sub-batch: ``existing`` (b, given) -> (b, total) codes."""
        prior, b = self.prior, existing.shape[0]
        buf = torch.zeros(b, self.total, dtype=torch.long, device=prior.device)  # (b, total)
        keep = min(existing.shape[1], self.total)
        buf[:, :keep] = existing[:, :keep].to(prior.device)
        for index, w in enumerate(self.windows):
            y, blend = None, {}
            if self.labels is not None:
                wl = self.labels.for_window(w.start, self.hop, prior.n_ctx)
                y = wl.y.to(prior.device).expand(b, -1)  # (b, n_y)
                if getattr(wl, "variants", None) is not None:  # a style blend: (b, K, n_y) and K weights
                    y = wl.variants.to(prior.device).expand(b, -1, -1)
                    blend = {"label_weights": wl.weights}
            cond = None
            if upper is not None:
                r = prior.cond_downsample
                cond = upper[:, w.start // r : (w.start + prior.n_ctx) // r].to(prior.device)  # (b, n_ctx / r)
            if self.conditions is not None:
                window = self.conditions.window(w.start, prior.n_ctx, b, prior.device)
                session = prior.open_window(y, cond, b, window, **blend)
            else:
                session = prior.open_window(y, cond, b, **blend)
            context = buf[:, w.start : w.start + w.context]
            new = sample_window(session, context, draw_uniforms(generators, w.new), self.draw, self.cancel,
                                self.counter.window(index, b))  # (b, w.new)  # fmt: skip
            buf[:, w.start + w.context : w.end] = new
        return buf
