"""The procedural composer (model/data/compose.py): deterministic, structured, in key, well grouped."""

from __future__ import annotations

import io
import math
from functools import cache

import numpy as np
import pretty_midi
import pytest

from common.errors import InputError
from model.data.compose import STEM_GROUPS, Composition, compose, scale_pitch_classes, styles
from model.data.styles import STYLES


@cache
def piece(seed: int, style: str | None, seconds: float = 30.0) -> Composition:
    return compose(seed, style, seconds=seconds)


def notes(c: Composition) -> list[tuple]:
    return [(i, n.start, n.end, n.pitch, n.velocity) for i, inst in enumerate(c.midi.instruments) for n in inst.notes]


def group_notes(c: Composition, group: str) -> list:
    return [n for i in c.groups.get(group, ()) for n in c.midi.instruments[i].notes]


def bar_seconds(c: Composition) -> float:
    num, den = c.time_signature
    slowest = min(c.midi.get_tempo_changes()[1])
    return num * 4.0 / den * 60.0 / slowest


def test_same_seed_same_piece_other_seeds_differ() -> None:
    a, b = compose(7, "synth_pop_a"), compose(7, "synth_pop_a")
    assert notes(a) == notes(b) and a.words == b.words and a.sections == b.sections
    assert notes(compose(8, "synth_pop_a")) != notes(a)
    picked = compose(7)  # the seed picks the style, and the piece is that style's piece for the seed
    assert picked.artist in styles()
    assert notes(picked) == notes(compose(7, picked.artist))


def test_styles_cover_genres_and_meters() -> None:
    assert len(styles()) >= 8
    assert len({STYLES[s].genre for s in styles()}) >= 5
    for name in styles():
        assert name.isascii() and name == name.lower() and not set(name) & {";", "=", " "}
        st = STYLES[name]
        steps = st.meter[0] * 16 // st.meter[1]
        roles = {p.role for p in st.parts}
        used = [*st.bass, *(st.comp if "comp" in roles else ()), *((st.arp,) if "arp" in roles else ())]
        for pattern in used + [p for g in st.grooves for p in g.values()]:
            assert len(pattern) == steps, (name, pattern)


@pytest.mark.parametrize("name", styles())
def test_every_style_composes_a_structured_piece(name: str) -> None:
    c = piece(11, name)
    assert c.artist == name and c.genre == STYLES[name].genre
    bar = bar_seconds(c)
    assert abs(c.seconds - 30.0) <= bar and c.midi.get_end_time() <= c.seconds + 1e-6
    # sections: contiguous, covering the piece, whole bars
    assert c.sections[0][1] == 0.0 and math.isclose(c.sections[-1][2], c.seconds, abs_tol=1e-5)
    for (_, _, end), (_, start, _) in zip(c.sections, c.sections[1:]):
        assert math.isclose(end, start, abs_tol=1e-5)
    tempi = c.midi.get_tempo_changes()
    for _, start, end in c.sections:
        tempo = tempi[1][np.searchsorted(tempi[0], start + 1e-6) - 1]
        bars = (end - start) / (c.time_signature[0] * 4.0 / c.time_signature[1] * 60.0 / tempo)
        assert bars >= 1 - 1e-6 and abs(bars - round(bars)) < 1e-4, (name, c.sections)
    # groups: known, disjoint, covering every instrument
    assert set(c.groups) <= set(STEM_GROUPS) and all(c.groups.values())
    flat = [i for g in c.groups.values() for i in g]
    assert sorted(flat) == list(range(len(c.midi.instruments)))
    # drums only on drum instruments, GM keys, and only in the drums group
    for i, inst in enumerate(c.midi.instruments):
        assert inst.is_drum == (i in c.groups.get("drums", ()))
        if inst.is_drum:
            assert inst.notes and all(35 <= n.pitch <= 81 for n in inst.notes)
            assert {36, 49} <= {n.pitch for n in inst.notes}
    assert c.midi.time_signature_changes[0].numerator == c.time_signature[0]
    assert c.key.split(" ")[1] in STYLES[name].modes


