"""Deterministic little band synthesiser: the source of segue's bundled demo clip and of the
synthetic audio the bundled demo VQ-VAE was trained on (no third-party recordings are shipped).

    python scripts/demo_synth.py model/assets/demo_clip.flac --seconds 12 --seed 7
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

import numpy as np

SR = 44100
# chord roots (semitones above A2) and qualities for a few common progressions
PROGRESSIONS = [
    [(0, "m"), (8, ""), (3, ""), (10, "")],  # Am F C G
    [(3, ""), (10, ""), (0, "m"), (8, "")],  # C G Am F
    [(5, "m"), (10, ""), (3, ""), (3, "")],  # Dm G C C
    [(7, ""), (2, ""), (4, "m"), (0, "")],  # E B C#m A
]


@dataclass(frozen=True)
class Song:
    bpm: float
    progression: list[tuple[int, str]]
    transpose: int
    pluck_brightness: float
    swing: float


def _midi_hz(semitones_above_a2: float) -> float:
    return 110.0 * 2.0 ** (semitones_above_a2 / 12.0)


def _pluck(freq: float, n: int, brightness: float, rng: np.random.Generator) -> np.ndarray:
    """Karplus-Strong plucked string."""
    period = max(2, int(SR / freq))
    buf = rng.uniform(-1, 1, period)
    out = np.empty(n)
    decay = 0.996 - 0.004 * (1 - brightness)
    for i in range(n):
        out[i] = buf[i % period]
        j = (i + 1) % period
        buf[i % period] = decay * 0.5 * (buf[i % period] + buf[j])
    return out


def _env(n: int, attack: float, decay: float) -> np.ndarray:
    t = np.arange(n) / SR
    return np.minimum(1.0, t / max(attack, 1e-4)) * np.exp(-t / decay)


def _add(out: np.ndarray, start: int, x: np.ndarray) -> None:
    """out[start:start+len(x)] += x, truncated at the end of ``out``."""
    end = min(out.size, start + x.size)
    if end > start:
        out[start:end] += x[: end - start]


def _kick(n: int) -> np.ndarray:
    t = np.arange(n) / SR
    freq = 45 + 90 * np.exp(-t * 30)
    return np.sin(2 * np.pi * np.cumsum(freq) / SR) * np.exp(-t * 9)


def _noise_hit(n: int, rng: np.random.Generator, decay: float, hp: bool) -> np.ndarray:
    x = rng.standard_normal(n)
    if hp:
        x = np.diff(x, prepend=0.0)
    return x * _env(n, 0.0005, decay)


def render(song: Song, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    out = np.zeros(n + SR)
    beat = 60.0 / song.bpm
    n_beats = int(seconds / beat) + 1
    for b in range(n_beats):
        start = int(b * beat * SR)
        root, quality = song.progression[(b // 4) % len(song.progression)]
        root += song.transpose
        third = 3 if quality == "m" else 4
        chord = [root + 12, root + 12 + third, root + 19, root + 24]
        # drums
        if b % 2 == 0:
            k = _kick(int(0.4 * SR))
            _add(out, start, 0.8 * k)
        else:
            s = _noise_hit(int(0.25 * SR), rng, 0.08, hp=False) * 0.35
            s += 0.3 * np.sin(2 * np.pi * 190 * np.arange(s.size) / SR) * _env(s.size, 0.001, 0.06)
            _add(out, start, s)
        for half in range(2):
            off = start + int((half * (0.5 + song.swing)) * beat * SR)
            h = _noise_hit(int(0.05 * SR), rng, 0.012, hp=True) * 0.05
            _add(out, off, h)
        # bass on the beat
        bass_n = int(beat * SR * 0.9)
        t = np.arange(bass_n) / SR
        f = _midi_hz(root - 12)
        bass = (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(4 * np.pi * f * t)) * _env(bass_n, 0.005, 0.35)
        _add(out, start, 0.35 * bass)
        # arpeggiated plucks, two per beat
        for half in range(2):
            note = chord[(2 * b + half) % len(chord)]
            p_start = start + int(half * 0.5 * beat * SR)
            p = _pluck(_midi_hz(note), int(0.9 * SR), song.pluck_brightness, rng)
            _add(out, p_start, 0.25 * p)
    out = out[:n]
    out = np.tanh(1.2 * out) / np.tanh(1.2)
    return (0.8 * out / max(1e-6, np.abs(out).max())).astype(np.float32)


def random_song(rng: np.random.Generator) -> Song:
    return Song(
        bpm=float(rng.uniform(84, 140)),
        progression=PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))],
        transpose=int(rng.integers(-5, 6)),
        pluck_brightness=float(rng.uniform(0.2, 1.0)),
        swing=float(rng.uniform(0.0, 0.12)),
    )


def demo_song() -> Song:
    return Song(bpm=112.0, progression=PROGRESSIONS[0], transpose=0, pluck_brightness=0.7, swing=0.05)


def main() -> None:
    import soundfile as sf

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("out")
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    audio = render(demo_song(), args.seconds, args.seed)
    sf.write(args.out, audio, SR, subtype="PCM_16")


if __name__ == "__main__":
    main()
