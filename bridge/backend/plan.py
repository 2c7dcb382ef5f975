"""Turn a ``JobSpec`` into a ``RenderPlan`` for a loaded model: read inputs, fix lengths, look up labels.

Every length is in samples at the model's rate. Sampling works in whole top-level tokens, so the
sampled audio is rounded up to cover the take and the take is cut out of it exactly:
- ``continue``: the region is read (mono, model rate) and the last part of it that fits the top
  prior's window (``n_ctx`` minus one window hop of new tokens) is encoded as the prime; the take
  starts exactly at the region end (a region that does not end on a token boundary has its last
  partial token sampled anew and cut off).
- ``generate``: sampled from scratch; the take starts at the first sample.
- ``upsample``: the top-level codes of a codes file are rendered through the levels below.
Too-short jobs are sampled to the upsamplers' minimum (one full window each) and trimmed.
Labels: the song is the region plus the continuation, clamped into the top prior's length range (a
long region is told to the model as a song of the maximum length that ends with the continuation);
a job whose sampled stretch alone is too long for the model is an ``InputError``.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from bridge.backend.render import RenderPlan
from bridge.jobs import JobKind, JobSpec
from common.errors import CodesError, InputError
from common.progress import ProgressFn
from conditioning.labels import Metadata, SongLabels
from model.audio import read_audio
from model.codes import load_codes
from model.sampling.lengths import Geometry
from model.sampling.loading import SamplingModel
from model.sampling.params import DEFAULT_HOP_FRACTION_TOP
from model.sampling.setup import labels_for_priors


def lowest_sampled_level(model: SamplingModel, name: str, from_level: int) -> int:
    """The lowest level reachable from ``from_level`` down through consecutive priors."""
    if from_level not in model.priors:
        have = ", ".join(str(lv) for lv in sorted(model.priors)) or "none"
        raise InputError(f"model {name!r} has no prior for level {from_level} (it has priors for levels: {have})")
    level = from_level
    while level - 1 in model.priors:
        level -= 1
    return level


def take_frames(spec: JobSpec, geo: Geometry) -> int:
    """The requested length in samples at the model rate, checked against the model's song range."""
    seconds = spec.length_s
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"length {seconds} s is not a positive number of seconds")
    if seconds >= geo.max_duration:
        raise InputError(f"length {seconds:.2f} s is too long for this model: use less than {geo.max_duration:g} s")
    frames = int(round(seconds * geo.sample_rate))
    if frames < 1:
        raise InputError(f"length {seconds} s is shorter than one sample at {geo.sample_rate} Hz")
    return frames


def plan_job(
    model: SamplingModel, name: str, spec: JobSpec, ids_dir: Path, strict: bool, progress: ProgressFn
) -> RenderPlan:
    geo = model.geometry
    frames = take_frames(spec, geo)
    if spec.kind is JobKind.UPSAMPLE:
        return _plan_upsample(model, name, spec, frames, ids_dir, strict)
    top = geo.n_levels - 1
    lowest = lowest_sampled_level(model, name, top)
    levels = tuple(range(top, lowest - 1, -1))
    hop = geo.top_hop
    if spec.kind is JobKind.GENERATE:
        length = _cover(frames, model, levels)
        codes = tuple(torch.zeros(1, 0, dtype=torch.long) for _ in range(geo.n_levels))  # (1, 0) each
        labels = _labels(model, spec, length, 0, length, ids_dir, strict)
        return RenderPlan("ancestral", codes, length, levels, lowest, 0, frames, labels)
    if spec.kind is not JobKind.CONTINUE:  # prime jobs never get here: bridge.backend.prime encodes them
        raise InputError(f"the model backend cannot sample '{spec.kind.value}' jobs")
    assert spec.region is not None and spec.region.path is not None  # JobSpec and the engine's spooling
    region = read_audio(spec.region.path, sample_rate=geo.sample_rate, channels=1).samples  # (R, 1)
    whole = region.shape[0] // hop * hop  # region rounded down to whole top tokens
    if whole == 0:
        raise InputError(
            f"region {spec.region.path} is {region.shape[0]} samples long: continue needs at least one top-level "
            f"token ({hop / geo.sample_rate:.4f} s at {geo.sample_rate} Hz)"
        )
    n_ctx = geo.n_ctx[top]
    context = min(whole, (n_ctx - max(1, int(DEFAULT_HOP_FRACTION_TOP * n_ctx))) * hop)  # prime, in samples
    tail = region.shape[0] - whole  # region samples after the last whole token: sampled anew, cut off
    length = max(context + _round_up(tail + frames, hop), _cover(0, model, levels))
    prime = torch.from_numpy(region[whole - context : whole])[None].to(_device(model))  # (1, context, 1)
    with torch.inference_mode():
        codes = tuple(c.long().cpu() for c in model.vqvae.encode(prime, progress=progress))  # per level (1, context // hop)
    song = region.shape[0] + frames
    offset = whole - context
    labels = _labels(model, spec, song, offset, length, ids_dir, strict)
    return RenderPlan("primed", codes, length, levels, lowest, context + tail, frames, labels)


