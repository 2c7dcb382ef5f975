from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pytest

from common.errors import InputError
from conditioning.adherence import (
    AdherenceReport,
    Conditions,
    adherence,
    derangement,
    order_candidates,
    pick_onsets,
    shuffled_baseline,
)
from conditioning.midi import MidiClip

SR = 44100
START = 12.0  # model time of the audio's first sample
CHORDS = [(60, 64, 67), (65, 69, 72), (67, 71, 74), (69, 72, 76)]  # C F G Am, one second each
KICKS = [0.25 + 0.5 * k for k in range(8)]


def _clip(
    notes: Sequence[tuple[float, float, int]], length_s: float, drums: Sequence[tuple[float, int]] = ()
) -> MidiClip:
    rows = [(s, e, p, False) for s, e, p in notes] + [(t, t + 0.05, p, True) for t, p in drums]
    rows.sort(key=lambda r: (r[0], r[2]))
    n = len(rows)
    return MidiClip(
        name="test.mid",
        start_s=np.array([r[0] for r in rows], dtype=np.float64),
        end_s=np.array([r[1] for r in rows], dtype=np.float64),
        pitch=np.array([r[2] for r in rows], dtype=np.int16),
        velocity=np.full(n, 100, dtype=np.int16),
        is_drum=np.array([r[3] for r in rows], dtype=bool),
        program=np.zeros(n, dtype=np.int16),
        length_s=length_s,
        tempo_changes=(),
        time_signatures=(),
        midi_type=1,
        ticks_per_beat=480,
    )


def _progression(chords: Sequence[tuple[int, ...]], drums: Sequence[tuple[float, int]] = ()) -> MidiClip:
    notes = [(k * 1.0, k * 1.0 + 1.0, p) for k, chord in enumerate(chords) for p in chord]
    return _clip(notes, float(len(chords)), drums)


def _render(clip: MidiClip, seconds: float, *, offset_s: float = 0.0, transpose: int = 0) -> np.ndarray:
    """(samples, 2) float32: pitched notes as sines, drum notes as 64-sample clicks, the clip at offset_s."""
    y = np.zeros(int(seconds * SR), dtype=np.float32)
    for start, end, pitch, drum in zip(clip.start_s, clip.end_s, clip.pitch, clip.is_drum):
        first = int(round((start + offset_s) * SR))
        if not 0 <= first < y.size:
            continue
        if drum:
            y[first : first + 64] += 0.8
        else:
            stop = min(y.size, int(round((end + offset_s) * SR)))
            t = np.arange(stop - first) / SR
            y[first:stop] += 0.1 * np.sin(2 * np.pi * 440.0 * 2 ** ((pitch + transpose - 69) / 12) * t)
    return np.stack([y, y], axis=1)


def _clicks(times: list[float], seconds: float) -> np.ndarray:
    y = np.zeros(int(seconds * SR), dtype=np.float32)
    for t in times:
        y[int(t * SR) : int(t * SR) + 64] = 0.8
    return y


def _enveloped(envelope: np.ndarray, seconds: float, seed: int, tone: float | None = None) -> np.ndarray:
    """Noise (or a sine) whose amplitude follows ``envelope`` (linearly interpolated over the duration)."""
    n = int(seconds * SR)
    gain = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, envelope.size), envelope)
    if tone is None:
        carrier = np.random.default_rng(seed).standard_normal(n) * 0.2
    else:
        carrier = 0.3 * np.sin(2 * np.pi * tone * np.arange(n) / SR)
    return (carrier * gain).astype(np.float32)


# ---- midi_chroma ------------------------------------------------------------------------------------------


