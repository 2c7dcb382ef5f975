from __future__ import annotations

import numpy as np
import pytest

from common.errors import InputError
from conditioning.stems import MAX_FRAMES, PITCH_CLASSES, analyse_stem, stem_features, summary

SR, HOP = 44100, 128  # level 2: 344.53 frames per second
FPS = SR / HOP


def _tone(freqs: list[float], seconds: float, sr: int = SR, amp: float = 0.2) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    return np.sum([amp * np.sin(2 * np.pi * f * t) for f in freqs], axis=0).astype(np.float32)


def _features(samples: np.ndarray, seconds: float, rate: int = SR, hop: int = HOP, **kw: float):
    n_frames = int(seconds * SR / hop)
    return stem_features(
        samples,
        rate,
        name="drums.wav",
        sample_rate=SR,
        hop=hop,
        start_s=kw.pop("start_s", 0.0),
        n_frames=n_frames,
        **kw,
    )


@pytest.mark.parametrize("hop", [8, 128])
def test_clicks_give_onset_peaks_at_their_frames(hop: int) -> None:
    clicks_s = [0.5, 1.1, 1.7, 2.3]
    stem = np.zeros(3 * SR, dtype=np.float32)
    for c in clicks_s:
        stem[int(c * SR) : int(c * SR) + 32] = 0.8
    f = _features(stem, 3.0, hop=hop)
    tolerance = 512 / hop  # one analysis hop
    for c in clicks_s:
        lo, hi = int((c - 0.1) * SR / hop), int((c + 0.1) * SR / hop)
        peak = lo + int(np.argmax(f.onset[lo:hi]))
        assert abs(peak - c * SR / hop) <= tolerance + 1
        assert f.onset[peak] > 0.8
    assert summary(f)["onsets"] == len(clicks_s)
    assert f.onset[: int(0.4 * SR / hop)].max() == 0.0


def test_a440_chroma_is_a_and_c_major_triad() -> None:
    f = _features(_tone([440.0], 1.0), 1.0)
    assert np.all(np.argmax(f.chroma[20:-20], axis=1) == PITCH_CLASSES.index("A"))
    assert summary(f)["dominant_pitch_class"] == "A"
    triad = _features(_tone([261.63, 329.63, 392.0], 1.0), 1.0)
    mean = triad.chroma[20:-20].mean(axis=0)
    top3 = {PITCH_CLASSES[k] for k in np.argsort(mean)[-3:]}
    assert top3 == {"C", "E", "G"}
    assert np.allclose(triad.chroma.max(axis=1), 1.0)


def test_silence_is_noted_and_zero() -> None:
    f = _features(np.zeros((SR, 2), dtype=np.float32), 1.0)
    assert any("silent" in n for n in f.notes)
    assert not f.onset.any() and not f.chroma.any() and not f.loudness.any()
    assert np.all(f.loudness_db == -80.0)
    assert np.all(f.coverage == 1.0)


def test_loudness_step_at_the_right_time() -> None:
    stem = _tone([1000.0], 2.0, amp=0.5)
    stem[:SR] *= 0.01  # -40 dB for the first second
    f = _features(stem, 2.0)
    step = int(FPS)  # the envelope moves only within half an RMS frame (1024 samples, 8 frames) of 1 s
    assert np.ptp(f.loudness_db[40 : step - 9]) < 0.5 and np.ptp(f.loudness_db[step + 9 : -40]) < 0.5
    assert f.loudness_db[step + 9] - f.loudness_db[step - 9] == pytest.approx(40.0, abs=0.5)
    assert f.loudness_db[50] == pytest.approx(20 * np.log10(0.005 / np.sqrt(2)), abs=0.5)
    assert f.loudness_db[-50] == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.5)
    assert f.loudness[-50] == pytest.approx((f.loudness_db[-50] + 80) / 80)


def test_stem_shorter_than_window_and_starting_before_it() -> None:
    f = _features(_tone([440.0], 1.0), 4.0)
    covered = int(f.coverage.sum())
    assert abs(covered - FPS) <= 1 and np.all(f.coverage[:covered] == 1.0)
    assert any("3.000 s shorter than the window" in n for n in f.notes)
    assert not f.chroma[covered:].any() and np.all(f.loudness_db[covered:] == -80.0)
    # a 3 s stem placed at -1 s: the window [0, 1) sees its second 1..2 s; a click at stem time 1.5 s
    stem = np.zeros(3 * SR, dtype=np.float32)
    stem[int(1.5 * SR) : int(1.5 * SR) + 32] = 0.8
    g = _features(stem, 1.0, stem_start_s=-1.0)
    assert np.all(g.coverage == 1.0)
    assert abs(int(np.argmax(g.onset)) - 0.5 * FPS) <= 512 / HOP + 1
    assert any("1.000 s before the window" in n for n in g.notes)


