from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from common.errors import InputError
from conditioning.tempo import TempoMap


def test_constant_120_in_4_4():
    tempo = TempoMap([(0.0, 120.0)])
    np.testing.assert_allclose(tempo.beats_at(np.array([0.0, 0.5, 2.0, -1.0])), [0.0, 1.0, 4.0, -2.0])
    np.testing.assert_allclose(tempo.seconds_at(np.array([0.0, 1.0, 4.0, -2.0])), [0.0, 0.5, 2.0, -1.0])
    assert tempo.quarters_per_bar == 4.0 and tempo.quarters_per_beat == 1.0
    assert tempo.seconds_at_bar(1) == 0.0
    assert tempo.seconds_at_bar(2) == pytest.approx(2.0)
    assert tempo.seconds_at_bar(5, 3) == pytest.approx(9.0)  # 16 + 2 quarters
    assert tempo.seconds_at_bar(0) == pytest.approx(-2.0)  # a count-in bar before bar 1


def test_tempo_change_120_to_90_at_4_s():
    tempo = TempoMap([(0.0, 120.0), (4.0, 90.0)])
    np.testing.assert_allclose(tempo.beats_at(np.array([4.0, 5.0, 6.0])), [8.0, 9.5, 11.0])
    np.testing.assert_allclose(tempo.seconds_at(np.array([8.0, 9.5, 12.0])), [4.0, 5.0, 4.0 + 8.0 / 3.0])
    assert tempo.seconds_at_bar(4) == pytest.approx(4.0 + 8.0 / 3.0)
    assert tempo.seconds_at_bar(3, 3) == pytest.approx(4.0 + 2.0 / 1.5)
    assert tempo.seconds_for_bars(2, 3.0) == pytest.approx(1.0 + 4.0)  # 2 quarters at 120, 6 at 90
    np.testing.assert_allclose(tempo.bpm_at(np.array([-1.0, 3.999, 4.0])), [120.0, 120.0, 90.0])


def test_first_change_after_zero_holds_before_it_and_negative_first_change():
    late = TempoMap([(1.5, 100.0), (3.0, 150.0)])
    np.testing.assert_allclose(
        late.beats_at(np.array([-0.6, 0.0, 1.5, 3.0, 4.0])), [-1.0, 0.0, 2.5, 5.0, 7.5]
    )
    early = TempoMap([(-2.0, 60.0), (1.0, 120.0)])
    np.testing.assert_allclose(early.beats_at(np.array([-3.0, -2.0, 0.0, 1.0, 2.0])), [-3, -2, 0, 1, 3])


def test_same_time_changes_the_later_wins():
    tempo = TempoMap([(0.0, 120.0), (2.0, 60.0), (2.0, 90.0)])
    assert float(tempo.beats_at(3.0)) == pytest.approx(4.0 + 1.5)


def test_round_trip_on_a_random_map():
    rng = np.random.default_rng(3)
    times = np.concatenate([[0.0], np.sort(rng.uniform(0.1, 100.0, 40))])
    tempo = TempoMap(list(zip(times.tolist(), rng.uniform(40, 300, 41).tolist())))
    seconds = rng.uniform(-20.0, 150.0, 10_000)
    np.testing.assert_allclose(tempo.seconds_at(tempo.beats_at(seconds)), seconds, atol=1e-9)
    assert np.all(np.diff(tempo.beats_at(np.sort(seconds))) >= 0)


def test_compound_and_odd_meters_count_eighth_note_beats():
    six = TempoMap([(0.0, 120.0)], (6, 8))
    assert six.quarters_per_bar == 3.0 and six.quarters_per_beat == 0.5
    assert six.seconds_at_bar(2) == pytest.approx(1.5)
    assert six.seconds_at_bar(1, 4) == pytest.approx(0.75)  # three eighths at 0.25 s
    seven = TempoMap([(0.0, 120.0)], (7, 8))
    assert seven.seconds_at_bar(2) == pytest.approx(1.75)
    assert seven.seconds_at_bar(1, 7.5) == pytest.approx(1.625)
    with pytest.raises(InputError, match="7/8"):
        seven.seconds_at_bar(1, 8)