def test_chroma_is_high_for_its_own_midi_and_low_for_transposed_or_reordered_chords() -> None:
    clip = _progression(CHORDS)
    own = adherence(_render(clip, 4.0), SR, start_s=START, midi=(clip, START))
    transposed = adherence(_render(clip, 4.0, transpose=6), SR, start_s=START, midi=(clip, START))
    reordered = adherence(_render(clip, 4.0), SR, start_s=START, midi=(_progression(CHORDS[::-1]), START))
    assert own.midi_chroma is not None and own.midi_chroma > 0.8
    assert transposed.midi_chroma is not None and transposed.midi_chroma < 0.35
    assert reordered.midi_chroma is not None and reordered.midi_chroma < 0.5
    assert own.midi_chroma_frames == 4 * SR // 2048  # every whole comparison frame of the 4 s
    assert own.drum_onset_f1 is None and own.loudness_corr == {}


def test_chroma_follows_the_clip_placement() -> None:
    clip = _progression(CHORDS)
    audio = _render(clip, 5.0, offset_s=0.5)  # the clip starts 0.5 s into the audio
    placed = adherence(audio, SR, start_s=START, midi=(clip, START + 0.5))
    misplaced = adherence(audio, SR, start_s=START, midi=(clip, START))
    assert placed.midi_chroma is not None and misplaced.midi_chroma is not None
    assert placed.midi_chroma > 0.8 > misplaced.midi_chroma + 0.15
    # only frames the clip covers count: 0.5 s before it and 0.5 s after it are left out
    assert placed.midi_chroma_frames < 4.0 * SR / 2048 + 1


def test_silent_audio_scores_zero_where_the_midi_sounds() -> None:
    clip = _progression(CHORDS, drums=[(t, 36) for t in KICKS])
    report = adherence(np.zeros((4 * SR, 2), np.float32), SR, start_s=START, midi=(clip, START))
    assert report.midi_chroma == 0.0
    assert report.drum_onset_f1 == 0.0 and report.drum_onset_recall == 0.0
    assert any("audio is silent" in note for note in report.notes)
    assert any("no onsets were detected" in note for note in report.notes)


def test_drums_only_clip_has_no_chroma_number() -> None:
    clip = _clip([], 4.0, [(t, 36) for t in KICKS])
    report = adherence(_render(clip, 4.0), SR, start_s=START, midi=(clip, START))
    assert report.midi_chroma is None and report.midi_chroma_frames == 0
    assert any(note.startswith("midi_chroma:") for note in report.notes)
    assert report.drum_onset_f1 is not None


# ---- drum_onset_f1 ----------------------------------------------------------------------------------------


def test_clicks_on_the_midi_drum_notes_score_one_and_shifted_clicks_zero() -> None:
    # a kick and a hi-hat together are one onset in the audio: 8 reference onsets, not 16
    clip = _clip([], 4.0, [(t, 36) for t in KICKS] + [(t, 42) for t in KICKS])
    on_time = adherence(_render(clip, 4.0), SR, start_s=START, midi=(clip, START))
    assert on_time.drum_reference == "midi"
    assert on_time.drum_reference_onsets == len(KICKS)
    assert on_time.drum_onset_f1 == pytest.approx(1.0)
    late = adherence(_render(clip, 4.0, offset_s=0.12), SR, start_s=START, midi=(clip, START))
    assert late.drum_onset_f1 == pytest.approx(0.0)
    assert late.drum_estimated_onsets == len(KICKS)
    half = adherence(
        _clicks(KICKS[::2] + [t + 0.2 for t in KICKS[1::2]], 4.0), SR, start_s=START, midi=(clip, START)
    )
    assert half.drum_onset_f1 == pytest.approx(0.5)


def test_only_drum_notes_and_onsets_inside_the_clip_count() -> None:
    clip = _clip([], 2.0, [(t, 38) for t in KICKS[:4]])  # the clip covers 1..3 s of the audio
    audio = _clicks([t + 1.0 for t in KICKS[:4]] + [0.3, 3.5], 4.0)  # two extra clicks outside the clip
    report = adherence(audio, SR, start_s=START, midi=(clip, START + 1.0))
    assert report.drum_onset_f1 == pytest.approx(1.0)
    assert (report.drum_reference_onsets, report.drum_estimated_onsets) == (4, 4)


