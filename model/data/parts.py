"""The parts of a composed piece, in quarter notes: drums, bass, comping, pads and melodies.

Each generator reads a ``Plan`` (key, sections, chords) and one part's random generator, and returns notes
``(start_q, end_q, pitch, velocity)`` on the grid; ``model.data.compose`` swings, humanises and times them.
Melodies are in ``model.data.melody``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from model.data.styles import SECTION_ENERGY, Part, Style

Note = tuple[float, float, int, int]
STEP_Q = 0.25  # patterns are in sixteenth notes
TOMS = (50, 48, 47, 45, 43, 41)


@dataclass(frozen=True)
class Span:
    """A chord in quarter notes: ``pcs`` root first, stacked thirds; ``bass`` the lowest note's class."""

    start: float
    end: float
    degree: int
    pcs: tuple[int, ...]
    bass: int


@dataclass(frozen=True)
class Section:
    name: str
    start: float  # quarter notes
    bars: int
    bar_q: float

    @property
    def end(self) -> float:
        return self.start + self.bars * self.bar_q

    @property
    def energy(self) -> float:
        return SECTION_ENERGY.get(self.name, 0.7)


@dataclass(frozen=True)
class Plan:
    style: Style
    tonic: int
    mode: tuple[int, ...]
    bar_q: float
    bpm: float
    sections: tuple[Section, ...]
    chords: tuple[Span, ...]

    @property
    def bar_steps(self) -> int:
        return int(round(self.bar_q / STEP_Q))

    @property
    def beat_steps(self) -> int:
        return 6 if self.style.meter == (6, 8) else 4

    @cached_property
    def _starts(self) -> list[float]:
        return [c.start for c in self.chords]

    @cached_property
    def _start_steps(self) -> frozenset[int]:
        return frozenset(int(round(c.start / STEP_Q)) for c in self.chords)

    def _chord_index(self, q: float) -> int:
        return max(0, min(bisect.bisect_right(self._starts, q + 1e-6) - 1, len(self.chords) - 1))

    def chord_at(self, q: float) -> Span:
        return self.chords[self._chord_index(q)]

    def next_chord(self, q: float) -> Span | None:
        i = self._chord_index(q) + 1
        return self.chords[i] if i < len(self.chords) else None

    def is_chord_start(self, q: float) -> bool:
        return abs(q / STEP_Q - round(q / STEP_Q)) < 1e-6 and int(round(q / STEP_Q)) in self._start_steps

    def in_scale(self, pitch: int) -> bool:
        return (pitch - self.tonic) % 12 in self.mode


def plays(style: Style, part: Part, section: Section) -> bool:
    """Whether ``part`` plays in ``section`` (the arrangement)."""
    name, role = section.name, part.role
    if role in ("drums", "bass"):
        return name != "breakdown"
    if role == "pad":
        return part.always or section.energy >= 0.75 or name in ("breakdown", "outro")
    if role == "vocal":
        return name in ("verse", "chorus", "bridge")
    if role == "lead":
        return name in ("intro", "solo", "outro") if style.vocals else name not in ("intro", "breakdown")
    return True


def variant(patterns: tuple, section: Section):
    return patterns[min(len(patterns) - 1, int(section.energy >= 0.9) * (len(patterns) - 1))]


def velocity(part: Part, section: Section, factor: float = 1.0) -> int:
    return int(np.clip(part.velocity * (0.7 + 0.3 * section.energy) * factor, 1, 127))


