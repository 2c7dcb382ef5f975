"""The four Jukebox sampling modes, as thin set-ups around ``sample_levels``.

- ``ancestral``: nothing given; sample the top level, then upsample level by level.
- ``primed``: a prime (audio) is encoded at every level and kept; everything after it is sampled.
- ``continue``: saved codes of every level are extended to a longer length.
- ``upsample``: given top-level codes, sample the levels below.

``lowest_level`` stops the descent early (e.g. 2 = top level only, for a quick sketch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import torch
from torch import Tensor

from common.errors import InputError
from common.progress import CancelToken, ProgressFn
from model.sampling.engine import Labeller, LevelPlan, sample_levels
from model.sampling.hooks import Hooks
from model.sampling.lengths import Geometry, check_upsampling
from model.sampling.params import SamplingParams
from model.sampling.result import SampleResult
from model.sampling.session import LevelPrior


class AudioEncoder(Protocol):
    """The VQ-VAE as the primed mode needs it: audio (N, T, 1) → codes per level, level 0 first."""

    def encode(self, audio: Tensor) -> Sequence[Tensor]: ...


def ancestral(
    priors: Mapping[int, LevelPrior], geometry: Geometry, sample_length: int, params: SamplingParams,
    labels: Mapping[int, Labeller] | None = None, lowest_level: int = 0,
    progress: ProgressFn | None = None, cancel: CancelToken | None = None,
) -> SampleResult:  # fmt: skip
    """Sample ``sample_length`` audio samples from scratch at every level down to ``lowest_level``."""
    codes = [_empty(params.n_candidates) for _ in range(geometry.n_levels)]
    return _run("ancestral", priors, geometry, codes, sample_length, params, labels, lowest_level, progress, cancel)


def primed(
    priors: Mapping[int, LevelPrior], geometry: Geometry, encoder: AudioEncoder, prime_audio: Tensor,
    sample_length: int, params: SamplingParams, labels: Mapping[int, Labeller] | None = None,
    lowest_level: int = 0, progress: ProgressFn | None = None, cancel: CancelToken | None = None,
) -> SampleResult:  # fmt: skip
    """Continue ``prime_audio`` (1, T, 1) float in [-1, 1]; ``T`` is rounded down to whole top-level tokens."""
    prime = prime_audio[:, : prime_audio.shape[1] // geometry.top_hop * geometry.top_hop]  # (1, T', 1)
    if prime.shape[1] == 0:
        raise InputError(
            f"the prime is shorter than one top-level token ({geometry.seconds(geometry.top_hop):.3f} s): use a longer prime"
        )
    if prime.shape[1] >= sample_length:
        raise InputError(
            f"the prime ({geometry.seconds(prime.shape[1]):.2f} s) leaves nothing to sample: "
            f"use a length longer than the prime"
        )
    with torch.inference_mode():
        codes = [c.long() for c in encoder.encode(prime)]  # per level: (1, T' // hop)
    return _run("primed", priors, geometry, codes, sample_length, params, labels, lowest_level, progress, cancel)


def continue_codes(
    priors: Mapping[int, LevelPrior], geometry: Geometry, codes: Sequence[Tensor], sample_length: int,
    params: SamplingParams, labels: Mapping[int, Labeller] | None = None, lowest_level: int = 0,
    progress: ProgressFn | None = None, cancel: CancelToken | None = None,
) -> SampleResult:  # fmt: skip
    """Extend saved ``codes`` (per level, level 0 first, (1 or n_candidates, tokens)) to ``sample_length``."""
    _check_level_count(codes, geometry)
    top = geometry.n_levels - 1
    have = codes[top].shape[1] * geometry.top_hop
    if sample_length <= have:
        raise InputError(
            f"the saved codes already cover {geometry.seconds(have):.2f} s: continue to a longer length "
            f"than that (asked for {geometry.seconds(sample_length):.2f} s)"
        )
    return _run("continue", priors, geometry, list(codes), sample_length, params, labels, lowest_level, progress, cancel)


def upsample(
    priors: Mapping[int, LevelPrior], geometry: Geometry, top_codes: Tensor, params: SamplingParams,
    labels: Mapping[int, Labeller] | None = None, lowest_level: int = 0,
    progress: ProgressFn | None = None, cancel: CancelToken | None = None,
) -> SampleResult:  # fmt: skip
    """Sample every level below the top from ``top_codes`` (1 or n_candidates, tokens)."""
    if top_codes.ndim != 2 or top_codes.shape[1] == 0:
        raise InputError(f"top-level codes must be (candidates, tokens) with tokens > 0, got shape {tuple(top_codes.shape)}")
    codes = [_empty(top_codes.shape[0]) for _ in range(geometry.n_levels - 1)] + [top_codes]
    sample_length = top_codes.shape[1] * geometry.top_hop
    return _run("upsample", priors, geometry, codes, sample_length, params, labels, lowest_level, progress, cancel)


def _run(
    mode: str, priors: Mapping[int, LevelPrior], geometry: Geometry, codes: list[Tensor], sample_length: int,
    params: SamplingParams, labels: Mapping[int, Labeller] | None, lowest_level: int,
    progress: ProgressFn | None, cancel: CancelToken | None,
) -> SampleResult:  # fmt: skip
    top = geometry.n_levels - 1
    if not 0 <= lowest_level <= top:
        raise InputError(f"lowest level {lowest_level} is out of range: use 0 (full quality) to {top} (top level only)")
    if sample_length < geometry.top_hop or sample_length % geometry.top_hop:
        raise InputError(
            f"length of {sample_length} samples must be a positive multiple of the top-level hop ({geometry.top_hop})"
        )
    start = top if mode != "upsample" else top - 1
    levels = list(range(start, lowest_level - 1, -1))
    check_upsampling(sample_length, geometry, [lv for lv in levels if lv < top])
    for lv in levels:  # per-level values must fit the model before any work starts
        params.temperature_at(lv, geometry.n_levels)
        params.hop_fraction_at(lv, geometry.n_levels)
    codes = [_tile(c, params.n_candidates, lv) for lv, c in enumerate(codes)]
    for lv, c in enumerate(codes):
        if c.shape[1] > geometry.tokens(sample_length, lv):
            codes[lv] = c[:, : geometry.tokens(sample_length, lv)]
    plan = LevelPlan(priors, geometry, tuple(codes), sample_length, tuple(levels), labels or {}, mode)
    return sample_levels(plan, params, Hooks(progress=progress, cancel=cancel))


def _empty(n: int) -> Tensor:
    return torch.zeros(n, 0, dtype=torch.long)  # (n, 0)


def _tile(codes: Tensor, n: int, level: int) -> Tensor:
    if codes.ndim != 2:
        raise InputError(f"level {level} codes must be (candidates, tokens), got shape {tuple(codes.shape)}")
    if codes.shape[0] == n:
        return codes
    if codes.shape[0] == 1:
        return codes.expand(n, -1)  # (n, tokens)
    raise InputError(f"level {level} codes have {codes.shape[0]} rows for {n} candidates: give 1 row or one per candidate")


def _check_level_count(codes: Sequence[Tensor], geometry: Geometry) -> None:
    if len(codes) != geometry.n_levels:
        raise InputError(f"the codes have {len(codes)} levels but the model has {geometry.n_levels}")
