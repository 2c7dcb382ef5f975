"""Hand-built compositions for the renderer and ``segue data synth`` tests: a few notes, a few seconds.

They have the fields of ``model.data.compose.Composition`` (the renderer reads nothing else), so the
tests do not depend on what the procedural composer writes. ``tiny_compose`` is a module-level function
so a spawned worker process can unpickle it (``synth_dataset(..., jobs=2, composer=tiny_compose)``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi
import pytest

SOUNDFONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
TINY_STYLES = ("band", "drums")


def require_render_tools() -> None:
    """Skip, saying what to install, when FluidSynth, FluidR3_GM or espeak-ng is missing (scripts/system-deps.sh)."""
    missing = [name for name, ok in (("fluidsynth", shutil.which("fluidsynth")), ("fluid-soundfont-gm", SOUNDFONT.is_file()),
                                     ("espeak-ng", shutil.which("espeak-ng"))) if not ok]  # fmt: skip
    if missing:
        pytest.skip(f"rendering needs {' '.join(missing)} (apt-get install {' '.join(missing)}; scripts/system-deps.sh)")


@dataclass(frozen=True)
class Word:
    text: str
    start_s: float
    end_s: float
    pitch: int


@dataclass(frozen=True)
class Composition:
    midi: Any
    groups: dict[str, tuple[int, ...]]
    artist: str
    genre: str
    bpm: float
    time_signature: tuple[int, int]
    key: str
    sections: tuple[tuple[str, float, float], ...]
    lyrics: str
    words: tuple[Word, ...]
    seconds: float


def piece(parts: dict[str, list[tuple[int, float, float]]], *, seconds: float, words: tuple[Word, ...] = (),
          programs: dict[str, int] | None = None, bpm: float = 120.0) -> Composition:  # fmt: skip
    """A composition with one instrument per group in ``parts`` (group -> [(pitch, start, end)])."""
    progs = {"drums": 0, "bass": 33, "keys": 0, "strings": 48, "leads": 80, "vocals": 53, **(programs or {})}
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0.0))
    pm.key_signature_changes.append(pretty_midi.KeySignature(0, 0.0))
    groups: dict[str, tuple[int, ...]] = {}
    for group, notes in parts.items():
        inst = pretty_midi.Instrument(progs[group], is_drum=group == "drums", name=group)
        inst.notes = [pretty_midi.Note(100, p, a, b) for p, a, b in notes]
        groups[group] = (len(pm.instruments),)
        pm.instruments.append(inst)
    lyrics = " ".join(w.text for w in words)
    return Composition(pm, groups, "tester", "test", bpm, (4, 4), "C major", (("verse", 0.0, seconds),), lyrics, words, seconds)


_WORDS = ("hello", "sing", "bright", "day", "moon", "home")


def tiny_compose(seed: int, style: str | None = None, *, seconds: float = 3.0) -> Composition:
    """A seeded few-note piece: style 'band' has drums, bass, keys and two sung words; 'drums' only drums."""
    rng = np.random.default_rng(seed)
    beats = np.arange(0.0, seconds - 0.2, 0.5)
    drums = [(36 if i % 2 == 0 else 38, float(t), float(t) + 0.1) for i, t in enumerate(beats)]
    if style == "drums":
        return piece({"drums": drums}, seconds=seconds)
    root = int(rng.integers(40, 47))
    half = seconds / 2
    words = (
        Word(str(rng.choice(_WORDS)), 0.2, round(half - 0.1, 3), root + 24),
        Word(str(rng.choice(_WORDS)), round(half + 0.1, 3), round(seconds - 0.2, 3), root + 28),
    )
    parts = {
        "drums": drums,
        "bass": [(root, 0.0, half), (root + 7, half, seconds - 0.1)],
        "keys": [(root + 24 + d, 0.0, seconds - 0.1) for d in (0, 4, 7)],
        "vocals": [(w.pitch, w.start_s, w.end_s) for w in words],
    }
    return piece(parts, seconds=seconds, words=words)
