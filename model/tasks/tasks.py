"""The five tasks (see ``model.tasks``): set-up of one ``Render`` each, then the shared level loop.

Every length is in samples at the model's rate. Sampling works in whole top-level tokens, so the
sampled audio is rounded up to cover the take and the take is cut out of it exactly. Too-short tasks
are sampled to the upsamplers' minimum (one full window each) and trimmed.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from common.errors import CodesError, InputError
from model.codes import CodesFile, CodesMeta
from model.sampling.hooks import NO_HOOKS, Hooks
from model.sampling.loading import SamplingModel
from model.sampling.params import DEFAULT_HOP_FRACTION_TOP, SamplingParams
from model.tasks.conditions import NO_CONDITIONS, JobConditions
from model.tasks.render import Render, render
from model.tasks.result import EncodeResult, TaskResult
from model.tasks.song import Labelling, Song, song_labels

TASKS = ("generate", "continue", "extend", "upsample", "encode")


def generate(
    model: SamplingModel, length: int, song: Song, params: SamplingParams, labelling: Labelling, *,
    lowest_level: int | None = None, hooks: Hooks = NO_HOOKS,
    conditions: JobConditions = NO_CONDITIONS,
) -> TaskResult:  # fmt: skip
    """``length`` samples of new music; ``lowest_level`` None = as low as the model's priors reach."""
    geo = model.geometry
    _check_length(length, model)
    levels = _levels(model, geo.n_levels - 1, lowest_level)
    sampled = _cover(length, model, levels)
    codes = tuple(torch.zeros(1, 0, dtype=torch.long) for _ in range(geo.n_levels))  # (1, 0) each
    labels = song_labels(model, song, labelling, end=sampled, start=0, length=sampled)
    return render(model, Render("generate", codes, sampled, levels, levels[-1], 0, length, labels, conditions), params, hooks)


def continue_region(
    model: SamplingModel, region: np.ndarray, length: int, song: Song, params: SamplingParams, labelling: Labelling,
    *, lowest_level: int | None = None, hooks: Hooks = NO_HOOKS,
    conditions: JobConditions = NO_CONDITIONS,
) -> TaskResult:  # fmt: skip
    """``length`` samples that continue ``region`` (R, 1) float32 mono at the model's rate.

    The last part of the region that fits the top prior's window (``n_ctx`` minus one window hop of new
    tokens) is encoded as the prime. The take starts exactly at the region's end: a region that does not
    end on a top-token boundary has its last partial token sampled anew and cut off.
    """
    geo = model.geometry
    top, hop = geo.n_levels - 1, geo.top_hop
    _check_length(length, model)
    region = _mono(region, "region")
    whole = region.shape[0] // hop * hop  # the region rounded down to whole top tokens
    if whole == 0:
        raise InputError(
            f"the region is {region.shape[0]} samples long: continue needs at least one top-level token "
            f"({hop / geo.sample_rate:.4f} s at {geo.sample_rate} Hz)"
        )
    levels = _levels(model, top, lowest_level)
    n_ctx = geo.n_ctx[top]
    context = min(whole, (n_ctx - max(1, int(DEFAULT_HOP_FRACTION_TOP * n_ctx))) * hop)  # the prime, in samples
    tail = region.shape[0] - whole  # region samples after the last whole token: sampled anew, cut off
    sampled = max(context + _round_up(tail + length, hop), _cover(0, model, levels))
    prime = torch.from_numpy(np.ascontiguousarray(region[whole - context : whole]))[None].to(model.device)  # (1, C, 1)
    hooks.check()
    with torch.inference_mode():
        codes = tuple(c.long().cpu() for c in model.vqvae.encode(prime, progress=hooks.report))  # (1, C // hop_l)
    labels = song_labels(model, song, labelling, end=region.shape[0] + length, start=whole - context, length=sampled)
    work = Render("continue", codes, sampled, levels, levels[-1], context + tail, length, labels, conditions)
    return render(model, work, params, hooks)


