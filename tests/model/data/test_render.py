"""Rendering a composition: FluidSynth stems that add up to the mix, and a vocal stem sung from the words."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from model.data import render as R
from model.data import voice as V
from tests.helpers.tiny_pieces import Word, piece, require_render_tools, tiny_compose

SR = 22050


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_render_tools()


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2))) if x.size else 0.0


def span(x: np.ndarray, a: float, b: float, sr: int = SR) -> np.ndarray:
    return x[int(a * sr) : int(b * sr)]


def acf_f0(x: np.ndarray, sr: int, fmin: float = 70.0, fmax: float = 1000.0) -> float:
    """f0 by plain autocorrelation (independent of the YIN that the voice uses): the highest peak in range."""
    x = x - x.mean()
    n = 1 << int(np.ceil(np.log2(2 * x.size)))
    spec = np.fft.rfft(x, n)
    ac = np.fft.irfft(spec * np.conj(spec), n)[: x.size]
    lo, hi = int(sr / fmax), int(sr / fmin)
    lag = lo + int(np.argmax(ac[lo:hi]))
    # the highest peak can be a multiple of the period: prefer the shortest lag whose peak is nearly as high
    for div in (4, 3, 2):
        cand = int(round(lag / div))
        if cand >= lo:
            w = max(2, cand // 20)
            c = cand - w + int(np.argmax(ac[cand - w : cand + w + 1]))
            if ac[c] > 0.85 * ac[lag]:
                lag = c
                break
    return sr / lag


def test_stems_add_up_to_the_mix_and_the_gain_is_recorded() -> None:
    comp = tiny_compose(3, "band", seconds=3.0)
    out = R.render(comp, sample_rate=SR)
    assert set(out.stems) == {"drums", "bass", "keys", "vocals"}  # no strings or leads in this piece: no stem
    total = np.zeros_like(out.mix)
    for s in out.stems.values():
        assert s.dtype == np.float32 and s.shape == (3 * SR,)
        total += s
    assert np.array_equal(total, out.mix)  # exactly, in float32
    assert np.max(np.abs(out.mix)) == pytest.approx(10 ** (-R.DEFAULT_HEADROOM_DB / 20), rel=1e-5)
    louder = R.render(comp, sample_rate=SR, headroom_db=7.0)
    assert louder.gain / out.gain == pytest.approx(10 ** (-6 / 20), rel=1e-5)  # one gain for every stem
    for g in out.stems:
        np.testing.assert_allclose(louder.stems[g], out.stems[g] * (louder.gain / out.gain), atol=1e-6)


def test_each_stem_sounds_only_where_its_notes_are() -> None:
    times = {"drums": (0.2, 0.6), "bass": (1.6, 2.1), "keys": (3.0, 3.5), "strings": (4.4, 4.9), "leads": (5.8, 6.3)}
    pitches = {"drums": 38, "bass": 40, "keys": 60, "strings": 67, "leads": 72}
    comp = piece({g: [(pitches[g], a, b)] for g, (a, b) in times.items()}, seconds=8.0)
    out = R.render(comp, sample_rate=SR)
    assert set(out.stems) == set(times)
    for g, (a, b) in times.items():
        s = out.stems[g]
        inside = rms(span(s, a, b))
        assert inside > 1e-3, g
        assert rms(span(s, 0.0, a - 0.01)) < 1e-6 * inside + 1e-9, f"{g} sounds before its note"
        assert rms(span(s, b + 1.2, 8.0)) < 0.05 * inside, f"{g} still sounds 1.2 s after its note"
        for other, (c, d) in times.items():  # no stem carries another group's note
            if other != g and c > b + 1.2:
                assert rms(span(s, c, d)) < 0.05 * inside, (g, other)


def test_a_drums_only_piece_has_only_a_drum_stem_equal_to_the_mix() -> None:
    out = R.render(tiny_compose(0, "drums", seconds=2.0), sample_rate=SR)
    assert list(out.stems) == ["drums"]
    assert np.array_equal(out.stems["drums"], out.mix)
    assert rms(out.mix) > 1e-3


def test_a_group_with_instruments_but_no_notes_is_a_silent_stem() -> None:
    comp = piece({"drums": [(36, 0.1, 0.2)], "keys": []}, seconds=1.0)
    out = R.render(comp, sample_rate=SR)
    assert set(out.stems) == {"drums", "keys"}
    assert not np.any(out.stems["keys"])


def test_the_vocal_stem_sings_inside_the_words_and_is_silent_outside() -> None:
    words = (Word("hello", 0.3, 1.2, 60), Word("morning", 1.6, 2.8, 67), Word("sun", 3.2, 4.0, 52))
    comp = piece({"vocals": [(w.pitch, w.start_s, w.end_s) for w in words]}, seconds=4.5, words=words)
    out = R.render(comp, sample_rate=SR)
    voc = out.stems["vocals"]
    edges = [0.0] + [t for w in words for t in (w.start_s, w.end_s)] + [4.5]
    for w in words:
        assert rms(span(voc, w.start_s, w.end_s)) > 0.05, w.text
    for a, b in zip(edges[::2], edges[1::2]):  # the gaps between words
        assert rms(span(voc, a + 0.001, b - 0.001)) < 1e-6
    for w in words:  # a sustained word holds its note: middle 60 %, within a semitone
        n = w.end_s - w.start_s
        f0 = acf_f0(span(voc, w.start_s + 0.2 * n, w.end_s - 0.2 * n), SR)
        assert abs(12 * np.log2(f0 / V.midi_hz(w.pitch))) < 1.0, (w.text, f0, V.midi_hz(w.pitch))


def test_the_voice_is_not_a_tone_its_vowels_follow_the_words() -> None:
    """Words carry content: on the same note, 'see' (/i/, a high second formant) has far more energy at
    1.8-3.5 kHz, against 0.1-1.2 kHz, than 'moon' (/u/), as in espeak's speech; a bare tone would not."""

    def brightness(x: np.ndarray) -> float:
        seg = span(x, 0.55, 0.85)
        s = np.abs(np.fft.rfft(seg * np.hanning(seg.size))) ** 2
        f = np.fft.rfftfreq(seg.size, 1 / SR)
        return float(10 * np.log10(s[(f > 1800) & (f < 3500)].sum() / s[(f > 100) & (f < 1200)].sum()))

    for pitch in (57, 64):
        see, moon = V.sing_word("see", pitch, 1.0, SR), V.sing_word("moon", pitch, 1.0, SR)
        assert brightness(see) > brightness(moon) + 8.0, pitch
        assert rms(see) == pytest.approx(V.VOICE_RMS, rel=0.05)


