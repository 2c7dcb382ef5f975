"""Beat alignment of audio to the host's grid (issue 9, "On the host's beat grid", the measurement).

``grid_beats`` lists the host's beats (and bar lines) inside a stretch of audio from the tempo map;
``grid_beat_f`` scores beats tracked in that audio (by any tracker: ``bench/grid_alignment.py`` uses
librosa's) against them with ``mir_eval.beat.f_measure`` (a hit within ±70 ms, mir_eval's default).
A continuation that stays on the grid scores near 1; one that drifts scores lower as it drifts. Pure
functions on explicit arguments: the caller decodes the audio and tracks its beats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from common.errors import InputError
from conditioning.tempo import TempoMap

BEAT_WINDOW_S = 0.07  # mir_eval.beat.f_measure's default tolerance
MIN_BEATS = 2  # reference beats a score needs


@dataclass(frozen=True)
class GridBeats:
    """The host grid inside a stretch of audio, in seconds from the audio's first sample."""

    beats: np.ndarray  # (n,) float64, every beat of the time signature (bar lines included)
    downbeats: np.ndarray  # (m,) float64, the bar lines


@dataclass(frozen=True)
class BeatScore:
    """``f_measure`` of tracked beats against the grid (None with ``note`` when it cannot be computed)."""

    f_measure: float | None
    reference_beats: int
    estimated_beats: int
    note: str = ""

    def to_dict(self) -> dict[str, object]:
        value = None if self.f_measure is None else round(self.f_measure, 4)
        return {"beat_f_measure": value, "reference_beats": self.reference_beats,
                "estimated_beats": self.estimated_beats, "note": self.note}  # fmt: skip


def _span(start_s: float, duration_s: float) -> tuple[float, float]:
    for label, value in (("start_s", start_s), ("duration_s", duration_s)):
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise InputError(f"{label} must be a finite number of seconds, got {value!r}")
    if duration_s <= 0:
        raise InputError(f"duration_s must be positive, got {duration_s:g}")
    return float(start_s), float(duration_s)


def grid_beats(tempo: TempoMap, start_s: float, duration_s: float) -> GridBeats:
    """Beats and bar lines of ``tempo`` in the audio whose sample 0 is at project time ``start_s`` and
    which lasts ``duration_s``: times in ``[0, duration_s)`` from the audio's start."""
    start, duration = _span(start_s, duration_s)
    per_beat = tempo.quarters_per_beat
    first = math.ceil(float(tempo.beats_at(start)) / per_beat - 1e-9)
    last = math.floor(float(tempo.beats_at(start + duration)) / per_beat - 1e-9)
    index = np.arange(first, last + 1, dtype=np.float64)  # beat numbers from project time 0
    times = tempo.seconds_at(index * per_beat) - start
    keep = (times >= 0) & (times < duration)
    beats, index = times[keep], index[keep]
    downbeats = beats[np.mod(index, tempo.beats_per_bar) == 0]
    return GridBeats(beats, downbeats)


def grid_beat_f(estimated_s: np.ndarray, tempo: TempoMap, start_s: float, duration_s: float) -> BeatScore:
    """F-measure of ``estimated_s`` (beat times in seconds from the audio's start) against the host's
    beats in that audio (``grid_beats``)."""
    estimated = np.asarray(estimated_s, dtype=np.float64).reshape(-1)
    if not np.isfinite(estimated).all():
        raise InputError("tracked beat times must be finite numbers of seconds")
    estimated = np.sort(estimated)
    reference = grid_beats(tempo, start_s, duration_s).beats
    if reference.shape[0] < MIN_BEATS:
        return BeatScore(None, int(reference.shape[0]), int(estimated.shape[0]),
                         f"the audio holds {reference.shape[0]} grid beats; a score needs {MIN_BEATS}")  # fmt: skip
    if estimated.shape[0] == 0:
        return BeatScore(0.0, int(reference.shape[0]), 0, "no beats were tracked in the audio")
    import mir_eval  # ~1 s to import (scipy): only when a score is computed

    f = float(mir_eval.beat.f_measure(reference, estimated, f_measure_threshold=BEAT_WINDOW_S))
    return BeatScore(f, int(reference.shape[0]), int(estimated.shape[0]))
