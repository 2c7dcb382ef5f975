"""Beat alignment to the host grid: the grid's beats inside a stretch of audio, and the F-measure."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import InputError
from conditioning.beats import grid_beat_f, grid_beats
from conditioning.tempo import TempoMap


def test_grid_beats_are_counted_from_the_audio_start() -> None:
    grid = grid_beats(TempoMap([(0.0, 120.0)], (4, 4)), start_s=1.75, duration_s=2.5)
    # beats every 0.5 s from project time 0: 2.0, 2.5, 3.0, 3.5, 4.0 -> 0.25 .. 2.25 from the audio's start
    assert np.allclose(grid.beats, [0.25, 0.75, 1.25, 1.75, 2.25])
    assert np.allclose(grid.downbeats, [0.25, 2.25])  # project 2.0 s and 4.0 s: the first beats of bars 2 and 3
    eighths = grid_beats(TempoMap([(0.0, 120.0)], (6, 8)), start_s=0.0, duration_s=3.1)
    assert np.allclose(eighths.beats, np.arange(13) * 0.25) and np.allclose(eighths.downbeats, [0.0, 1.5, 3.0])


def test_grid_beats_follow_a_tempo_change() -> None:
    grid = grid_beats(TempoMap([(0.0, 120.0), (2.0, 60.0)], (4, 4)), start_s=1.0, duration_s=3.5)
    assert np.allclose(grid.beats, [0.0, 0.5, 1.0, 2.0, 3.0])  # half-second beats, then one a second from 2 s
    assert np.allclose(grid.downbeats, [1.0])


def test_the_f_measure_rewards_beats_on_the_grid_and_not_beside_it() -> None:
    tempo, start, duration = TempoMap([(0.0, 100.0)], (4, 4)), 0.3, 8.0
    on = grid_beats(tempo, start, duration).beats
    assert grid_beat_f(on, tempo, start, duration).f_measure == pytest.approx(1.0)
    assert grid_beat_f(on + 0.03, tempo, start, duration).f_measure == pytest.approx(1.0)  # inside ±70 ms
    assert grid_beat_f(on + 0.2, tempo, start, duration).f_measure == pytest.approx(0.0)
    half = grid_beat_f(on[::2], tempo, start, duration)
    recall = len(on[::2]) / len(on)  # every tracked beat is right, half of the grid's are tracked
    assert half.f_measure == pytest.approx(2 * recall / (1 + recall)) and half.estimated_beats == len(on[::2])
    drifting = on * 1.03  # 3 % slow: on the grid at first, then off it
    assert 0.2 < (grid_beat_f(drifting, tempo, start, duration).f_measure or 0) < 0.8
    assert grid_beat_f(np.zeros(0), tempo, start, duration).f_measure == 0.0


def test_what_cannot_be_scored_says_why() -> None:
    tempo = TempoMap([(0.0, 60.0)], (4, 4))
    short = grid_beat_f(np.array([0.1]), tempo, start_s=0.2, duration_s=0.5)
    assert short.f_measure is None and "holds 0 grid beats" in short.note
    with pytest.raises(InputError, match="finite"):
        grid_beat_f(np.array([np.nan]), tempo, 0.0, 4.0)
    with pytest.raises(InputError, match="duration_s must be positive"):
        grid_beats(tempo, 0.0, 0.0)
