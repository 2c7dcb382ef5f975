from __future__ import annotations

import math

import numpy as np
import pytest

from common.errors import InputError
from conditioning.grid import MAX_FRAMES, grid_features
from conditioning.tempo import TempoMap

SR = 44100


def _grid(tempo: TempoMap, hop: int = 128, start_s: float = 0.0, n_frames: int = 2100):
    return grid_features(tempo, sample_rate=SR, hop=hop, start_s=start_s, n_frames=n_frames)


def test_constant_120_bar_lines_and_beats_by_hand():
    g = _grid(TempoMap([(0.0, 120.0)]))
    # 344.53125 frames per second at hop 128: bar lines at 0, 2, 4, 6 s -> frames floor(689.0625) ...
    assert np.flatnonzero(g.downbeat).tolist() == [0, 689, 1378, 2067]
    assert np.flatnonzero(g.beat)[:5].tolist() == [0, 172, 344, 516, 689]  # every 0.5 s
    assert int(g.beat.sum()) == 13  # beats at 0, 0.5, ..., 6.0 s; frame 2100 starts at 6.095 s
    start_689 = 689 * 128 / SR  # 1.99982 s: 3.99964 quarters
    assert g.beat_phase[689] == pytest.approx(start_689 * 2 - 3, abs=1e-6)
    assert g.bar_phase[689] == pytest.approx(start_689 * 2 / 4, abs=1e-6)
    assert g.beat_phase[690] == pytest.approx(690 * 128 / SR * 2 - 4, abs=1e-6)
    assert g.coverage.tolist() == [1.0] * 2100
    for array in (g.beat_phase, g.bar_phase, g.beat, g.downbeat, g.coverage):
        assert array.dtype == np.float32 and array.shape == (2100,)
    assert np.all(g.beat[g.downbeat == 1] == 1)
    assert g.notes[0] == "window starts on the bar line of bar 1"


def test_bar_line_on_a_frame_boundary_marks_the_later_frame():
    # 3/4 at 100 bpm: a bar is 1.8 s = exactly 540 frames of hop 147, but 540*147/44100*100/60 rounds
    # off 3.0 in floats; the tolerance keeps each bar line in the frame that starts on it.
    g = _grid(TempoMap([(0.0, 100.0)], (3, 4)), hop=147, n_frames=540 * 20 + 1)
    assert np.flatnonzero(g.downbeat).tolist() == [540 * k for k in range(21)]
    assert np.flatnonzero(g.beat).tolist() == [180 * k for k in range(61)]
    assert np.all(g.bar_phase[::540] == 0.0) and np.all(g.beat_phase[::180] == 0.0)


def test_tempo_change_120_to_90_at_4_s():
    g = _grid(TempoMap([(0.0, 120.0), (4.0, 90.0)]), n_frames=3300)
    bar_lines_s = [0.0, 2.0, 4.0, 4.0 + 8 / 3, 4.0 + 16 / 3]
    assert np.flatnonzero(g.downbeat).tolist() == [math.floor(t * SR / 128) for t in bar_lines_s]
    beats = np.flatnonzero(g.beat).tolist()
    assert beats[8:11] == [1378, math.floor((4 + 2 / 3) * SR / 128), math.floor((4 + 4 / 3) * SR / 128)]
    assert "1 tempo change(s) inside the window, the first at 4 s" in g.notes


@pytest.mark.parametrize(("num", "bar_frames"), [(6, 150), (7, 175)])
def test_six_and_seven_eight_have_eighth_note_beats(num, bar_frames):
    g = _grid(TempoMap([(0.0, 120.0)], (num, 8)), hop=441, n_frames=1000)  # 100 frames per second
    assert np.flatnonzero(g.beat).tolist() == list(range(0, 1000, 25))  # an eighth is 0.25 s
    assert np.flatnonzero(g.downbeat).tolist() == list(range(0, 1000, bar_frames))
    assert g.beat_phase[10] == pytest.approx(0.4)
    assert g.bar_phase[200] == pytest.approx((200 % bar_frames) / bar_frames)


def test_window_starting_mid_bar():
    g = _grid(TempoMap([(0.0, 120.0)]), hop=441, start_s=0.125, n_frames=400)
    assert g.beat_phase[0] == pytest.approx(0.25) and g.bar_phase[0] == pytest.approx(0.0625)
    assert np.flatnonzero(g.downbeat).tolist() == [187, 387]  # (2 - 0.125) s * 100, (4 - 0.125) s * 100
    assert g.notes[0] == "window starts 0.25 beats after a bar line (bar 1 beat 1.25)"