def extend(
    model: SamplingModel, codes: CodesFile, length: int, song: Song, params: SamplingParams, labelling: Labelling,
    *, lowest_level: int | None = None, allow_other_model: bool = False, hooks: Hooks = NO_HOOKS,
    conditions: JobConditions = NO_CONDITIONS,
) -> TaskResult:  # fmt: skip
    """``length`` samples after the end of saved ``codes`` (every level; 1 row or one per candidate).
    The take starts where the codes' top level ends; ``song.offset`` is where the codes start in the song."""
    geo = model.geometry
    top = geo.n_levels - 1
    _check_length(length, model)
    levels = _levels(model, top, lowest_level)
    given = _given_codes(model, codes, params, allow_other_model)
    have = given[top].shape[1] * geo.top_hop
    if have == 0:
        raise CodesError(f"{codes.name}: has no top-level (level {top}) codes to extend")
    sampled = max(have + _round_up(length, geo.top_hop), _cover(0, model, levels))
    labels = song_labels(model, song, labelling, end=have + length, start=0, length=sampled)
    trimmed = tuple(c[:, : geo.tokens(sampled, lv)] for lv, c in enumerate(given))
    work = Render("extend", trimmed, sampled, levels, levels[-1], have, length, labels, conditions)
    return render(model, work, params, hooks)


def upsample(
    model: SamplingModel, codes: CodesFile, song: Song, params: SamplingParams, labelling: Labelling, *,
    length: int | None = None, lowest_level: int | None = None, allow_other_model: bool = False,
    hooks: Hooks = NO_HOOKS, conditions: JobConditions = NO_CONDITIONS,
) -> TaskResult:  # fmt: skip
    """Render the top-level ``codes`` through the levels below; the take is the first ``length`` samples
    (None: all the codes cover)."""
    geo = model.geometry
    top = geo.n_levels - 1
    if top == 0:
        raise InputError("this model has a single level: there is nothing to upsample")
    levels = _levels(model, top - 1, lowest_level)  # what the model can do first, then what the codes are
    top_codes = _given_codes(model, codes, params, allow_other_model)[top]
    if top_codes.shape[1] == 0:
        raise CodesError(f"{codes.name}: has no top-level (level {top}) codes to upsample")
    sampled = top_codes.shape[1] * geo.top_hop
    if sampled < geo.min_upsample_samples(list(levels)):
        need = geo.min_upsample_samples(list(levels))
        raise CodesError(
            f"{codes.name}: covers {geo.seconds(sampled):.2f} s, too short to upsample: each upsampler needs at "
            f"least one full window, so give codes of at least {geo.seconds(need):.2f} s"
        )
    frames = sampled if length is None else min(_check_length(length, model), sampled)
    empty = tuple(torch.zeros(top_codes.shape[0], 0, dtype=torch.long) for _ in range(top))  # (rows, 0) each
    labels = song_labels(model, song, labelling, end=sampled, start=0, length=sampled)
    work = Render("upsample", (*empty, top_codes), sampled, levels, levels[-1], 0, frames, labels, conditions)
    return render(model, work, params, hooks)


def encode_region(
    model: SamplingModel, region: np.ndarray, *, chunk_samples: int | None = None, source_name: str = "",
    hooks: Hooks = NO_HOOKS,
) -> EncodeResult:  # fmt: skip
    """The codes of ``region`` (R, 1) float32 mono at the model's rate, every level, bottom first.

    Encoded in chunks of ``chunk_samples`` (None: the VQ-VAE's default, 0: at once), with an ``encode``
    progress report and a cancel check after each chunk. The result is what ``segue encode`` writes, and
    its codes file can be the input of ``upsample`` or ``extend``. Only the VQ-VAE is used.
    """
    vq = model.vqvae.config
    region = _mono(region, "region")
    top_hop = vq.hop_lengths[-1]
    if region.shape[0] < top_hop:
        raise InputError(
            f"the region is {region.shape[0]} samples long: encoding needs at least one top-level token "
            f"({top_hop / vq.sample_rate:.4f} s at {vq.sample_rate} Hz)"
        )
    hooks.check()
    audio = torch.from_numpy(np.ascontiguousarray(region))[None].to(model.device)  # (1, R, 1)
    with torch.inference_mode():
        codes = model.vqvae.encode(audio, chunk_samples=chunk_samples, progress=hooks.report)  # (1, R // hop_l)
    meta = CodesMeta(
        sample_rate=vq.sample_rate,
        hop_lengths=tuple(vq.hop_lengths),
        codebook_size=vq.codebook_size,
        model=model.identity,
        source_samples=region.shape[0],
        source_name=source_name,
    )
    return EncodeResult(tuple(c.long().cpu().numpy() for c in codes), meta)