def _plan_upsample(
    model: SamplingModel, name: str, spec: JobSpec, frames: int, ids_dir: Path, strict: bool
) -> RenderPlan:
    geo = model.geometry
    top = geo.n_levels - 1
    vq = model.vqvae.config
    assert spec.codes is not None and spec.codes.path is not None  # JobSpec and the engine's spooling
    codes_file = load_codes(spec.codes.path, codebook_size=vq.codebook_size)
    codes_file.check_fits(hop_lengths=vq.hop_lengths, codebook_size=vq.codebook_size, sample_rate=geo.sample_rate)
    top_codes = torch.from_numpy(codes_file.level(top)).long()  # (rows, tokens)
    if top_codes.shape[1] == 0:
        raise CodesError(f"{spec.codes.path}: has no top-level (level {top}) codes to upsample")
    rows = top_codes.shape[0]
    if rows not in (1, spec.candidates):
        raise CodesError(
            f"{spec.codes.path}: has {rows} rows of codes for {spec.candidates} candidates: give 1 row or one per candidate"
        )
    if top == 0:
        raise InputError(f"model {name!r} has a single level: there is nothing to upsample")
    lowest = lowest_sampled_level(model, name, top - 1)
    length = top_codes.shape[1] * geo.top_hop
    empty = [torch.zeros(rows, 0, dtype=torch.long) for _ in range(top)]  # (rows, 0) per lower level
    labels = _labels(model, spec, length, 0, length, ids_dir, strict)
    levels = tuple(range(top - 1, lowest - 1, -1))
    return RenderPlan("upsample", (*empty, top_codes), length, levels, lowest, 0, min(frames, length), labels)


def _labels(
    model: SamplingModel, spec: JobSpec, song: int, offset: int, length: int, ids_dir: Path, strict: bool
) -> dict[int, SongLabels]:
    """Labels for every labelled prior. ``song`` samples (region + continuation) are clamped into the top
    prior's range; when clamped below the song, the sampled stretch (``length`` samples at ``offset``)
    moves back so it still ends inside the song and every window stays below the maximum."""
    geo = model.geometry
    rate = geo.sample_rate
    window = geo.n_ctx[-1] * geo.top_hop
    total = max(song, offset + length, math.ceil(geo.min_duration * rate))
    if math.isfinite(geo.max_duration):  # a model without a time signal has no song range
        longest = math.ceil(geo.max_duration * rate) - 1
        total = min(total, longest)
        offset = min(offset, total - length, longest + 1 - max(length, window))
    if offset < 0:
        raise InputError(
            f"model {spec.model!r} takes songs shorter than {geo.max_duration:g} s, but this job samples "
            f"{length / rate:.2f} s (a continuation adds up to {window / rate:.2f} s of the region as context): "
            "ask for a shorter length"
        )
    if not any(c.labels for c in model.configs.values()):
        return {}
    meta = Metadata(spec.artist or "unknown", spec.genre or "unknown", spec.lyrics, total_length=total, offset=offset)
    return labels_for_priors(model.configs, meta, ids_dir, strict=strict)


def _cover(frames: int, model: SamplingModel, levels: tuple[int, ...]) -> int:
    """Samples to sample for a take of ``frames``: whole top tokens, at least one window of each upsampler."""
    geo = model.geometry
    return max(_round_up(frames, geo.top_hop), geo.min_upsample_samples(list(levels)))


def _round_up(samples: int, hop: int) -> int:
    return -(-samples // hop) * hop


def _device(model: SamplingModel) -> torch.device:
    return next(model.vqvae.parameters()).device