def test_a_named_drum_stem_is_the_reference_and_its_placement_counts() -> None:
    clip = _clip([], 4.0, [(t + 0.1, 36) for t in KICKS])  # drum notes that the audio misses
    stem = _clicks(KICKS, 4.0)
    stems = {"drums": (stem, SR, START)}
    audio = _clicks(KICKS, 4.0)
    report = adherence(audio, SR, start_s=START, midi=(clip, START), stems=stems, drum_stem="drums")
    assert report.drum_reference == "stem:drums"
    assert report.drum_onset_f1 == pytest.approx(1.0)
    assert adherence(audio, SR, start_s=START, midi=(clip, START)).drum_onset_f1 == pytest.approx(0.0)
    moved = adherence(audio, SR, start_s=START, stems={"drums": (stem, SR, START + 0.15)}, drum_stem="drums")
    assert moved.drum_onset_f1 == pytest.approx(0.0)
    with pytest.raises(InputError, match="'kick' is not among the stems: drums"):
        adherence(audio, SR, start_s=START, stems=stems, drum_stem="kick")


def test_a_clip_without_drums_says_so() -> None:
    clip = _progression(CHORDS)
    report = adherence(_render(clip, 4.0), SR, start_s=START, midi=(clip, START))
    assert report.drum_onset_f1 is None
    assert any("no reference onsets" in note for note in report.notes)


def test_pick_onsets_follows_librosas_rule() -> None:
    fps = SR / 512  # pre_max 2, post_max 1, pre_avg 8, post_avg 9, wait 2, delta 0.07
    x = np.zeros(100)
    x[[10, 30, 31, 50, 53, 70]] = [1.0, 0.8, 0.9, 0.6, 0.7, 0.05]
    # 10: a lone peak. 30: the maximum of frames 28..30 (the window looks back only); 31 is higher but within
    # wait of 30. 50 and 53: both, 3 frames apart. 70: only 0.05 above a near-zero mean, under delta
    assert pick_onsets(x, fps).tolist() == [10, 30, 50, 53]
    assert pick_onsets(x * 5 + 2, fps).tolist() == [10, 30, 50, 53]  # scaled to [0, 1] first
    assert pick_onsets(np.zeros(50), fps).size == 0
    assert pick_onsets(np.zeros(0), fps).size == 0


@pytest.mark.slow  # librosa's import and numba compile take seconds
def test_pick_onsets_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(3)
    envelope = rng.random(2000) ** 4
    expected = librosa.onset.onset_detect(onset_envelope=envelope, sr=SR, hop_length=512)
    assert pick_onsets(envelope, SR / 512).tolist() == expected.tolist()


# ---- loudness_corr ----------------------------------------------------------------------------------------


def test_loudness_correlates_with_a_stem_sharing_its_envelope() -> None:
    envelope = np.array([0.05, 1.0, 0.2, 0.8, 0.02, 0.6, 1.0, 0.1])
    audio = _enveloped(envelope, 4.0, seed=1, tone=330.0)
    stems = {
        "bass": (_enveloped(envelope, 4.0, seed=2), SR, START),
        "pad": (_enveloped(1.05 - envelope, 4.0, seed=3), SR, START),  # louder where the audio is soft
        "late": (_enveloped(envelope, 4.0, seed=2), SR, START + 0.5),
    }
    report = adherence(audio, SR, start_s=START, stems=stems)
    corr = report.loudness_corr
    assert corr["bass"] is not None and corr["bass"] > 0.9
    assert corr["pad"] is not None and corr["pad"] < -0.5
    assert corr["late"] is not None and corr["late"] < corr["bass"] - 0.2  # placement counts