# ---- shared checks ---------------------------------------------------------------------------------


def _levels(model: SamplingModel, first: int, lowest_level: int | None) -> tuple[int, ...]:
    """Levels to sample, ``first`` down to ``lowest_level`` (None: down through consecutive priors)."""
    have = sorted(model.priors)
    if first not in model.priors:
        listed = ", ".join(str(lv) for lv in have) or "none"
        raise InputError(f"this model has no prior for level {first} (it has priors for levels: {listed})")
    if lowest_level is None:
        lowest_level = first
        while lowest_level - 1 in model.priors:
            lowest_level -= 1
    top = model.geometry.n_levels - 1
    if not 0 <= lowest_level <= top:
        raise InputError(f"lowest level {lowest_level} is out of range: use 0 (full quality) to {top} (top level only)")
    if lowest_level > first:
        raise InputError(f"lowest level {lowest_level} is above the first level this task samples ({first})")
    missing = [lv for lv in range(first, lowest_level - 1, -1) if lv not in model.priors]
    if missing:
        reach = [lv for lv in range(first, -1, -1) if lv > missing[0]]
        hint = f"; use lowest level {reach[-1]} to stop at the lowest level it can sample" if reach else ""
        raise InputError(f"this model has no prior for level {missing[0]} (it has priors for levels {have}){hint}")
    return tuple(range(first, lowest_level - 1, -1))


def _check_length(length: int, model: SamplingModel) -> int:
    geo = model.geometry
    if length < 1:
        raise InputError(f"length of {length} samples is not positive: ask for at least one sample")
    if geo.seconds(length) >= geo.max_duration:
        raise InputError(f"length {geo.seconds(length):.2f} s is too long for this model: use less than {geo.max_duration:g} s")
    return length


def _given_codes(model: SamplingModel, codes: CodesFile, params: SamplingParams, allow_other_model: bool) -> list[Tensor]:
    """Codes of every level as tensors, checked to come from this model's VQ-VAE and to fit the candidates."""
    vq = model.vqvae.config
    codes.check_fits(hop_lengths=vq.hop_lengths, codebook_size=vq.codebook_size, sample_rate=vq.sample_rate)
    if not allow_other_model:
        codes.check_model(model.identity)
    out = [torch.from_numpy(c).long() for c in codes.codes]
    for lv, c in enumerate(out):
        if c.shape[0] not in (1, params.n_candidates):
            raise CodesError(
                f"{codes.name}: level {lv} has {c.shape[0]} rows of codes for {params.n_candidates} candidates: "
                "give 1 row or one per candidate"
            )
    return out


def _mono(region: np.ndarray, what: str) -> np.ndarray:
    if region.ndim != 2 or region.shape[1] != 1:
        raise InputError(f"the {what} must be mono audio shaped (samples, 1), got shape {tuple(region.shape)}")
    if not np.isfinite(region).all():
        raise InputError(f"the {what} contains NaN or infinite samples")
    return region.astype(np.float32, copy=False)


def _cover(frames: int, model: SamplingModel, levels: Sequence[int]) -> int:
    """Samples to sample for a take of ``frames``: whole top tokens, at least one window of each upsampler."""
    geo = model.geometry
    return max(_round_up(frames, geo.top_hop), geo.min_upsample_samples(list(levels)))


def _round_up(samples: int, hop: int) -> int:
    return -(-samples // hop) * hop