def test_guide_gain_renders_the_vocal_midi_part_under_the_voice() -> None:
    words = (Word("la", 0.2, 1.0, 64),)
    comp = piece({"vocals": [(64, 0.2, 1.0)]}, seconds=1.5, words=words)
    plain = R.render(comp, sample_rate=SR, headroom_db=20.0)
    guided = R.render(comp, sample_rate=SR, headroom_db=20.0, guide_gain=0.5)
    diff = guided.stems["vocals"] / guided.gain - plain.stems["vocals"] / plain.gain
    assert rms(diff) > 1e-3
    no_words = piece({"vocals": [(64, 0.2, 1.0)]}, seconds=1.5)
    assert R.render(no_words, sample_rate=SR).stems == {}  # the melody alone is not a vocal stem


def test_rendering_is_deterministic_and_follows_rate_and_channels() -> None:
    comp = tiny_compose(5, "band", seconds=2.0)
    a, b = R.render(comp, sample_rate=SR), R.render(comp, sample_rate=SR)
    for g in a.stems:
        assert np.array_equal(a.stems[g], b.stems[g]), g
    st = R.render(comp, sample_rate=16000, channels=2)
    assert st.mix.shape == (32000, 2) and st.sample_rate == 16000
    assert not np.array_equal(st.mix[:, 0], st.mix[:, 1])  # FluidSynth's stereo (pan, reverb) is kept


def test_missing_tools_name_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    comp = tiny_compose(0, "drums", seconds=1.0)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(R.RenderUnavailable, match="apt-get install fluidsynth fluid-soundfont-gm"):
        R.render(comp)
    with pytest.raises(V.VoiceUnavailable, match="apt-get install espeak-ng"):
        V.require_espeak()
    monkeypatch.undo()
    monkeypatch.setattr(R, "DEBIAN_SOUNDFONT", str(tmp_path / "none.sf2"))
    monkeypatch.delenv(R.SOUNDFONT_ENV, raising=False)
    with pytest.raises(R.RenderUnavailable, match="fluid-soundfont-gm"):
        R.render(comp)
    monkeypatch.setenv(R.SOUNDFONT_ENV, str(tmp_path / "env.sf2"))
    with pytest.raises(R.RenderUnavailable, match="env.sf2 does not exist"):
        R.render(comp)


def test_a_broken_soundfont_is_an_error_though_fluidsynth_exits_0(tmp_path: Path) -> None:
    bad = tmp_path / "broken.sf2"
    bad.write_bytes(b"RIFF\x00\x00\x00\x00not a soundfont at all")
    with pytest.raises(R.RenderUnavailable, match="fluidsynth failed .* broken.sf2"):
        R.render(tiny_compose(0, "drums", seconds=1.0), soundfont=bad)


def test_bad_render_arguments() -> None:
    comp = tiny_compose(0, "drums", seconds=1.0)
    with pytest.raises(R.InputError, match="channels 3"):
        R.render(comp, channels=3)
    with pytest.raises(R.InputError, match="sample rate 100"):
        R.render(comp, sample_rate=100)
