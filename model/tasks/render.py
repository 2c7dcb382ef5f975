"""The level loop of every sampling task: sample level by level, preview the top, decode the take.

Levels are sampled top first, one ``sample_levels`` call each, so the caller hears ``level_done`` after
each level and gets a preview (the top level decoded on its own) before the upsamplers start. Only the
stretch of audio the take needs is decoded (``start .. start + frames`` of the sampled audio), plus the
decoder's receptive field on each side, so the take's edges sound like its middle.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor

from conditioning.adherence import AdherenceReport, adherence
from conditioning.labels import SongLabels
from model.sampling.engine import LevelPlan, sample_levels
from model.sampling.hooks import NO_HOOKS, Hooks
from model.sampling.loading import SamplingModel
from model.sampling.params import SamplingParams
from model.sampling.result import LevelTiming, SampleResult
from model.tasks.conditions import NO_CONDITIONS, JobConditions, level_conditions
from model.tasks.result import TaskResult
from model.tasks.song import label_warnings
from model.vqvae.bottleneck import BottleneckBlock
from model.vqvae.chunked import decoder_context_tokens


@dataclass(frozen=True)
class Render:
    """A task turned into sampling work. Sample positions are at the model's rate, in the sampled audio."""

    task: str
    codes: tuple[Tensor, ...]  # given codes per level, level 0 first: (1 or n, tokens) int64
    sample_length: int  # samples the codes cover once sampled (a multiple of the top hop)
    levels: tuple[int, ...]  # levels to sample, top first
    lowest_level: int  # the level the take is decoded from (0 = full quality)
    start: int  # first sample of the take
    frames: int  # samples in the take
    labels: Mapping[int, SongLabels]
    conditions: JobConditions = NO_CONDITIONS  # MIDI, stems and grid, placed in project time


def render(model: SamplingModel, work: Render, params: SamplingParams, hooks: Hooks) -> TaskResult:
    """Sample ``work.levels``, send previews and level ends through ``hooks``, decode the takes."""
    geo = model.geometry
    top = geo.n_levels - 1
    n = params.n_candidates
    for level in work.levels:  # per-level values must fit the model before any work starts
        params.temperature_at(level, geo.n_levels)
        params.hop_fraction_at(level, geo.n_levels)
    codes = [c if c.shape[0] == n else c.expand(n, -1) for c in work.codes]  # per level (n, tokens)
    inner = replace(hooks, level_done=None, preview=None)
    conditions = level_conditions(work.conditions, geo, model.conditioner_configs(), work.levels,
                                  start=work.start, sample_length=work.sample_length, params=params,
                                  encode=stem_encoder(model))  # fmt: skip
    if work.lowest_level < top and top not in work.levels:  # upsample: the top level is given
        _preview(model, work, codes[top], hooks)
    timings: list[LevelTiming] = []
    for level in work.levels:
        plan = LevelPlan(model.levels(), geo, tuple(codes), work.sample_length, (level,), work.labels, work.task,
                         {level: conditions[level]} if level in conditions else {})  # fmt: skip
        result = sample_levels(plan, params, inner)
        codes, timings = list(result.codes), [*timings, *result.timings]
        if hooks.level_done is not None:
            hooks.level_done(level)
        if level == top and work.lowest_level < top:
            _preview(model, work, codes[top], hooks)
    audio = decode_take(model, codes[work.lowest_level], work.lowest_level, work.start, work.frames, hooks)
    adherence = take_adherence(audio, geo.sample_rate, work.conditions)
    sample = SampleResult(work.task, tuple(codes), work.sample_length, params.candidate_seeds(), params, tuple(timings))
    return TaskResult(work.task, audio, geo.sample_rate, work.lowest_level, work.start, work.frames, sample,
                      work.labels, label_warnings(work.labels), adherence)  # fmt: skip


def stem_encoder(model: SamplingModel) -> Callable[[np.ndarray, int], np.ndarray]:
    """Mono samples (S,) at the model's rate -> the codebook vectors (S // hop_level, emb_width) of their
    VQ-VAE codes at ``level``: what a ``stem_codes`` conditioner reads."""

    def encode(samples: np.ndarray, level: int) -> np.ndarray:
        with torch.inference_mode():
            audio = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))[None, :, None].to(model.device)
            (codes,) = model.vqvae.encode(audio, levels=[level])  # (1, S // hop)
            block = model.vqvae.bottleneck.level_blocks[level]
            assert isinstance(block, BottleneckBlock)
            vectors = block.dequantise(codes)[0].transpose(0, 1)  # (emb_width, S // hop) -> (S // hop, emb_width)
        return vectors.float().cpu().numpy()

    return encode


def take_adherence(audio: np.ndarray, sample_rate: int, conditions: JobConditions) -> tuple[AdherenceReport, ...]:
    """How each take ``audio`` (n, frames, 1) follows the job's MIDI and stems (none: ``()``). A stem labelled
    ``drums`` is the onset reference when there is one, else the MIDI's drum notes."""
    if conditions.midi is None and not conditions.stems:
        return ()
    stems = {s.name: (s.samples, s.sample_rate, s.start_s) for s in conditions.stems}
    midi = None if conditions.midi is None else (conditions.midi, conditions.midi_start_s)
    drums = "drums" if "drums" in stems else None
    return tuple(
        adherence(take, sample_rate, start_s=conditions.take_start_s, midi=midi, stems=stems, drum_stem=drums)
        for take in audio
    )


def decode_take(
    model: SamplingModel, codes: Tensor, level: int, start: int, frames: int, hooks: Hooks = NO_HOOKS
) -> np.ndarray:
    """Audio samples ``start .. start + frames`` of ``codes`` (n, tokens) at ``level``: (n, frames, 1) float32."""
    vq = model.vqvae
    hop = vq.config.hop_lengths[level]
    margin = decoder_context_tokens(vq.decoders[level], hop)
    first = max(0, start // hop - margin)
    last = min(codes.shape[1], -(-(start + frames) // hop) + margin)
    with torch.inference_mode():
        audio = vq.decode(codes[:, first:last].to(model.device), level, progress=hooks.report)  # (n, (last-first)*hop, 1)
    skip = start - first * hop
    take = audio[:, skip : skip + frames].float().cpu().numpy()  # (n, frames, 1)
    return np.clip(take, -1.0, 1.0).astype(np.float32)


def _preview(model: SamplingModel, work: Render, top_codes: Tensor, hooks: Hooks) -> None:
    if hooks.preview is None:
        return
    top = model.geometry.n_levels - 1
    hooks.preview(top, decode_take(model, top_codes, top, work.start, work.frames, hooks))
