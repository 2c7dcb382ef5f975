"""The model backend's level loop: sample a planned job level by level, preview the top, decode the take.

``render(model, plan, params, events, cancel)`` samples ``plan.levels`` (top first) one level at a
time with ``model.sampling.engine.sample_levels``, so it can report ``level_done`` after each level and
send a preview (the top level decoded on its own) before the upsamplers start. Only the stretch of
audio the take needs is decoded (``plan.start`` .. ``plan.start + plan.frames`` of the sampled audio),
plus the decoder's receptive field on each side so the take's edges sound like the middle.

Seeds: candidate ``i`` samples with ``params.seeds[i]``; how each level's random stream derives from it is
the sampling engine's rule (``model.sampling.logits.level_seed``), so a daemon job and ``segue sample``
with the same seed, params and model give the same codes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from bridge.engine.backend import Candidate, RunEvents
from common.progress import CancelToken, Progress
from conditioning.labels import SongLabels
from model.sampling.engine import LevelPlan, sample_levels
from model.sampling.hooks import Hooks
from model.sampling.loading import SamplingModel
from model.sampling.params import SamplingParams
from model.vqvae.chunked import decoder_context_tokens


@dataclass(frozen=True)
class RenderPlan:
    """A job turned into sampling work. Sample positions are at the model rate, in the sampled audio."""

    mode: str  # "ancestral", "primed" or "upsample" (for the run record)
    codes: tuple[Tensor, ...]  # given codes per level, level 0 first: (1 or n, tokens) int64
    sample_length: int  # samples the codes cover once sampled (a multiple of the top hop)
    levels: tuple[int, ...]  # levels to sample, top first (empty: nothing to sample)
    lowest_level: int  # the level the take is decoded from (0 = full quality)
    start: int  # first sample of the take (the region end for continuations)
    frames: int  # samples in the take
    labels: Mapping[int, SongLabels]


def render(
    model: SamplingModel, plan: RenderPlan, params: SamplingParams, events: RunEvents, cancel: CancelToken
) -> list[Candidate]:
    """Sample ``plan.levels``, send previews and level ends, return one take per candidate."""
    geo = model.geometry
    top = geo.n_levels - 1
    n = params.n_candidates
    seeds = params.candidate_seeds()
    priors = model.levels()
    codes = [c if c.shape[0] == n else c.expand(n, -1) for c in plan.codes]  # per level (n, tokens)
    on_progress = _checked(events.progress, cancel)
    if plan.lowest_level < top and top not in plan.levels:  # upsample: the top level is given
        _preview(model, plan, codes[top], seeds, events, on_progress)
    for level in plan.levels:
        work = LevelPlan(priors, geo, tuple(codes), plan.sample_length, (level,), plan.labels, plan.mode)
        result = sample_levels(work, params, Hooks(progress=on_progress, cancel=cancel))
        codes = list(result.codes)
        events.level_done(level)
        if level == top and plan.lowest_level < top:
            _preview(model, plan, codes[top], seeds, events, on_progress)
    audio = decode_take(model, codes[plan.lowest_level], plan.lowest_level, plan.start, plan.frames, on_progress)
    return [Candidate(i, seeds[i], audio[i], geo.sample_rate, plan.lowest_level) for i in range(n)]


def decode_take(
    model: SamplingModel, codes: Tensor, level: int, start: int, frames: int, progress: Callable[[Progress], None]
) -> np.ndarray:
    """Audio samples ``start .. start + frames`` of ``codes`` (n, tokens) at ``level``: (n, frames, 1) float32."""
    vq = model.vqvae
    hop = vq.config.hop_lengths[level]
    margin = decoder_context_tokens(vq.decoders[level], hop)
    first = max(0, start // hop - margin)
    last = min(codes.shape[1], -(-(start + frames) // hop) + margin)
    with torch.inference_mode():
        audio = vq.decode(codes[:, first:last].to(_device(model)), level, progress=progress)  # (n, (last-first)*hop, 1)
    skip = start - first * hop
    take = audio[:, skip : skip + frames].float().cpu().numpy()  # (n, frames, 1)
    return np.clip(take, -1.0, 1.0).astype(np.float32)


def _preview(
    model: SamplingModel, plan: RenderPlan, top_codes: Tensor, seeds: tuple[int, ...], events: RunEvents,
    progress: Callable[[Progress], None],
) -> None:  # fmt: skip
    top = model.geometry.n_levels - 1
    audio = decode_take(model, top_codes, top, plan.start, plan.frames, progress)  # (n, frames, 1)
    for i, seed in enumerate(seeds):
        events.preview(Candidate(i, seed, audio[i], model.geometry.sample_rate, top))


def _checked(progress: Callable[[Progress], None], cancel: CancelToken) -> Callable[[Progress], None]:
    """Progress that also honours cancel (the VQ-VAE reports between chunks but takes no cancel token)."""

    def report(item: Progress) -> None:
        cancel.raise_if_cancelled()
        progress(item)

    return report


def _device(model: SamplingModel) -> torch.device:
    return next(model.vqvae.parameters()).device
