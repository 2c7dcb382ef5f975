"""Typed results of the model's tasks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from conditioning.labels import SongLabels
from model.codes import CodesMeta
from model.sampling.result import SampleResult


@dataclass(frozen=True)
class TaskResult:
    """The takes of a sampling task: candidate ``i`` is ``audio[i]``, sampled with ``seeds[i]``.

    ``audio`` (n_candidates, frames, 1) float32 in [-1, 1] is decoded from ``level`` (0 = full quality) and
    is exactly the take: samples ``start .. start + frames`` of the sampled audio, whose codes (every
    level, given and sampled) are ``sample.codes``. For ``continue`` the take begins at the region's end.
    """

    task: str
    audio: np.ndarray  # (n_candidates, frames, 1) float32
    sample_rate: int
    level: int  # the level the takes are decoded from
    start: int  # first sample of the take in the sampled audio
    frames: int
    sample: SampleResult  # codes of every level, seeds, params, per-level timings
    labels: Mapping[int, SongLabels]  # the labels every labelled prior saw
    warnings: tuple[str, ...] = ()

    @property
    def seeds(self) -> tuple[int, ...]:
        return self.sample.seeds

    @property
    def n_candidates(self) -> int:
        return len(self.sample.seeds)

    def to_dict(self) -> dict:
        """Everything but the audio and codes, JSON-safe (for run records)."""
        return {
            "task": self.task,
            "sample_rate": self.sample_rate,
            "level": self.level,
            "start": self.start,
            "frames": self.frames,
            "warnings": list(self.warnings),
            "sampling": self.sample.to_dict(),
        }


@dataclass(frozen=True)
class EncodeResult:
    """The ``encode`` task's codes: per level, level 0 first, (1, tokens) int64, and what made them."""

    codes: tuple[np.ndarray, ...]
    meta: CodesMeta
