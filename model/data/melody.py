"""Melodies of a composed piece: the lead's phrases and the sung line's (one note per word)."""

from __future__ import annotations

import numpy as np

from model.data.parts import STEP_Q, Note, Part, Plan, plays, velocity

STEPS = np.array([-4, -3, -2, -1, 0, 1, 2, 3, 4])
STEP_P = np.array([0.02, 0.04, 0.12, 0.28, 0.08, 0.28, 0.12, 0.04, 0.02])


def _rhythm(rng: np.random.Generator, length: int, grid: int, density: float, beat: int, tail: int) -> list[tuple[int, int]]:
    """Onsets and lengths (steps) of one phrase; the phrase ends ``tail`` steps early (a breath)."""
    slots = list(range(0, max(grid, length - tail), grid))
    onsets = [0] + [s for s in slots[1:] if rng.random() < density * (1.25 if s % beat == 0 else 0.8)]
    ends = onsets[1:] + [min(length - tail, onsets[-1] + 2 * beat) if onsets[-1] + grid <= length - tail else length]
    return [(s, max(1, e - s)) for s, e in zip(onsets, ends)]


def _contour(rng: np.random.Generator, n: int, start: int, span: int) -> list[int]:
    out, cur = [], start
    for _ in range(n):
        out.append(cur)
        cur += int(rng.choice(STEPS, p=STEP_P))
        if abs(cur) > span:
            cur -= 2 * int(np.sign(cur))
    return out


def melody(plan: Plan, part: Part, rng: np.random.Generator, *, vocal: bool) -> list[tuple[tuple, list[Note]]]:
    """Phrases ``(key, notes)`` of a melody: per section name a phrase A, a variant A2 and a contrasting
    B, played A A2 B A; strong beats and phrase ends land on chord tones. ``key`` names the phrase's line
    of lyrics (choruses repeat theirs, other sections get new ones)."""
    style, lo, hi = plan.style, part.register[0], part.register[1]
    beat = plan.beat_steps
    grid, density = (2, 0.5) if vocal else (style.lead_grid, style.lead_density)
    phrase_bars = 2 if plan.bar_q >= 4 else 4
    length = phrase_bars * plan.bar_steps
    index = [p for p in range(lo, hi + 1) if plan.in_scale(p)]
    centre, span = len(index) // 2, len(index) // 2 - 1
    material: dict[str, dict[str, list[tuple[int, int, int]]]] = {}
    counts: dict[str, int] = {}
    out: list[tuple[tuple, list[Note]]] = []
    for sec in plan.sections:
        if not plays(style, part, sec):
            continue
        if sec.name not in material:
            ra = _rhythm(rng, length, grid, density, beat, beat if vocal else grid)
            rb = _rhythm(rng, length, grid, density, beat, beat if vocal else grid)
            ca = _contour(rng, len(ra), 0, span)
            cut = max(1, 2 * len(ra) // 3)
            a2 = ca[:cut] + _contour(rng, len(ra) - cut, ca[cut - 1], span)
            material[sec.name] = {"A": [(s, d, c) for (s, d), c in zip(ra, ca)],
                                  "A2": [(s, d, c) for (s, d), c in zip(ra, a2)],
                                  "B": [(s, d, c) for (s, d), c in zip(rb, _contour(rng, len(rb), 2, span))]}  # fmt: skip
        occurrence = counts[sec.name] = counts.get(sec.name, -1) + 1
        for k in range(-(-sec.bars // phrase_bars)):
            label = ("A", "A2", "B", "A")[k % 4]
            q0 = sec.start + k * phrase_bars * plan.bar_q
            notes: list[Note] = []
            phrase = material[sec.name][label]
            for i, (s, d, c) in enumerate(phrase):
                start, end = q0 + s * STEP_Q, min(q0 + (s + d) * STEP_Q, sec.end)
                if start >= sec.end - 1e-6:
                    break
                j = int(np.clip(centre + c, 0, len(index) - 1))
                if s % beat == 0 or i == len(phrase) - 1:
                    pcs = plan.chord_at(start).pcs
                    j = min((x for x in range(len(index)) if index[x] % 12 in pcs), key=lambda x: (abs(x - j), x))
                vel = velocity(part, sec, (1.0 if s % beat == 0 else 0.88) + 0.1 * rng.random())
                notes.append((start, start + (end - start) * (0.92 if vocal else 0.85), index[j], vel))
            key = (sec.name, 0 if sec.name == "chorus" else occurrence, k)
            if notes:
                out.append((key, notes))
    return out
