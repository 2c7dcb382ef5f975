"""Typed results of the model's tasks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np

from common.errors import InputError
from conditioning.adherence import AdherenceReport, order_candidates
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
    adherence: tuple[AdherenceReport, ...] = ()  # per candidate, against the job's MIDI and stems (if any)

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
            "adherence": [a.to_dict() for a in self.adherence],
        }

    def ordered(self, by: str) -> TaskResult:
        """The same takes, best first by adherence metric ``by`` (``conditioning.adherence.order_candidates``:
        ``midi_chroma``, ``drum_onset_f1``, ``loudness_corr[:<stem>]`` or ``mean``); audio, codes, seeds and
        adherence move together. ``InputError`` when no take has that metric (it names those there are)."""
        if not self.adherence:
            raise InputError(f"takes can be ordered by adherence ({by!r}) only when the job has MIDI or stems to follow")
        order = order_candidates(self.adherence, by)
        s = self.sample
        seeds = tuple(s.seeds[i] for i in order)
        index = np.asarray(order)
        sample = replace(s, codes=tuple(c[index] for c in s.codes), seeds=seeds, params=replace(s.params, seeds=seeds))
        return replace(self, audio=self.audio[index], sample=sample, adherence=tuple(self.adherence[i] for i in order))


@dataclass(frozen=True)
class EncodeResult:
    """The ``encode`` task's codes: per level, level 0 first, (1, tokens) int64, and what made them."""

    codes: tuple[np.ndarray, ...]
    meta: CodesMeta