def test_silent_stem_and_constant_audio_give_no_correlation() -> None:
    envelope = np.array([0.1, 1.0, 0.3, 0.9])
    stems = {
        "silent": (np.zeros(4 * SR, np.float32), SR, START),
        "bass": (_enveloped(envelope, 4.0, 1), SR, START),
    }
    report = adherence(_enveloped(envelope, 4.0, seed=5), SR, start_s=START, stems=stems)
    assert report.loudness_corr["silent"] is None and report.loudness_corr["bass"] is not None
    assert any("loudness_corr:silent" in note and "constant" in note for note in report.notes)
    flat = adherence(np.zeros((4 * SR, 1), np.float32), SR, start_s=START, stems=stems)
    assert flat.loudness_corr == {"silent": None, "bass": None}
    away = adherence(
        _enveloped(envelope, 4.0, 5), SR, start_s=START, stems={"bass": stems["bass"][:2] + (START + 10.0,)}
    )
    assert away.loudness_corr["bass"] is None
    assert any("covers 0 frames" in note for note in away.notes)


# ---- report, edge cases -----------------------------------------------------------------------------------


def test_no_conditions_and_json_safe_dict() -> None:
    report = adherence(_render(_progression(CHORDS), 4.0), SR, start_s=START)
    assert (report.midi_chroma, report.drum_onset_f1, report.metric("mean")) == (None, None, None)
    clip = _progression(CHORDS, drums=[(t, 36) for t in KICKS])
    full = adherence(
        _render(clip, 4.0),
        SR,
        start_s=START,
        midi=(clip, START),
        stems={"mix": (_render(clip, 4.0), SR, START)},
    )
    data = json.loads(json.dumps(full.to_dict(), allow_nan=False))
    assert set(data) >= {"midi_chroma", "drum_onset_f1", "loudness_corr", "mean", "notes"}
    assert isinstance(data["midi_chroma"], float) and isinstance(data["loudness_corr"]["mix"], float)
    terms = [full.metric("midi_chroma"), full.metric("drum_onset_f1"), full.metric("loudness_corr:mix")]
    assert None not in terms
    assert data["mean"] == pytest.approx(float(np.mean([t for t in terms if t is not None])), abs=1e-4)


def test_too_short_audio_is_reported_not_nan() -> None:
    clip = _progression(CHORDS, drums=[(0.05, 36)])
    report = adherence(
        _render(clip, 0.3),
        SR,
        start_s=START,
        midi=(clip, START),
        stems={"a": (np.ones(SR, np.float32) * 0.1, SR, START)},
    )
    assert report.midi_chroma is None and report.drum_onset_f1 is None
    assert report.loudness_corr == {"a": None}
    assert any("at least 0.372 s" in note for note in report.notes)


def test_bad_input_raises_input_error() -> None:
    audio = np.zeros((SR, 2), np.float32)
    audio[100, 0] = np.nan
    with pytest.raises(InputError, match="^generated audio: has 1 NaN"):
        adherence(audio, SR, start_s=START)
    with pytest.raises(InputError, match="sample_rate"):
        adherence(np.zeros((SR, 2), np.float32), 0, start_s=START)
    with pytest.raises(InputError, match="start_s"):
        adherence(np.zeros((SR, 2), np.float32), SR, start_s=float("inf"))
    with pytest.raises(InputError, match="midi must be"):
        adherence(np.zeros((SR, 2), np.float32), SR, start_s=START, midi=("x.mid", 0.0))  # type: ignore[arg-type]
    with pytest.raises(InputError, match="stem 'bass'"):
        adherence(
            np.zeros((SR, 2), np.float32),
            SR,
            start_s=START,
            stems={"bass": (np.zeros(0, np.float32), SR, 0.0)},
        )


# ---- ordering ---------------------------------------------------------------------------------------------


def _report(**metrics: object) -> AdherenceReport:
    return AdherenceReport(duration_s=4.0, **metrics)  # type: ignore[arg-type]