CASES = [
    ([(0.0, 120.0)], (4, 4), 2.0, 0.0),
    ([(0.0, 120.0), (4.0, 90.0)], (4, 4), 3.0, 1.0),
    ([(0.0, 120.0), (4.0, 90.0)], (4, 4), 1.25, 3.7),
    ([(1.5, 100.0), (3.0, 150.0)], (3, 4), 2.5, 0.0),
    ([(0.0, 140.0), (2.0, 70.0), (5.5, 200.0), (9.0, 33.0)], (7, 8), 6.0, 0.3),
    ([(0.0, 96.0), (10.0, 128.0)], (6, 8), 4.0, -2.0),
    ([(0.0, 120.0), (2.0, 60.0), (2.0, 90.0)], (4, 4), 1.0, 1.5),
    ([(0.0, 120.0)], (4, 4), 0.0, 5.0),
]


@pytest.mark.parametrize(("changes", "signature", "bars", "start_s"), CASES)
def test_seconds_for_bars_agrees_with_project_context(changes, signature, bars, start_s):
    from bridge.jobs.inputs import ProjectContext, TempoChange

    project = ProjectContext(tempo_map=tuple(TempoChange(t, b) for t, b in changes), time_signature=signature)
    ours = TempoMap(changes, signature).seconds_for_bars(bars, start_s)
    assert ours == pytest.approx(project.seconds_for_bars(bars, start_s), rel=1e-12, abs=1e-9)


def test_clip_start_by_seconds_or_bar_and_beat():
    tempo = TempoMap([(0.0, 120.0), (4.0, 90.0)])
    assert tempo.clip_start(seconds=1.25) == 1.25
    assert tempo.clip_start(bar=5, beat=3) == pytest.approx(4.0 + 10.0 / 1.5)
    assert tempo.clip_start(bar=2) == pytest.approx(2.0)
    with pytest.raises(InputError, match="exactly one"):
        tempo.clip_start(seconds=1.0, bar=2)
    with pytest.raises(InputError, match="exactly one"):
        tempo.clip_start()
    with pytest.raises(InputError, match="goes with a bar"):
        tempo.clip_start(seconds=1.0, beat=2)
    with pytest.raises(InputError, match="counted from 1"):
        tempo.clip_start(bar=2, beat=0)
    with pytest.raises(InputError, match="finite"):
        tempo.clip_start(seconds=math.nan)


@pytest.mark.parametrize(
    ("changes", "signature", "match"),
    [
        ([], (4, 4), "at least one"),
        ([(2.0, 120.0), (1.0, 100.0)], (4, 4), "sorted"),
        ([(0.0, 0.0)], (4, 4), "20..999"),
        ([(0.0, 1000.0)], (4, 4), "20..999"),
        ([(0.0, math.nan)], (4, 4), "finite"),
        ([(math.nan, 120.0)], (4, 4), "finite"),
        ([(0.0, math.inf)], (4, 4), "finite"),
        ([(0.0, True)], (4, 4), "number"),
        ([(0.0, "120")], (4, 4), "number"),
        ([(0.0, 120.0, 1.0)], (4, 4), "pair"),
        ("0 120", (4, 4), "sequence"),
        ([(0.0, 120.0)], (5, 3), "5/3"),
        ([(0.0, 120.0)], (0, 4), "0/4"),
        ([(0.0, 120.0)], (4.0, 4), "integers"),
        ([(2e6, 120.0)], (4, 4), "within"),
    ],
)
def test_bad_tempo_maps(changes, signature, match):
    with pytest.raises(InputError, match=match):
        TempoMap(changes, signature)


def test_bad_positions_and_frozen():
    tempo = TempoMap([(0.0, 120.0)])
    with pytest.raises(InputError, match="finite"):
        tempo.beats_at(np.array([0.0, np.nan]))
    with pytest.raises(InputError, match="finite"):
        tempo.seconds_at(np.inf)
    with pytest.raises(InputError, match="0 or more"):
        tempo.seconds_for_bars(-1, 0.0)
    with pytest.raises(InputError, match="bar"):
        tempo.seconds_at_bar(math.nan)
    with pytest.raises(InputError, match="within"):
        tempo.seconds_at_bar(1e7)
    with pytest.raises(dataclasses.FrozenInstanceError):
        tempo.changes = ()  # type: ignore[misc]
    assert TempoMap([(0, 120)]) == tempo and hash(TempoMap([(0, 120)])) == hash(tempo)
    assert TempoMap([(0, 120)], (3, 4)) != tempo