def test_negative_start_extends_the_first_tempo():
    g = _grid(TempoMap([(0.0, 120.0)]), hop=441, start_s=-1.0, n_frames=400)
    assert g.bar_phase[0] == pytest.approx(0.5)
    assert np.flatnonzero(g.downbeat).tolist() == [100, 300]  # project time 0 is frame 100
    assert g.notes[0] == "window starts 2 beats after a bar line (bar 0 beat 3)"
    assert any("before project time 0" in note for note in g.notes)
    late = _grid(TempoMap([(1.5, 100.0)]), hop=441, start_s=0.0, n_frames=10)
    assert any("assumed before" in note for note in late.notes)


def test_flags_match_a_beat_by_beat_reference_on_a_random_map():
    rng = np.random.default_rng(7)
    times = np.concatenate([[0.0], np.sort(rng.uniform(0.5, 30.0, 12))])
    changes = list(zip(times.tolist(), rng.uniform(50, 240, 13).tolist()))
    tempo = TempoMap(changes, (5, 8))
    start, hop, n = 1.2345, 32, 40_000
    g = grid_features(tempo, sample_rate=SR, hop=hop, start_s=start, n_frames=n)
    # Reference: walk the map eighth by eighth in plain Python.
    beat_frames, bar_frames, t, k = [], [], 0.0, 0
    while t < start + n * hop / SR:
        if t >= start:
            frame = math.floor((t - start) * SR / hop)
            beat_frames.append(frame)
            if k % 5 == 0:
                bar_frames.append(frame)
        left = 0.5  # quarters to the next eighth, crossing as many tempo changes as come first
        while True:
            bpm = [b for s, b in changes if s <= t][-1]
            upcoming = [s for s, _ in changes if s > t]
            if not upcoming or (upcoming[0] - t) * bpm / 60.0 >= left:
                t += left * 60.0 / bpm
                break
            left -= (upcoming[0] - t) * bpm / 60.0
            t = upcoming[0]
        k += 1
    assert np.flatnonzero(g.beat).tolist() == beat_frames
    assert np.flatnonzero(g.downbeat).tolist() == bar_frames


def test_phases_stay_below_one_in_float32():
    g = _grid(TempoMap([(0.0, 120.0)]), hop=8, start_s=2.0 - 1e-8, n_frames=4)
    assert 0.0 <= g.bar_phase[0] < 1.0 and 0.0 <= g.beat_phase[0] < 1.0
    assert g.downbeat.tolist() == [1.0, 0.0, 0.0, 0.0]


def test_as_matrix():
    g = _grid(TempoMap([(0.0, 120.0)], (3, 4)), hop=441, n_frames=300)
    m = g.as_matrix()
    assert m.shape == (300, 6) and m.dtype == np.float32
    np.testing.assert_allclose(m[:, 0], np.sin(2 * np.pi * g.beat_phase), atol=1e-5)
    np.testing.assert_allclose(m[:, 1], np.cos(2 * np.pi * g.beat_phase), atol=1e-5)
    np.testing.assert_allclose(m[:, 2], np.sin(2 * np.pi * g.bar_phase), atol=1e-5)
    np.testing.assert_allclose(m[:, 3], np.cos(2 * np.pi * g.bar_phase), atol=1e-5)
    assert m[:, 4].tolist() == g.beat.tolist() and m[:, 5].tolist() == g.downbeat.tolist()
    assert m[150, 2] == pytest.approx(0.0, abs=1e-5) and m[150, 3] == pytest.approx(1.0)  # bar 2


def test_the_longest_level_0_window_is_computed_whole():
    # speed belongs in benchmarks (measured about 0.25 s for this on the 2-core dev box); here: shape and values
    tempo = TempoMap([(0.0, 120.0), (100.0, 97.0), (300.0, 150.0)], (7, 8))
    g = grid_features(tempo, sample_rate=SR, hop=8, start_s=-3.0, n_frames=MAX_FRAMES)
    assert g.beat_phase.shape == (2**22,) and g.beat_phase.dtype == np.float32
    assert float(g.bar_phase.min()) >= 0.0 and float(g.bar_phase.max()) < 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"hop": 0}, "hop"),
        ({"n_frames": 0}, "n_frames"),
        ({"n_frames": MAX_FRAMES + 1}, "at most"),
        ({"sample_rate": 44100.0}, "sample_rate"),
        ({"start_s": math.nan}, "start_s"),
        ({"start_s": 2e6}, "start_s"),
    ],
)
def test_bad_windows(kwargs, match):
    args = {"sample_rate": SR, "hop": 128, "start_s": 0.0, "n_frames": 10} | kwargs
    with pytest.raises(InputError, match=match):
        grid_features(TempoMap([(0.0, 120.0)]), **args)
    with pytest.raises(InputError, match="TempoMap"):
        grid_features([(0.0, 120.0)], sample_rate=SR, hop=128, start_s=0.0, n_frames=10)  # type: ignore[arg-type]
