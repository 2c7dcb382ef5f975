"""A daemon job as one of the model's tasks: read the job's files, call ``model.tasks``, return takes.

This is the whole of what the daemon adds to a task: the job's files are read here (the region as mono
audio at the model's rate, codes files checked against the model's VQ-VAE, the MIDI clip, stems, tempo map
and guidance as the task's ``JobConditions``, see ``bridge.backend.conditions``), the job's length in
seconds becomes samples, and the task's hooks turn into job events (progress, level done, one preview
per candidate). What each kind does, and how lengths and labels are fixed, is the task's business
(``model.tasks``), so a daemon job and ``segue sample`` with the same inputs, seeds and model give the
same codes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from bridge.backend.conditions import job_conditions, job_guidance
from bridge.engine.backend import Candidate, CodesTake, RunEvents, Take
from bridge.jobs import AudioInput, JobKind, JobSpec
from common.errors import InputError
from common.progress import CancelToken
from model import tasks
from model.audio import declared_seconds, read_audio
from model.codes import CodesFile, load_codes
from model.sampling.hooks import Hooks
from model.sampling.lengths import take_samples
from model.sampling.loading import SamplingModel
from model.sampling.params import SamplingParams
from model.tasks.song import Labelling, Song

log = logging.getLogger("segue.bridge.backend")


def run_job(
    model: SamplingModel, spec: JobSpec, params: SamplingParams, labelling: Labelling, events: RunEvents,
    cancel: CancelToken, encode_chunk: int | None = None, max_region_s: float = 600.0,
) -> list[Take]:  # fmt: skip
    """The takes of ``spec`` on the loaded ``model``: one ``Candidate`` per candidate, or one ``CodesTake``."""
    seeds = params.candidate_seeds()
    hooks = Hooks(events.progress, cancel, events.level_done, _previews(events, seeds, model.geometry.sample_rate))
    if spec.kind is JobKind.ENCODE:
        return [_encode(model, spec, seeds[0], encode_chunk, hooks, max_region_s)]
    song = Song(spec.artist or "unknown", spec.genre or "unknown", spec.lyrics)
    frames = take_samples(spec.length_s, model.geometry)  # bars were turned into seconds by the protocol layer
    region = _region(model, _input(spec.region), max_region_s) if spec.kind is JobKind.CONTINUE else None
    seconds = None if region is None else region.shape[0] / model.geometry.sample_rate
    configs = model.conditioner_configs()
    conditions = job_conditions(spec, configs, region_seconds=seconds, max_stem_s=max_region_s)
    params = replace(params, guidance=params.guidance + job_guidance(spec, conditions, configs))
    if spec.kind is JobKind.GENERATE:
        result = tasks.generate(model, frames, song, params, labelling, hooks=hooks, conditions=conditions)
    elif spec.kind is JobKind.CONTINUE:
        assert region is not None
        result = tasks.continue_region(model, region, frames, song, params, labelling, hooks=hooks,
                                       conditions=conditions)  # fmt: skip
    elif spec.kind is JobKind.EXTEND:
        codes = _codes(model, _input(spec.codes))
        result = tasks.extend(model, codes, frames, song, params, labelling, hooks=hooks, conditions=conditions)
    else:
        codes = _codes(model, _input(spec.codes))
        result = tasks.upsample(model, codes, song, params, labelling, length=frames, hooks=hooks,
                                conditions=conditions)  # fmt: skip
    if spec.order_by:
        try:
            result = result.ordered(spec.order_by)
        except InputError as exc:  # no take has the metric (e.g. all too short): keep them as sampled
            log.warning("job candidates kept in sampled order: %s", exc)
    reports: list[dict[str, Any] | None] = [a.to_dict() for a in result.adherence] or [None] * len(result.seeds)
    return [Candidate(i, s, result.audio[i], result.sample_rate, result.level, reports[i]) for i, s in enumerate(result.seeds)]


def _source_name(item: AudioInput | None, path: str) -> str:
    """The file name the client gave (a spooled copy has the daemon's own name)."""
    return (item.source_name if item is not None else None) or Path(path).name


def _encode(
    model: SamplingModel, spec: JobSpec, seed: int, chunk: int | None, hooks: Hooks, max_region_s: float
) -> CodesTake:
    if spec.candidates != 1:
        raise InputError(
            f"an encode job encodes the region once: send candidates 1 (got {spec.candidates}); "
            "sample takes from the codes with 'upsample' or 'extend' jobs"
        )
    path = _input(spec.region)
    region = _region(model, path, max_region_s)
    result = tasks.encode_region(model, region, chunk_samples=chunk, source_name=_source_name(spec.region, path), hooks=hooks)
    return CodesTake(0, seed, result.codes, result.meta)


def _input(file: AudioInput | None) -> str:
    assert file is not None and file.path is not None  # JobSpec's rules and the engine's spooling
    return file.path


def _region(model: SamplingModel, path: str, max_region_s: float) -> np.ndarray:
    """The region as mono audio at the model's rate, (R, 1), refused before decoding when it is longer than
    ``max_region_s``: the input size limit bounds bytes, and an hour of compressed silence is a few KB."""
    declared = declared_seconds(path)
    if declared > max_region_s:
        raise InputError(_too_long(path, declared, max_region_s))
    region = read_audio(path, sample_rate=model.geometry.sample_rate, channels=1).samples  # (R, 1)
    if region.shape[0] > max_region_s * model.geometry.sample_rate:  # formats that only estimate their length
        raise InputError(_too_long(path, region.shape[0] / model.geometry.sample_rate, max_region_s))
    return region


def _too_long(path: str, seconds: float, limit: float) -> str:
    return (
        f"region {Path(path).name} is {seconds:.1f} s long; this daemon reads regions of at most {limit:g} s "
        "([model_backend] max_region_s): send a shorter region (a continuation uses only its last part)"
    )


def _codes(model: SamplingModel, path: str) -> CodesFile:
    return load_codes(path, codebook_size=model.vqvae.config.codebook_size)


def _previews(events: RunEvents, seeds: tuple[int, ...], sample_rate: int) -> Callable[[int, np.ndarray], None]:
    def preview(level: int, audio: np.ndarray) -> None:  # audio (n, frames, 1)
        for i, seed in enumerate(seeds):
            events.preview(Candidate(i, seed, audio[i], sample_rate, level))

    return preview
