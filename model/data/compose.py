"""Procedurally composed pieces for the synthetic training set (issue 10, ``segue data synth``).

``compose(seed, style, seconds=...)`` writes one piece as MIDI: a key and mode, a song form in whole bars
(intro, verse, chorus, bridge, solo, breakdown, outro), one diatonic chord progression per section name
(voice-led voicings and inversions), a tempo and meter from the style (some styles change tempo for their
last section), drum grooves with fills and crashes at section changes, a bass line on the chord roots,
comping, pads and arpeggios, a lead melody built from repeated and varied phrases, and, for styles
with vocals, a sung line of one word per note. Programs, mix levels, pans, voicings and humanised velocity
and micro-timing are drawn from the seed; the same (seed, style, seconds) always gives the same piece.
Pure: no files, no audio, no global random state. The styles are in ``model.data.styles``.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import pretty_midi

from common.errors import InputError
from model.data import lyrics, melody, parts
from model.data.parts import Note, Plan, Section, Span
from model.data.styles import MODES, STYLES, Style

STEM_GROUPS = ("drums", "bass", "keys", "strings", "leads", "vocals")
NOTE_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
MIN_SECONDS, MAX_SECONDS = 8.0, 600.0
RESOLUTION = 480


@dataclass(frozen=True)
class Word:
    """One sung word of the vocal line."""

    text: str
    start_s: float
    end_s: float
    pitch: int  # MIDI pitch the word is sung on (its first note)


@dataclass(frozen=True)
class Chord:
    """One chord of the progression: ``pitch_classes`` root first; ``bass`` the class of its lowest note."""

    name: str
    root: int
    bass: int
    pitch_classes: tuple[int, ...]
    start_s: float
    end_s: float


@dataclass(frozen=True)
class Composition:
    midi: pretty_midi.PrettyMIDI  # every part; drums on is_drum instruments
    groups: dict[str, tuple[int, ...]]  # stem group -> indices into midi.instruments (absent: no part)
    artist: str  # the style's name
    genre: str
    bpm: float  # the starting tempo, quarter notes per minute
    time_signature: tuple[int, int]
    key: str  # e.g. "A minor", "D dorian"
    sections: tuple[tuple[str, float, float], ...]  # (name, start_s, end_s)
    lyrics: str  # the vocal line, one text line per phrase ("" without vocals)
    words: tuple[Word, ...]
    seconds: float  # length of the piece
    chords: tuple[Chord, ...] = ()  # the progression as played, for labels and checks


def styles() -> tuple[str, ...]:
    """Every style (artist) name."""
    return tuple(STYLES)


def scale_pitch_classes(key: str) -> frozenset[int]:
    """The pitch classes of a ``Composition.key`` such as ``"A minor"``."""
    tonic, mode = key.split(" ")
    return frozenset((NOTE_NAMES.index(tonic) + i) % 12 for i in MODES[mode])


def _rng(seed: int, tag: str) -> np.random.Generator:
    return np.random.default_rng([seed, zlib.crc32(tag.encode())])


def _chord_name(pcs: tuple[int, ...], bass: int) -> str:
    iv = [(p - pcs[0]) % 12 for p in pcs]
    triad = {(4, 7): "", (3, 7): "m", (3, 6): "dim", (4, 8): "aug"}.get((iv[1], iv[2]), "")
    name = NOTE_NAMES[pcs[0]] + triad
    if len(iv) >= 4:
        name = NOTE_NAMES[pcs[0]] + {("", 11): "maj7", ("", 10): "7", ("m", 10): "m7", ("m", 11): "m(maj7)",
                                     ("dim", 10): "m7b5", ("dim", 9): "dim7"}.get((triad, iv[3]), triad + "7")  # fmt: skip
    if len(iv) >= 5:
        quality = name[len(NOTE_NAMES[pcs[0]]):]
        name = NOTE_NAMES[pcs[0]] + {"maj7": "maj9", "7": "9", "m7": "m9"}.get(quality, quality + "(add9)")
    return name + ("" if bass == pcs[0] else "/" + NOTE_NAMES[bass])


def _form(style: Style, rng: np.random.Generator, seconds: float, bar_s: float, last_bar_s: float) -> list[tuple[str, int]]:
    """Sections in whole bars ending as near ``seconds`` as whole bars allow (at least two sections)."""
    form = list(style.forms[int(rng.integers(len(style.forms)))])
    n = max(2, int(round(seconds / bar_s)))
    filler = 0
    while sum(b for _, b in form) + 4 <= n:
        name, bars = style.fillers[filler % len(style.fillers)]
        form.insert(len(form) - 1, (name, min(bars, n - sum(b for _, b in form))))
        filler += 1
    while sum(b for _, b in form) > n:
        if len(form) > 4 or (len(form) > 2 and max(b for _, b in form) <= 2):
            del form[-2]
        else:
            i = max(range(len(form)), key=lambda k: (form[k][1], -k))
            form[i] = (form[i][0], max(1, form[i][1] // 2))
    before = sum(b for _, b in form[:-1]) * bar_s
    last = max(1, int(round((seconds - before) / last_bar_s)))
    while before + last * last_bar_s < MIN_SECONDS - 1e-9:
        last += 1
    form[-1] = (form[-1][0], last)
    return form


def _harmony(style: Style, rng: np.random.Generator, tonic: int, mode: tuple[int, ...], sections: list[Section]) -> list[Span]:
    chosen: dict[str, tuple[tuple[int, int, int], ...]] = {}  # per section name: (degree, size, inversion)
    spans: list[Span] = []
    chord_q = style.bars_per_chord * sections[0].bar_q
    for sec in sections:
        if sec.name not in chosen:
            prog = style.progressions[int(rng.integers(len(style.progressions)))]
            chosen[sec.name] = tuple(
                (d, int(rng.choice(style.chord_sizes)), int(rng.choice((1, 2))) if i and rng.random() < style.inversions else 0)
                for i, d in enumerate(prog)
            )
        prog_i = chosen[sec.name]
        count = max(1, math.ceil(sec.bars * sec.bar_q / chord_q - 1e-9))
        for i in range(count):
            degree, size, inv = prog_i[i % len(prog_i)]
            if sec is sections[-1] and i == count - 1:
                degree, inv = 0, 0  # the piece ends on the tonic
            elif sec is sections[-1] and i == count - 2:
                degree, inv = 4, 0  # after the dominant
            pcs = tuple((tonic + mode[(degree + 2 * k) % 7]) % 12 for k in range(size))
            if size == 5 and (pcs[4] - pcs[0]) % 12 == 1:
                pcs = pcs[:4]  # no flat ninths
            start = sec.start + i * chord_q
            spans.append(Span(start, min(start + chord_q, sec.end), degree, pcs, pcs[inv]))
    return spans


def _time(q: float | np.ndarray, bpm: float, change_q: float, bpm2: float) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return np.where(q < change_q, q * 60.0 / bpm, change_q * 60.0 / bpm + (q - change_q) * 60.0 / bpm2)


def _swing(q: float, style: Style) -> float:
    unit = style.swing_unit
    pos = q / unit
    if style.swing and abs(pos - round(pos)) < 1e-6 and int(round(pos)) % 2 == 1:
        return q + style.swing * unit
    return q


def compose(seed: int, style: str | None = None, *, seconds: float = 30.0) -> Composition:
    """One piece of ``style`` (``None``: a style drawn from the seed) about ``seconds`` long."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InputError(f"seed {seed!r}: give a whole number >= 0")
    seconds = float(seconds)
    if not (math.isfinite(seconds) and MIN_SECONDS <= seconds <= MAX_SECONDS):
        raise InputError(f"length {seconds} s: give {MIN_SECONDS:g} to {MAX_SECONDS:g} seconds")
    seed = int(seed)
    if style is None:
        style = styles()[int(_rng(seed, "style").integers(len(STYLES)))]
    if style not in STYLES:
        raise InputError(f"unknown style {style!r}: the styles are {', '.join(styles())}")
    st = STYLES[style]
    rng = _rng(seed, f"{style}:piece")
    tonic = int(rng.integers(12))
    mode_name = str(st.modes[int(rng.integers(len(st.modes)))])
    mode = MODES[mode_name]
    bpm = float(int(rng.integers(int(st.tempo[0]), int(st.tempo[1]) + 1)))
    bpm2 = round(bpm * st.tempo_change, 1)
    bar_q = st.meter[0] * 4.0 / st.meter[1]
    form = _form(st, rng, seconds, bar_q * 60.0 / bpm, bar_q * 60.0 / bpm2)
    sections, q = [], 0.0
    for name, bars in form:
        sections.append(Section(name, q, bars, bar_q))
        q += bars * bar_q
    total_q, change_q = q, (sections[-1].start if bpm2 != bpm else q)
    spans = _harmony(st, _rng(seed, f"{style}:harmony"), tonic, mode, sections)
    plan = Plan(st, tonic, mode, bar_q, bpm, tuple(sections), tuple(spans))
    end_s = float(_time(total_q, bpm, change_q, bpm2))

    midi = pretty_midi.PrettyMIDI(resolution=RESOLUTION, initial_tempo=bpm)
    if bpm2 != bpm:
        midi._tick_scales.append((int(round(change_q * RESOLUTION)), 60.0 / (bpm2 * RESOLUTION)))
    midi._update_tick_to_time(int(round(total_q * RESOLUTION)) + RESOLUTION)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(st.meter[0], st.meter[1], 0.0))
    minor_family = mode_name in ("minor", "dorian")
    midi.key_signature_changes.append(pretty_midi.KeySignature(tonic + 12 * minor_family, 0.0))

    groups: dict[str, list[int]] = {}
    words: list[Word] = []
    lines: list[str] = []
    for i, part in enumerate(st.parts):
        prng = _rng(seed, f"{style}:part{i}:{part.role}")
        program = int(part.programs[int(prng.integers(len(part.programs)))])
        phrases: list[tuple[tuple, list[Note]]]
        if part.role == "drums":
            phrases = [((), parts.drums(plan, part, prng))]
        elif part.role == "bass":
            phrases = [((), parts.bass(plan, part, prng))]
        elif part.role in ("comp", "arp", "pad"):
            phrases = [((), parts.comp(plan, part, prng))]
        else:
            phrases = melody.melody(plan, part, prng, vocal=part.role == "vocal")
        inst = pretty_midi.Instrument(program, is_drum=part.role == "drums", name=f"{part.role} ({part.group})")
        level = int(prng.integers(part.level[0], part.level[1] + 1))
        pan = 64 if part.role in ("drums", "bass", "vocal") else int(prng.integers(34, 95))
        for number, value in ((7, level), (10, pan), (91, int(prng.integers(20, 70)))):
            inst.control_changes.append(pretty_midi.ControlChange(number, value, 0.0))
        sd = st.timing_ms / 1000.0
        sung: dict[tuple, tuple[str, ...]] = {}
        for key, notes in phrases:
            made = []
            for start_q, stop_q, pitch, vel in sorted(notes):
                a = float(_time(_swing(start_q, st), bpm, change_q, bpm2)) + float(np.clip(prng.normal(0, sd), -2.5 * sd, 2.5 * sd))
                b = float(_time(_swing(stop_q, st), bpm, change_q, bpm2))
                a = min(max(a, 0.0), end_s - 0.05)
                b = min(max(b, a + 0.05), end_s)
                v = int(np.clip(vel + prng.normal(0, 5), 1, 127))
                made.append(pretty_midi.Note(v, int(pitch), a, b))
            if part.role == "vocal":  # one word after another: no overlaps from the micro-timing
                for n, nxt in zip(made, made[1:]):
                    n.end = max(n.start + 0.05, min(n.end, nxt.start - 0.01))
            inst.notes.extend(made)
            if part.role == "vocal" and made:
                text = sung.get(key, ())
                if len(text) != len(made):
                    text = sung[key] = lyrics.line(prng, len(made))
                words.extend(Word(t, n.start, n.end, n.pitch) for t, n in zip(text, made))
                lines.append(" ".join(text))
        inst.notes.sort(key=lambda n: (n.start, n.pitch))
        groups.setdefault(part.group, []).append(len(midi.instruments))
        midi.instruments.append(inst)

    def seconds_of(qv: float) -> float:
        return round(float(_time(qv, bpm, change_q, bpm2)), 6)

    return Composition(
        midi=midi,
        groups={g: tuple(groups[g]) for g in STEM_GROUPS if g in groups},
        artist=st.name,
        genre=st.genre,
        bpm=bpm,
        time_signature=st.meter,
        key=f"{NOTE_NAMES[tonic]} {mode_name}",
        sections=tuple((s.name, seconds_of(s.start), seconds_of(s.end)) for s in sections),
        lyrics="\n".join(lines),
        words=tuple(words),
        seconds=round(end_s, 6),
        chords=tuple(Chord(_chord_name(c.pcs, c.bass), c.pcs[0], c.bass, c.pcs, seconds_of(c.start), seconds_of(c.end)) for c in spans),
    )