def test_48k_stem_is_resampled() -> None:
    f = _features(_tone([440.0], 1.0, sr=48000), 1.0, rate=48000)
    assert any("resampled from 48000 Hz" in n for n in f.notes)
    assert np.all(np.argmax(f.chroma[20:-20], axis=1) == PITCH_CLASSES.index("A"))
    assert abs(f.coverage.sum() - FPS) <= 1


def test_channels_mixed_and_mono_equals_duplicated_stereo() -> None:
    mono = _tone([440.0, 660.0], 1.0)
    mono[SR // 2 : SR // 2 + 32] += 0.5
    one = _features(mono, 1.0)
    two = _features(np.stack([mono, mono], axis=1), 1.0)
    four = _features(np.stack([mono] * 4, axis=1), 1.0)
    for other in (two, four):
        for field in ("onset", "loudness_db", "loudness", "chroma", "coverage"):
            np.testing.assert_array_equal(getattr(one, field), getattr(other, field))
    assert any("4 channels, mixed to mono" in n for n in four.notes)


def test_different_channels_are_averaged_not_one_taken() -> None:
    left, right = _tone([440.0], 1.0), np.zeros(SR, dtype=np.float32)
    stereo = _features(np.stack([left, right], axis=1), 1.0)
    half = _features(0.5 * left, 1.0)  # the mean of a tone and silence
    np.testing.assert_allclose(stereo.loudness_db, half.loudness_db, atol=1e-4)
    assert float(np.max(stereo.loudness_db)) < float(np.max(_features(left, 1.0).loudness_db)) - 5.0  # not the left alone


@pytest.mark.parametrize(
    ("samples", "rate", "message"),
    [
        (np.zeros(0, dtype=np.float32), SR, "empty"),
        (np.zeros((100, 17), dtype=np.float32), SR, "17 channels"),
        (np.zeros(100, dtype=np.float32), 4000, "4000 Hz is outside"),
        (np.zeros(100, dtype=np.float32), 400000, "outside 8000..192000"),
        (np.zeros(1201 * 8000, dtype=np.float32), 8000, "1201.0 s long"),
        (np.zeros(100, dtype=np.int16), SR, "floating point"),
        (np.full(100, 32767.0, dtype=np.float32), SR, "unscaled integer PCM"),
    ],
)
def test_bad_stems_raise_input_error_naming_the_stem(samples: np.ndarray, rate: int, message: str) -> None:
    with pytest.raises(InputError, match=message) as error:
        _features(samples, 0.1, rate=rate)
    assert "drums.wav" in str(error.value)


def test_nan_stem_says_how_many_and_where() -> None:
    stem = np.zeros((SR, 2), dtype=np.float32)
    stem[22050, 1] = np.nan
    stem[30000:30002, 0] = np.inf
    with pytest.raises(
        InputError, match=r"'drums.wav'.*3 NaN or infinite samples; the first at sample 22,050 \(0.500 s\)"
    ):
        _features(stem, 1.0)


def test_window_limits() -> None:
    with pytest.raises(InputError, match="n_frames"):
        stem_features(
            np.zeros(100, np.float32),
            SR,
            name="a",
            sample_rate=SR,
            hop=8,
            start_s=0.0,
            n_frames=MAX_FRAMES + 1,
        )
    with pytest.raises(InputError, match="start_s"):
        _features(np.zeros(100, np.float32), 0.1, start_s=float("nan"))


@pytest.mark.slow  # librosa's import and numba compile take seconds
def test_matches_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    rng = np.random.default_rng(0)
    t = np.arange(3 * SR) / SR
    y = (0.3 * np.sin(2 * np.pi * 440 * t) * (t > 1) + 0.05 * rng.standard_normal(t.size)).astype(np.float32)
    a = analyse_stem(y, SR, name="x", sample_rate=SR, hop=HOP)
    onset = librosa.onset.onset_strength(y=y, sr=SR, hop_length=512)
    onset = np.clip(onset / max(np.percentile(onset, 99), onset.max() / 10), 0, 1)
    np.testing.assert_allclose(a.onset, onset, atol=1e-4)
    chroma = librosa.feature.chroma_stft(y=y, sr=SR, hop_length=512, tuning=0)
    np.testing.assert_allclose(a.chroma, chroma.T, atol=1e-4)
    rms = librosa.feature.rms(y=y, frame_length=2048, hop_length=512, pad_mode="constant")[0]
    np.testing.assert_allclose(a.loudness_db, np.maximum(-80, 20 * np.log10(rms)), atol=1e-3)