def test_order_candidates_best_first_missing_last() -> None:
    reports = [
        _report(midi_chroma=0.5, drum_onset_f1=0.9, loudness_corr={"bass": 0.1}),
        _report(midi_chroma=0.9, drum_onset_f1=None, loudness_corr={"bass": None}),
        _report(midi_chroma=0.7, drum_onset_f1=0.2, loudness_corr={"bass": 0.8}),
        _report(midi_chroma=0.5, drum_onset_f1=0.3, loudness_corr={"bass": 0.2}),
    ]
    assert order_candidates(reports, "midi_chroma") == [1, 2, 0, 3]  # ties keep their order
    assert order_candidates(reports, "drum_onset_f1") == [0, 3, 2, 1]
    assert order_candidates(reports, "loudness_corr:bass") == [2, 3, 0, 1]
    # mean: 0.5, (0.9 but one term: last of the complete ones), 0.567, 0.333
    assert order_candidates(reports, "mean") == [2, 0, 3, 1]
    assert order_candidates([], "mean") == []


def test_order_by_a_metric_no_candidate_has_names_the_available_ones() -> None:
    reports = [_report(midi_chroma=0.5, loudness_corr={"bass": 0.1}), _report(midi_chroma=0.4)]
    with pytest.raises(
        InputError, match=r"'drum_onset_f1'.*available: loudness_corr, loudness_corr:bass, mean, midi_chroma"
    ):
        order_candidates(reports, "drum_onset_f1")
    with pytest.raises(InputError, match="available: none"):
        order_candidates([_report()], "mean")
    with pytest.raises(InputError, match="'loudness_corr:drums'"):
        order_candidates(reports, "loudness_corr:drums")


# ---- shuffled baseline ------------------------------------------------------------------------------------


def test_derangement_has_no_fixed_point_and_is_seeded() -> None:
    for n in (2, 3, 7):
        for seed in range(20):
            order = derangement(n, seed)
            assert sorted(order) == list(range(n)) and all(i != j for i, j in enumerate(order))
    assert derangement(7, 4) == derangement(7, 4)
    assert len({derangement(7, seed) for seed in range(10)}) > 1
    with pytest.raises(InputError, match="at least 2 pieces"):
        derangement(1, 0)


def test_shuffled_baseline_is_lower_than_matched() -> None:
    progressions = [
        CHORDS,
        [(62, 66, 69), (64, 67, 71), (61, 65, 68), (63, 66, 70)],
        [(70, 74, 77), (68, 71, 75)] * 2,
    ]
    drums = [KICKS, [0.4 + 0.7 * k for k in range(5)], [0.15 + 0.9 * k for k in range(4)]]
    clips = [_progression(p, [(t, 36) for t in d]) for p, d in zip(progressions, drums)]
    starts = [0.0, 30.0, 61.5]
    audio = [_render(c, 4.0) for c in clips]
    conditions = [Conditions(midi=(c, s)) for c, s in zip(clips, starts)]
    baseline = shuffled_baseline(audio, SR, start_s=starts, conditions=conditions, seed=1)
    assert all(i != j for i, j in enumerate(baseline.permutation))
    for matched, shuffled in zip(baseline.matched, baseline.shuffled):
        assert matched.midi_chroma is not None and shuffled.midi_chroma is not None
        assert matched.midi_chroma > shuffled.midi_chroma + 0.3
        assert matched.drum_onset_f1 is not None and shuffled.drum_onset_f1 is not None
        assert matched.drum_onset_f1 > shuffled.drum_onset_f1
    summary = baseline.summary()
    assert summary["midi_chroma"]["matched_pieces"] == 3
    assert summary["midi_chroma"]["matched"] > summary["midi_chroma"]["shuffled"]  # type: ignore[operator]
    json.dumps(baseline.to_dict(), allow_nan=False)
    with pytest.raises(InputError, match="as many"):
        shuffled_baseline(audio, SR, start_s=starts[:2], conditions=conditions)
