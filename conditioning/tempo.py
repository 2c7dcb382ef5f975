"""The host project's tempo map: project seconds <-> musical position (issue 9, Alignment).

Plain values in, plain values out: the daemon's ``ProjectContext`` (bridge/jobs/inputs.py) hands its
``tempo_map`` and ``time_signature`` over as ``[(time_s, bpm), ...]`` and ``(num, den)``; nothing here
imports bridge.

Time conventions (the same as a DAW's transport):

- ``bpm`` counts quarter notes per minute, whatever the time signature (as MIDI and every DAW do).
- Musical position is measured in **quarter notes from project time 0**: :meth:`TempoMap.beats_at`
  returns quarter notes, piecewise linear in seconds through the tempo changes.
- The time signature's denominator is the beat: 4/4 has quarter-note beats, 6/8 and 7/8 eighth-note
  beats; a beat is ``4/den`` quarter notes and a bar ``num`` beats, i.e. ``num·4/den`` quarter notes.
- Bar 1 beat 1 (1-based, as hosts display it) is project time 0; "bar 5 beat 3" is
  ``4·(4·4/4) + 2·(4/4) = 18`` quarter notes in 4/4.
- The first change's tempo also holds before it: a first change at a time ``<= 0`` reads as "from the
  beginning of time", and a first change after 0 (a map starting at 1.5 s) is taken to have held since
  before 0 as well, so negative times and times before the first change extrapolate with the first tempo.
- Changes at the same time: the later one in the list wins (the earlier lasts no time), as
  ``ProjectContext.seconds_for_bars`` reads them.

One time signature for the whole project (the protocol carries one); tempo ramps are steps (a host
sends a ramp as many changes).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from common.errors import InputError

MIN_BPM, MAX_BPM = 20.0, 999.0  # ProjectContext's range
MAX_TIME_S = 1e6  # |seconds| accepted anywhere: 11 days, far inside float64's exact range at 1e-9 s
MAX_CHANGES = 100_000  # a host sends a tempo ramp as a change every few ms; this is hours of ramps
DENOMINATORS = (1, 2, 4, 8, 16, 32)
MAX_NUMERATOR = 64


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(f"{what} must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise InputError(f"{what} must be a finite number, got {number!r}")
    return number


def _seconds(value: object, what: str) -> float:
    number = _number(value, what)
    if abs(number) > MAX_TIME_S:
        raise InputError(f"{what} is {number:g} s; project times must lie within ±{MAX_TIME_S:g} s")
    return number


def _time_signature(value: object) -> tuple[int, int]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise InputError(f"time signature must be a pair (numerator, denominator), got {value!r}")
    num, den = value
    for part in (num, den):
        if isinstance(part, bool) or not isinstance(part, int | np.integer):
            raise InputError(f"time signature {num!r}/{den!r}: numerator and denominator must be integers")
    if not (1 <= num <= MAX_NUMERATOR and den in DENOMINATORS):
        raise InputError(
            f"time signature {num}/{den} is not valid (numerator 1..{MAX_NUMERATOR} over one of "
            f"{', '.join(map(str, DENOMINATORS))})"
        )
    return int(num), int(den)


def _changes(changes: object) -> tuple[tuple[float, float], ...]:
    if isinstance(changes, str | bytes) or not isinstance(changes, Sequence):
        raise InputError(f"tempo map must be a sequence of (time_s, bpm) pairs, got {type(changes).__name__}")
    if not changes:
        raise InputError("tempo map needs at least one (time_s, bpm) change")
    if len(changes) > MAX_CHANGES:
        raise InputError(f"tempo map has {len(changes):,} changes; at most {MAX_CHANGES:,} are accepted")
    out: list[tuple[float, float]] = []
    for index, change in enumerate(changes):
        if isinstance(change, str | bytes) or not isinstance(change, Sequence) or len(change) != 2:
            raise InputError(f"tempo map change {index} must be a pair (time_s, bpm), got {change!r}")
        time_s = _seconds(change[0], f"tempo map change {index} time")
        bpm = _number(change[1], f"tempo map change {index} bpm")
        if not MIN_BPM <= bpm <= MAX_BPM:
            raise InputError(
                f"tempo map change {index} at {time_s:g} s has {bpm:g} bpm; tempos must lie in "
                f"{MIN_BPM:g}..{MAX_BPM:g} bpm"
            )
        if out and time_s < out[-1][0]:
            raise InputError(
                f"tempo map must be sorted by time: change {index} at {time_s:g} s comes after one at "
                f"{out[-1][0]:g} s"
            )
        out.append((time_s, bpm))
    return tuple(out)


def _as_array(values: object, what: str) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InputError(f"{what} must be numbers: {error}") from None
    if not np.isfinite(array).all():
        raise InputError(f"{what} must be finite (got NaN or infinity)")
    return array


@dataclass(frozen=True, init=False)
class TempoMap:
    """A project's tempo changes ``(time_s, bpm)`` (sorted, bpm in 20..999) and its one time signature.

    See the module docstring for the conventions. Methods are vectorised over numpy arrays (float64).
    """

    changes: tuple[tuple[float, float], ...]
    time_signature: tuple[int, int] = (4, 4)
    # Derived, one entry per distinct change time: start time, quarter notes per second, and the position
    # in quarter notes (from project time 0) where the change takes effect.
    _times: np.ndarray = field(init=False, repr=False, compare=False)
    _qps: np.ndarray = field(init=False, repr=False, compare=False)
    _quarters: np.ndarray = field(init=False, repr=False, compare=False)

    def __init__(
        self, changes: Sequence[tuple[float, float]], time_signature: tuple[int, int] = (4, 4)
    ) -> None:
        normal = _changes(changes)
        signature = _time_signature(time_signature)
        kept = [
            change for i, change in enumerate(normal) if i + 1 == len(normal) or normal[i + 1][0] != change[0]
        ]
        times = np.array([t for t, _ in kept], dtype=np.float64)
        qps = np.array([bpm / 60.0 for _, bpm in kept], dtype=np.float64)
        quarters = np.zeros_like(times)
        quarters[1:] = np.cumsum(np.diff(times) * qps[:-1])
        zero = max(int(np.searchsorted(times, 0.0, side="right")) - 1, 0)  # the segment holding time 0
        quarters -= quarters[zero] - times[zero] * qps[zero]
        for name, value in (
            ("changes", normal),
            ("time_signature", signature),
            ("_times", times),
            ("_qps", qps),
            ("_quarters", quarters),
        ):
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    # --- units --------------------------------------------------------------------------------------

    @property
    def beats_per_bar(self) -> int:
        """Beats (of the denominator's note value) in one bar: the numerator."""
        return self.time_signature[0]

    @property
    def quarters_per_beat(self) -> float:
        """Length of one beat in quarter notes: ``4/den`` (0.5 in 6/8)."""
        return 4.0 / self.time_signature[1]

    @property
    def quarters_per_bar(self) -> float:
        """Length of one bar in quarter notes: ``num·4/den`` (3.0 in 6/8, 3.5 in 7/8)."""
        return self.time_signature[0] * 4.0 / self.time_signature[1]

    # --- seconds <-> quarter notes ------------------------------------------------------------------

    def _segment(self, seconds: np.ndarray) -> np.ndarray:
        return np.maximum(np.searchsorted(self._times, seconds, side="right") - 1, 0)

    def beats_at(self, seconds: np.ndarray | float) -> np.ndarray:
        """Musical position in **quarter notes** from project time 0 at each of ``seconds`` (project time).

        Piecewise linear through the tempo changes; negative times (and times before the first change)
        extrapolate with the first tempo. Same shape as ``seconds``, float64.
        """
        times = _as_array(seconds, "seconds")
        segment = self._segment(times)
        return self._quarters[segment] + (times - self._times[segment]) * self._qps[segment]

    def seconds_at(self, beats: np.ndarray | float) -> np.ndarray:
        """Project seconds at each position ``beats`` in quarter notes from project time 0 (inverse of
        :meth:`beats_at`). Same shape as ``beats``, float64."""
        quarters = _as_array(beats, "beats")
        segment = np.maximum(np.searchsorted(self._quarters, quarters, side="right") - 1, 0)
        return self._times[segment] + (quarters - self._quarters[segment]) / self._qps[segment]

    def bpm_at(self, seconds: np.ndarray | float) -> np.ndarray:
        """Tempo in quarter notes per minute in force at each of ``seconds``."""
        return self._qps[self._segment(_as_array(seconds, "seconds"))] * 60.0

    # --- bars and beats -----------------------------------------------------------------------------

    def seconds_at_bar(self, bar: float, beat: float = 1.0) -> float:
        """Project seconds of "bar ``bar`` beat ``beat``" as a host displays it (both 1-based).

        Bar 1 beat 1 is project time 0; bars before 1 (0, -1: a count-in) lie before it. ``beat`` counts
        the time signature's beats (eighths in 6/8) and must lie in ``[1, num + 1)``; fractions are
        allowed (beat 2.5 is halfway between beats 2 and 3), as is a fractional bar.
        """
        bar_number = _number(bar, "bar")
        beat_number = _number(beat, "beat")
        num, den = self.time_signature
        if not 1.0 <= beat_number < num + 1:
            raise InputError(
                f"beat {beat_number:g} is outside bar {bar_number:g}: in {num}/{den} beats are counted "
                f"from 1 and lie in 1..{num + 1} (exclusive)"
            )
        quarters = (bar_number - 1.0) * self.quarters_per_bar + (beat_number - 1.0) * self.quarters_per_beat
        seconds = float(self.seconds_at(quarters))
        if abs(seconds) > MAX_TIME_S:
            raise InputError(
                f"bar {bar_number:g} beat {beat_number:g} is at {seconds:g} s; project times must lie "
                f"within ±{MAX_TIME_S:g} s"
            )
        return seconds

    def seconds_for_bars(self, bars: float, start_s: float) -> float:
        """Length in seconds of ``bars`` bars starting at project time ``start_s``, following the tempo
        map: the same number as ``bridge.jobs.inputs.ProjectContext.seconds_for_bars`` (which also takes
        ``start_s=None`` for the generation start; here the caller passes it). ``bars`` must be >= 0."""
        count = _number(bars, "bars")
        if count < 0:
            raise InputError(f"bars must be 0 or more, got {count:g}")
        start = _seconds(start_s, "start_s")
        end = float(self.seconds_at(float(self.beats_at(start)) + count * self.quarters_per_bar))
        if abs(end) > MAX_TIME_S:
            raise InputError(f"{count:g} bars from {start:g} s end past ±{MAX_TIME_S:g} s")
        return end - start

    def clip_start(self, seconds: float | None = None, bar: float | None = None, beat: float = 1.0) -> float:
        """Project seconds where a clip starts, placed either by ``seconds`` (project time) or by ``bar``
        and ``beat`` (1-based, see :meth:`seconds_at_bar`): exactly one of ``seconds`` and ``bar``."""
        if (seconds is None) == (bar is None):
            raise InputError(
                "a clip is placed by a start in seconds or by bar and beat: give exactly one of "
                f"'seconds' and 'bar' (got {'both' if seconds is not None else 'neither'})"
            )
        if bar is not None:
            return self.seconds_at_bar(bar, beat)
        if beat != 1.0:
            raise InputError(f"beat {beat!r} goes with a bar; a clip placed by seconds takes no beat")
        return _seconds(seconds, "clip start")