def drums(plan: Plan, part: Part, rng: np.random.Generator) -> list[Note]:
    notes: list[Note] = []
    levels = {"x": 1.1, "o": 0.9, "g": 0.45}
    n = plan.bar_steps
    secs = plan.sections
    for si, sec in enumerate(secs):
        if not plays(plan.style, part, sec):
            continue
        groove = variant(plan.style.grooves, sec)
        nxt = secs[si + 1] if si + 1 < len(secs) else None
        for b in range(sec.bars):
            q0 = sec.start + b * plan.bar_q
            fill = 0
            if nxt is not None and b == sec.bars - 1:
                fill = (n // 4) * (2 if nxt.energy > sec.energy else 1)
            for key, pattern in groove.items():
                for step, ch in enumerate(pattern[: n - fill]):
                    if ch != ".":
                        notes.append((q0 + step * STEP_Q, q0 + (step + 1) * STEP_Q, key, velocity(part, sec, levels[ch])))
            if fill:
                kind = int(rng.integers(3))
                for i, step in enumerate(range(n - fill, n)):
                    key = (38, TOMS[i * len(TOMS) // fill], 38 if i % 2 else TOMS[(i // 2) % len(TOMS)])[kind]
                    vel = velocity(part, sec, 0.7 + 0.45 * i / fill)
                    notes.append((q0 + step * STEP_Q, q0 + (step + 1) * STEP_Q, key, vel))
            if b == 0 and si > 0:
                notes.append((q0, q0 + 1.0, 49, velocity(part, sec, 1.05)))
                notes.append((q0, q0 + STEP_Q, 36, velocity(part, sec, 1.0)))
    return notes


def _events(plan: Plan, pattern: str, q0: float) -> list[tuple[float, float, str]]:
    """A bar's pattern as (start_q, end_q, symbol): a note lasts to the next onset or rest (``_``), and a
    note held over a chord change is struck again on the new chord."""
    out: list[tuple[float, float, str]] = []
    cur: list | None = None
    for step, ch in enumerate(pattern):
        q = q0 + step * STEP_Q
        if ch in ".-":
            if cur is not None and plan.is_chord_start(q):
                out.append((cur[0], q, cur[1]))
                cur = [q, cur[1]]
            continue
        if cur is not None:
            out.append((cur[0], q, cur[1]))
            cur = None
        if ch != "_":
            cur = [q, ch]
    if cur is not None:
        out.append((cur[0], q0 + len(pattern) * STEP_Q, cur[1]))
    return out


def _nearest(pc: int, ref: float, lo: int, hi: int) -> int:
    cands = [p for p in range(lo, hi + 1) if p % 12 == pc % 12]
    return min(cands, key=lambda p: (abs(p - ref), p)) if cands else lo + (pc - lo) % 12


def _scale_step(plan: Plan, pitch: int, direction: int) -> int:
    p = pitch + direction
    while not plan.in_scale(p):
        p += direction
    return p


def bass(plan: Plan, part: Part, rng: np.random.Generator) -> list[Note]:
    lo, hi = part.register
    notes: list[Note] = []
    prev = float(lo + 9)
    for sec in plan.sections:
        if not plays(plan.style, part, sec):
            continue
        pattern = variant(plan.style.bass, sec)
        for b in range(sec.bars):
            for start, end, ch in _events(plan, pattern, sec.start + b * plan.bar_q):
                chord, nxt = plan.chord_at(start), plan.next_chord(start)
                if ch in "wa" and (nxt is None or plan.is_chord_start(start)):
                    ch = "R"
                root = _nearest(chord.bass, (prev + lo + 9) / 2, lo, hi)
                if ch == "R":
                    pitch = root
                elif ch in "35x":
                    pc = chord.pcs[{"3": 1, "5": 2}.get(ch, int(rng.integers(len(chord.pcs))))]
                    pitch = _nearest(pc, prev, lo, hi)
                elif ch == "8":
                    pitch = root + 12 if root + 12 <= hi else root
                else:
                    assert nxt is not None
                    target = _nearest(nxt.bass, prev, lo, hi)
                    if ch == "w":
                        pitch = _scale_step(plan, int(prev), 1 if target >= prev else -1)
                    else:
                        pitch = _scale_step(plan, target, 1 if rng.random() < 0.5 else -1)
                    pitch = int(np.clip(pitch, lo, hi))
                notes.append((start, start + (end - start) * 0.9, pitch, velocity(part, sec, 0.9 + 0.2 * rng.random())))
                prev = float(pitch)
    return notes


def voicing(pcs: tuple[int, ...], kind: str, register: tuple[int, int], prev: tuple[int, ...] | None) -> tuple[int, ...]:
    """The chord's pitches in ``register``: the inversion closest to ``prev`` (voice leading)."""
    lo, hi = register
    if kind == "power":
        r = _nearest(pcs[0], lo + 6, lo, hi - 12)
        return (r, r + 7, r + 12)
    if kind == "rootless" and len(pcs) >= 4:
        pcs = pcs[1:]
    cands = []
    for rot in range(len(pcs)):
        seq = pcs[rot:] + pcs[:rot]
        for base in range(lo, hi + 1):
            if base % 12 != seq[0] % 12:
                continue
            v = [base]
            for pc in seq[1:]:
                v.append(v[-1] + (pc - v[-1]) % 12 or 12)
            if kind == "open" and len(v) >= 3 and v[-2] - 12 >= lo:
                v = sorted([v[-2] - 12] + v[:-2] + v[-1:])
            if v[-1] <= hi:
                cands.append(tuple(v))
    if not cands:
        return tuple(_nearest(pc, (lo + hi) / 2, lo, hi) for pc in pcs)

    def cost(v: tuple[int, ...]) -> float:
        if prev is None or len(prev) != len(v):
            return abs(float(np.mean(v)) - (lo + hi) / 2)
        return float(sum(abs(a - b) for a, b in zip(v, prev)))

    return min(cands, key=lambda v: (cost(v), v))


def comp(plan: Plan, part: Part, rng: np.random.Generator) -> list[Note]:
    """Comping (``comp``: the style's comp patterns), arpeggios (``arp``) and sustained chords (``pad``)."""
    notes: list[Note] = []
    voicings: dict[float, tuple[int, ...]] = {}
    prev = None
    for c in plan.chords:
        prev = voicings[c.start] = voicing(c.pcs, part.voicing, part.register, prev)
    strum_q = part.strum_ms / 1000.0 * plan.bpm / 60.0
    for sec in plan.sections:
        if not plays(plan.style, part, sec):
            continue
        if part.role == "pad":
            for c in plan.chords:
                a, b = max(c.start, sec.start), min(c.end, sec.end)
                if b > a:
                    vel = velocity(part, sec, 0.85 + 0.25 * rng.random())
                    notes.extend((a, b, p, vel) for p in voicings[c.start])
            continue
        patterns = variant(plan.style.comp, sec) if part.role == "comp" else plan.style.arp
        for b in range(sec.bars):
            q0 = sec.start + b * plan.bar_q
            for start, end, ch in _events(plan, patterns, q0):
                chord = plan.chord_at(start)
                v = voicings[chord.start]
                if ch == "x":
                    up = int(round((start - q0) / 0.5)) % 2 == 1
                    order = sorted(v, reverse=up)
                    vel = velocity(part, sec, (0.8 if up else 1.0) + 0.15 * rng.random())
                    for i, p in enumerate(order):
                        notes.append((start + i * strum_q, end - 0.05 * (end - start), p, vel))
                else:
                    ring = min(chord.end, q0 + plan.bar_q) if part.role == "arp" else end
                    notes.append((start, max(end, ring), v[int(ch) % len(v)], velocity(part, sec, 0.85 + 0.2 * rng.random())))
    return notes