@pytest.mark.parametrize("name", styles())
def test_bass_and_lead_are_in_key_and_bass_plays_chord_tones(name: str) -> None:
    c = piece(5, name)
    scale = scale_pitch_classes(c.key)
    for group in ("bass", "leads", "vocals"):
        ns = group_notes(c, group)
        if ns:
            assert np.mean([n.pitch % 12 in scale for n in ns]) >= 0.8, (name, group)
    assert all(set(ch.pitch_classes) <= scale for ch in c.chords)
    checked = 0
    for ch in c.chords:
        for n in group_notes(c, "bass"):
            if abs(n.start - ch.start_s) < 0.06:
                assert n.pitch % 12 in ch.pitch_classes, (name, ch, n)
                checked += 1
    assert checked or name == "deep_house_a"  # off-beat house bass has no note on the chord change
    # comping plays the chord: every keys note sounding at a chord's middle belongs to that chord
    for ch in c.chords:
        mid = (ch.start_s + ch.end_s) / 2
        for n in group_notes(c, "keys"):
            if n.start + 0.05 < mid < n.end and n.start > ch.start_s - 0.05:
                assert n.pitch % 12 in ch.pitch_classes, (name, ch.name, n)


@pytest.mark.parametrize("name", [s for s in styles() if STYLES[s].vocals])
def test_words_are_the_vocal_notes(name: str) -> None:
    c = piece(3, name)
    (vi,) = c.groups["vocals"]
    vocal = sorted(c.midi.instruments[vi].notes, key=lambda n: n.start)
    assert len(c.words) == len(vocal) > 8
    for w, n in zip(c.words, vocal):
        assert (w.start_s, w.end_s, w.pitch) == (n.start, n.end, n.pitch) and w.text.isalpha()
    for a, b in zip(c.words, c.words[1:]):
        assert a.end_s <= b.start_s
    assert c.lyrics.split() == [w.text for w in c.words]
    assert compose(4, name).lyrics != c.lyrics


def test_instrumental_styles_have_no_words() -> None:
    c = piece(3, "swing_jazz_a")
    assert c.lyrics == "" and c.words == () and "vocals" not in c.groups


def test_tempo_change_and_compound_meter() -> None:
    changing = [s for s in styles() if STYLES[s].tempo_change != 1.0]
    assert changing
    for name in changing:
        for seconds in (8.0, 30.0, 90.0):
            c = piece(2, name, seconds)
            times, tempi = c.midi.get_tempo_changes()
            assert len(tempi) == 2 and math.isclose(tempi[0], c.bpm) and abs(tempi[1] - c.bpm) > 1
            assert math.isclose(times[1], c.sections[-1][1], abs_tol=1e-2)
        buf = io.BytesIO()  # the tempo map survives writing the MIDI file
        c.midi.write(buf)
        again = pretty_midi.PrettyMIDI(io.BytesIO(buf.getvalue()))
        assert np.allclose(again.get_tempo_changes()[1], tempi, atol=0.1)
        assert np.allclose(again.get_tempo_changes()[0], times, atol=1e-2)
        first, last = c.midi.instruments[0].notes, again.instruments[0].notes
        assert len(first) == len(last) and abs(first[-1].start - last[-1].start) < 5e-3
    for meter in ((3, 4), (6, 8)):
        name = next(s for s in styles() if STYLES[s].meter == meter)
        ts = piece(1, name).midi.time_signature_changes
        assert [(t.numerator, t.denominator) for t in ts] == [meter]


@pytest.mark.parametrize("seconds", [8.0, 47.5, 240.0])
def test_length_follows_seconds(seconds: float) -> None:
    for name in ("synth_pop_a", "ambient_drift_a", "jig_folk_b"):
        c = piece(9, name, seconds)
        assert abs(c.seconds - seconds) <= bar_seconds(c) and c.seconds >= 8.0 - 1e-6
        assert c.sections[-1][0] == "outro"
    long = piece(9, "synth_pop_a", 240.0)
    assert {"verse", "chorus", "bridge"} <= {s[0] for s in long.sections}


def test_bad_arguments_are_input_errors() -> None:
    for seconds in (7.9, 601.0, float("nan"), float("inf")):
        with pytest.raises(InputError, match="8 to 600 seconds"):
            compose(1, "synth_pop_a", seconds=seconds)
    with pytest.raises(InputError, match="synth_pop_a"):
        compose(1, "no_such_style")
    with pytest.raises(InputError, match="seed"):
        compose(-1)
