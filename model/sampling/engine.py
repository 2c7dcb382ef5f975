"""The level loop: sample levels top to bottom, each in windows, candidates in sub-batches.

Precision is chosen where the model is loaded (model/sampling/precision.py); each sampled prior is asked
to run in ``params.precision`` (``LevelPrior.use_precision``: ``auto`` keeps the load-time choice, and the
model keeps LayerNorm, softmax and logits in fp32 inside).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

from common.errors import InputError
from common.progress import CancelToken, Progress, ProgressFn, report
from model.sampling.lengths import Geometry
from model.sampling.logits import draw_uniforms, level_generators
from model.sampling.params import SamplingParams
from model.sampling.result import LevelTiming, SampleResult
from model.sampling.session import LevelPrior, sample_window
from model.sampling.windows import Window, plan_windows


class Labeller(Protocol):
    """A song's labels for one prior (``conditioning.labels.SongLabels``): per-window ``y`` (n_y,) int64."""

    def for_window(self, start_token: int, hop: int | None = None, n_ctx: int | None = None) -> Any: ...


def sample_levels(
    priors: Mapping[int, LevelPrior],
    geometry: Geometry,
    codes: Sequence[Tensor],
    sample_length: int,
    levels: Sequence[int],
    params: SamplingParams,
    labels: Mapping[int, Labeller] | None = None,
    mode: str = "ancestral",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> SampleResult:
    """Extend ``codes[level]`` (n_candidates, existing) to the full length for every level in ``levels``.

    ``levels`` are sampled in the order given (top first); ``labels[level]`` gives that prior's
    per-window labels (``SongLabels``). Returns every level's codes, given and sampled.
    """
    n = params.n_candidates
    codes = [c.long() for c in codes]
    seeds = params.candidate_seeds()
    timings = []
    for level in levels:
        if level not in priors:
            raise InputError(f"this model has no prior for level {level}: it has levels {sorted(priors)}")
        prior = priors[level]
        for lv in (level, level + 1) if prior.cond_downsample else (level,):
            if codes[lv].shape[0] != n:
                raise InputError(f"level {lv} codes have {codes[lv].shape[0]} rows for {n} candidates: give one per candidate")
        prior.use_precision(params.precision)  # auto: the precision chosen at load (model/sampling/precision.py)
        total = geometry.tokens(sample_length, level)
        windows = plan_windows(total, prior.n_ctx, params.hop_fraction_at(level, geometry.n_levels), codes[level].shape[1])
        upper = codes[level + 1] if prior.cond_downsample else None
        generators = level_generators(seeds, level, geometry.n_levels - 1)  # a fresh stream per (seed, level)
        t0 = time.perf_counter()
        parts = []
        counter = _Counter(progress, level, len(windows), sum(w.new for w in windows) * n)
        with torch.inference_mode():
            for first in range(0, n, params.max_batch_size):
                rows = slice(first, min(n, first + params.max_batch_size))
                parts.append(
                    _sample_rows(
                        prior, codes[level][rows], upper[rows] if upper is not None else None, total, windows,
                        geometry.hops[level], generators[rows], params.temperature_at(level, geometry.n_levels),
                        params, None if labels is None else labels.get(level), counter, cancel,
                    )
                )  # fmt: skip
        codes[level] = torch.cat(parts)  # (n, total)
        timings.append(LevelTiming(level, time.perf_counter() - t0, sum(w.new for w in windows) * n, len(windows)))
    return SampleResult(mode, tuple(codes), sample_length, seeds, params, tuple(timings))


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


def _sample_rows(
    prior: LevelPrior,
    existing: Tensor,
    upper: Tensor | None,
    total: int,
    windows: list[Window],
    hop: int,
    generators: list[torch.Generator],
    temperature: float,
    params: SamplingParams,
    labels: Labeller | None,
    counter: _Counter,
    cancel: CancelToken | None,
) -> Tensor:
    """All windows of one level for one sub-batch. Returns (b, total) codes."""
    b = existing.shape[0]
    buf = torch.zeros(b, total, dtype=torch.long, device=prior.device)  # (b, total)
    keep = min(existing.shape[1], total)
    buf[:, :keep] = existing[:, :keep].to(prior.device)
    for index, w in enumerate(windows):
        y = None
        if labels is not None:
            y = labels.for_window(w.start, hop, prior.n_ctx).y.to(prior.device).expand(b, -1)  # (b, n_y)
        cond = None
        if upper is not None:
            r = prior.cond_downsample
            cond = upper[:, w.start // r : (w.start + prior.n_ctx) // r].to(prior.device)  # (b, n_ctx / r)
        session = prior.open_window(y, cond, b)
        new = sample_window(
            session, buf[:, w.start : w.start + w.context], draw_uniforms(generators, w.new), temperature,
            params.top_k, params.top_p, params.chunk_size, cancel, counter.window(index, b), params.progress_every,
        )  # (b, w.new)  # fmt: skip
        buf[:, w.start + w.context : w.end] = new
    return buf
