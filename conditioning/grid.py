"""The host's beat grid as frame features at a prior level's token rate (issue 9, "On the host's beat grid").

From a :class:`~conditioning.tempo.TempoMap` (the project's tempo changes and time signature), one value
per token frame: where the frame starts within its beat and within its bar, and whether a beat or a bar
line falls inside it. The grid conditioner (model/) reads these so a continuation starts on the
selection's bar line and stays on the host's grid. Pure numpy, no I/O.

Frame rule (as everywhere in conditioning/): frame ``i`` covers ``[start_s + i·hop/sr, start_s +
(i+1)·hop/sr)`` in project seconds; its phases are taken at its start; a beat or bar line marks the
frame whose interval holds it. A line within a millionth of a frame of a frame boundary counts as on the
boundary (so it marks the later frame, whose phase there is 0), which keeps float rounding from moving
a bar line into the frame before it.

The beat is the time signature's denominator note (an eighth in 6/8 and 7/8); a bar is ``num`` beats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from common.errors import InputError
from conditioning.tempo import MAX_TIME_S, TempoMap

MAX_FRAMES = 2**22  # a level-0 (hop 8) window of 12.7 minutes; (n+1) float64 temporaries ~ 32 MiB each
N_FEATURES = 6  # the columns of GridFeatures.as_matrix
_EPS = 1e-6  # in frames: a line within a millionth of a frame of a boundary counts as on it
_BELOW_ONE = np.nextafter(np.float32(1.0), np.float32(0.0))  # phases stay < 1 after rounding to float32


@dataclass(frozen=True)
class GridFeatures:
    """Per-frame beat grid of one window; every array is float32 of shape (n_frames,)."""

    beat_phase: np.ndarray  # position within the current beat at the frame's start, in [0, 1)
    bar_phase: np.ndarray  # position within the current bar at the frame's start, in [0, 1)
    beat: np.ndarray  # 1.0 in each frame holding a beat (every bar line is also a beat)
    downbeat: np.ndarray  # 1.0 in each frame holding a bar line
    coverage: np.ndarray  # all 1.0: the grid is defined everywhere
    notes: tuple[str, ...]

    def as_matrix(self) -> np.ndarray:
        """(n_frames, 6) float32 for a network: sin and cos of the beat phase, sin and cos of the bar
        phase (angle 2π·phase, continuous across beat and bar lines), then the beat and downbeat flags."""
        out = np.empty((self.beat_phase.shape[0], 6), dtype=np.float32)
        for column, phase in ((0, self.beat_phase), (2, self.bar_phase)):
            angle = phase * np.float32(2.0 * math.pi)
            np.sin(angle, out=out[:, column])
            np.cos(angle, out=out[:, column + 1])
        out[:, 4] = self.beat
        out[:, 5] = self.downbeat
        return out


def _check_window(sample_rate: int, hop: int, start_s: float, n_frames: int) -> None:
    for label, value in (("sample_rate", sample_rate), ("hop", hop), ("n_frames", n_frames)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise InputError(f"{label} must be a positive integer, got {value!r}")
    if n_frames > MAX_FRAMES:
        raise InputError(f"n_frames is {n_frames:,}; at most {MAX_FRAMES:,} frames fit one grid window")
    if (
        isinstance(start_s, bool)
        or not isinstance(start_s, int | float | np.number)
        or not abs(start_s) <= MAX_TIME_S
        or not abs(start_s + n_frames * hop / sample_rate) <= MAX_TIME_S
    ):
        raise InputError(
            f"start_s must be a number of seconds with the window inside ±{MAX_TIME_S:g} s, got {start_s!r}"
        )


def _phase_and_lines(position: np.ndarray, tolerance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Phase at each frame start and a flag per frame holding a grid line, from ``position`` (n+1,) in
    grid units (beats or bars) at the frame boundaries. Lines sit at the integers."""
    last = np.floor(position + tolerance)  # the last line at or before each boundary
    phase64 = position[:-1] - last[:-1]
    phase64[phase64 <= tolerance[:-1]] = 0.0  # on a line (within the tolerance): exactly 0
    phase = phase64.astype(np.float32)
    np.minimum(phase, _BELOW_ONE, out=phase)
    after = np.ceil(position - tolerance)  # the first line at or after each boundary
    lines = (after[1:] > after[:-1]).astype(np.float32)
    return phase, lines


def _format(number: float) -> str:
    return f"{number:.3f}".rstrip("0").rstrip(".")


def grid_features(
    tempo: TempoMap, *, sample_rate: int, hop: int, start_s: float, n_frames: int
) -> GridFeatures:
    """Beat and bar phase and line flags of the window of ``n_frames`` tokens (``hop`` samples each at
    ``sample_rate``) whose frame 0 starts at project time ``start_s``."""
    if not isinstance(tempo, TempoMap):
        raise InputError(f"the beat grid needs a TempoMap, got {type(tempo).__name__}")
    _check_window(sample_rate, hop, start_s, n_frames)
    start = float(start_s)
    edges = np.arange(n_frames + 1, dtype=np.float64)
    edges *= hop
    edges /= sample_rate
    edges += start  # (n+1,) project seconds of the frame boundaries
    quarters = tempo.beats_at(edges)
    tolerance = tempo.bpm_at(edges)  # quarter notes in _EPS frames, from the local tempo
    tolerance *= _EPS * hop / (60.0 * sample_rate)
    del edges

    num = tempo.beats_per_bar
    beats = quarters / tempo.quarters_per_beat
    beat_tolerance = tolerance / tempo.quarters_per_beat
    beat_phase, beat = _phase_and_lines(beats, beat_tolerance)
    bars = np.divide(beats, num, out=quarters)
    bar_tolerance = np.divide(beat_tolerance, num, out=tolerance)
    bar_phase, downbeat = _phase_and_lines(bars, bar_tolerance)

    notes = []
    first_bar = math.floor(bars[0] + bar_tolerance[0])
    beats_in = max(beats[0] - first_bar * num, 0.0)
    if beats_in <= beat_tolerance[0]:
        notes.append(f"window starts on the bar line of bar {first_bar + 1}")
    else:
        notes.append(
            f"window starts {_format(beats_in)} beats after a bar line "
            f"(bar {first_bar + 1} beat {_format(beats_in + 1)})"
        )
    first_time, first_bpm = tempo.changes[0]
    if start < 0:
        notes.append(
            f"window starts {_format(-start)} s before project time 0 (bar 1 beat 1); "
            f"the first tempo ({first_bpm:g} bpm) is extended back"
        )
    if start < first_time and first_time != 0:
        notes.append(
            f"the tempo map starts at {first_time:g} s; its first tempo ({first_bpm:g} bpm) is assumed "
            "before that"
        )
    end = start + n_frames * hop / sample_rate
    changes = tempo.changes
    inside = sorted(
        {
            time
            for (time, bpm), (_, before) in zip(changes[1:], changes)
            if start < time < end and bpm != before
        }
    )  # the first change is no change: its tempo also holds before it
    if inside:
        notes.append(f"{len(inside)} tempo change(s) inside the window, the first at {inside[0]:g} s")
    coverage = np.ones(n_frames, dtype=np.float32)
    return GridFeatures(beat_phase, bar_phase, beat, downbeat, coverage, tuple(notes))
