"""A sung voice from lyrics: espeak-ng speaks each word, TD-PSOLA holds it on the note's pitch and length.

Singing synthesis is out of reach here, so this is the honest simple thing: for each ``Word``
(text, start, end, MIDI pitch) espeak-ng synthesises the word as speech (``espeak-ng --stdout``),
then time-domain PSOLA (pitch-synchronous overlap-add, in numpy) re-lays its voiced periods at the
note's period, which flattens espeak's speech intonation onto one steady pitch while keeping the
formants (the vowel colour), and stretches the voiced part to fill ``[start_s, end_s]`` (consonants
keep their spoken length when they fit, so a long note is a long vowel, not a slow-motion word).
The result is intelligible robotic singing: words are recognisable, every note is perfectly in
tune and without vibrato, and the timbre is espeak's formant synthesiser, not a human voice.

Between two voiced marks the grain is a blend of both (weighted by position), so a vowel stretched to
a long note glides from one spoken period to the next instead of repeating one and jumping (measured:
harmonic-to-noise ratio about 16 dB without the blend and the mark alignment, about 19 dB with them).

Pitch analysis is YIN (de Cheveigne & Kawahara 2002) on 40 ms frames every 5 ms; the same estimator
is what the tests use to check that the stem follows the melody.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass

import numpy as np
import soxr

from common.errors import InputError

ESPEAK = "espeak-ng"
ESPEAK_RATE = 22050  # espeak-ng's own output rate (its --stdout WAV header says so; checked on read)
INSTALL_HINT = "apt-get install espeak-ng"
HOP_S = 0.005
FRAME_S = 0.04
FMIN = 60.0
FMAX = 1000.0
UNVOICED_PERIOD_S = 0.01  # grain spacing in unvoiced parts (kept, not re-pitched)
FADE_S = 0.008  # fade at each word's edges so words never click in or out
VOICE_RMS = 0.06  # a sung word's RMS before the mix is normalised: a FluidSynth bass or lead note at -g 0.5 is ~0.03-0.07
SPEED_WPM = 140


class VoiceUnavailable(InputError):
    """espeak-ng is not installed (or does not run)."""


@dataclass(frozen=True)
class Pitch:
    """Frame-wise f0: ``hz[i]`` at ``times_s[i]`` (0 where unvoiced); ``aperiodicity`` is YIN's d' minimum."""

    times_s: np.ndarray
    hz: np.ndarray
    aperiodicity: np.ndarray


def midi_hz(pitch: float) -> float:
    return float(440.0 * 2.0 ** ((pitch - 69.0) / 12.0))


def estimate_f0(x: np.ndarray, sr: int, *, fmin: float = FMIN, fmax: float = FMAX, hop_s: float = HOP_S,
                frame_s: float = FRAME_S, threshold: float = 0.15, voicing: float = 0.35,
                silence_db: float = -45.0) -> Pitch:  # fmt: skip
    """YIN f0 of mono ``x``: frames centred every ``hop_s``; unvoiced (0) where d' stays above ``voicing``
    or the frame is ``silence_db`` below the loudest frame."""
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    tau_min = max(2, int(sr / fmax))
    tau_max = int(np.ceil(sr / fmin))
    w = int(frame_s * sr) - tau_max
    w = max(w, tau_max)
    hop = max(1, int(round(hop_s * sr)))
    length = w + tau_max + 1
    half = length // 2
    padded = np.concatenate([np.zeros(half), x, np.zeros(length)])
    n_frames = max(1, int(np.ceil(len(x) / hop)))
    starts = np.arange(n_frames) * hop
    frames = padded[starts[:, None] + np.arange(length)[None, :]]  # frame i is centred on sample i*hop
    nfft = 1 << int(np.ceil(np.log2(length + w)))
    spec_all = np.fft.rfft(frames, nfft, axis=1)
    spec_head = np.fft.rfft(frames[:, :w], nfft, axis=1)
    r = np.fft.irfft(np.conj(spec_head) * spec_all, nfft, axis=1)[:, : tau_max + 1]  # sum_j x_j x_{j+tau}, j < w
    sq = np.concatenate([np.zeros((n_frames, 1)), np.cumsum(frames**2, axis=1)], axis=1)
    e0 = sq[:, w]
    taus = np.arange(tau_max + 1)
    e_tau = sq[:, taus + w] - sq[:, taus]
    d = np.maximum(e0[:, None] + e_tau - 2.0 * r, 0.0)
    d[:, 0] = 0.0
    cum = np.cumsum(d[:, 1:], axis=1)
    dp = np.ones_like(d)
    with np.errstate(divide="ignore", invalid="ignore"):
        dp[:, 1:] = np.where(cum > 0, d[:, 1:] * taus[1:] / cum, 1.0)
    hz = np.zeros(n_frames)
    aper = np.ones(n_frames)
    energy = e0 / w
    loud = energy.max() if n_frames else 0.0
    floor = loud * 10.0 ** (silence_db / 10.0)
    for i in range(n_frames):
        if loud <= 0 or energy[i] <= floor:
            continue
        row = dp[i]
        below = np.nonzero(row[tau_min : tau_max] < threshold)[0]
        if below.size:
            t = int(below[0]) + tau_min
            while t + 1 < tau_max and row[t + 1] < row[t]:  # walk down to the dip's bottom
                t += 1
        else:
            t = int(np.argmin(row[tau_min:tau_max])) + tau_min
        aper[i] = row[t]
        if row[t] > voicing:
            continue
        a, b, c = row[t - 1], row[t], row[t + 1]
        den = a - 2 * b + c
        shift = 0.5 * (a - c) / den if den > 0 else 0.0
        hz[i] = sr / (t + float(np.clip(shift, -1, 1)))
    return Pitch(starts / sr, hz, aper)


def require_espeak() -> str:
    path = shutil.which(ESPEAK)
    if path is None:
        raise VoiceUnavailable(f"the vocal stem needs espeak-ng, which is not installed: {INSTALL_HINT}")
    return path


# espeak-ng 1.51's median speaking f0 (Hz) at -p 0, 25, 50, 75, 99, measured with estimate_f0 on "hello there"
_P_STEPS = (0.0, 25.0, 50.0, 75.0, 99.0)
_SPEAKING_HZ = {"en": (76.0, 86.0, 101.0, 129.0, 169.0), "en+f3": (165.0, 171.0, 202.0, 256.0, 328.0)}


def _voice_for(hz: float) -> tuple[str, int]:
    """espeak voice and -p (0-99) whose speaking pitch is nearest ``hz``, so PSOLA shifts as little as it can
    (a smaller shift keeps more of the voice; PSOLA still sets the exact pitch)."""
    voice = "en" if hz <= _SPEAKING_HZ["en"][-1] else "en+f3"
    return voice, int(round(float(np.interp(hz, _SPEAKING_HZ[voice], _P_STEPS))))


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    """``y`` cut or zero-padded to ``n`` samples."""
    if y.size >= n:
        return y[:n]
    return np.concatenate([y, np.zeros(n - y.size, dtype=y.dtype)])


def clean_word(text: str) -> str:
    """What espeak is asked to say: letters, digits and apostrophes (a syllable's hyphens and punctuation go)."""
    return "".join(ch if (ch.isalnum() or ch == "'") else " " for ch in text).strip()


@functools.lru_cache(maxsize=512)
def speak(text: str, voice: str, pitch: int, speed: int = SPEED_WPM) -> np.ndarray:
    """espeak-ng's speech for ``text`` (mono float32 at ESPEAK_RATE), leading and trailing silence trimmed."""
    import io

    import soundfile as sf

    exe = require_espeak()
    cmd = [exe, "--stdout", "--stdin", "-v", voice, "-p", str(pitch), "-s", str(speed)]
    try:
        proc = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=60, check=False)
    except OSError as exc:
        raise VoiceUnavailable(f"espeak-ng could not run ({exc}): {INSTALL_HINT}") from exc
    if proc.returncode != 0 or not proc.stdout:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise VoiceUnavailable(f"espeak-ng failed on {text!r} (exit {proc.returncode}: {err[-1] if err else 'no output'})")
    # espeak writes a streaming WAV header (sizes 0x7fffffff); libsndfile reads what is there
    data, rate = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    if rate != ESPEAK_RATE:
        data = soxr.resample(data, rate, ESPEAK_RATE, quality="VHQ")
    y = data[:, 0]
    return _trim(y, ESPEAK_RATE)


def _trim(y: np.ndarray, sr: int, db: float = -40.0) -> np.ndarray:
    hop = int(0.005 * sr)
    if y.size < hop:
        return y
    n = y.size // hop
    rms = np.sqrt(np.mean(y[: n * hop].reshape(n, hop) ** 2, axis=1))
    on = np.nonzero(rms > rms.max() * 10 ** (db / 20))[0]
    if on.size == 0:
        return y[:0]
    return y[on[0] * hop : min(y.size, (on[-1] + 1) * hop)]


def _marks(x: np.ndarray, sr: int, pitch: Pitch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Analysis pitch marks: in a voiced run, the first period's peak, then one mark per period, each shifted
    (up to a sixth of a period) to line up with the previous one, so neighbouring grains are in phase and
    can be blended; every 10 ms in unvoiced parts.

    Returns (positions, half-widths in samples, voiced flags)."""
    hop = pitch.times_s[1] - pitch.times_s[0] if pitch.times_s.size > 1 else HOP_S
    pos: list[int] = []
    per: list[int] = []
    voiced: list[bool] = []
    t = 0.0
    n = x.size
    unv = UNVOICED_PERIOD_S * sr
    while t < n:
        i = min(int(round(t / sr / hop)), pitch.hz.size - 1)
        f = pitch.hz[i]
        if f > 0:
            p = sr / f
            if not (voiced and voiced[-1]):  # a voiced run starts at its first period's peak, then steps by periods
                hi = int(min(n, t + p + 1))
                t = float(int(t) + int(np.argmax(x[int(t) : hi]))) if hi > int(t) else t
            m = int(round(t))
            if voiced and voiced[-1]:  # line the period up with the previous one (the best-correlated shift)
                m = _align(x, pos[-1], m, int(p))
                t = float(m)
            pos.append(m)
            per.append(max(2, int(round(p))))
            voiced.append(True)
            t += p
        else:
            pos.append(int(t))
            per.append(int(round(unv)))
            voiced.append(False)
            t += unv
    return np.array(pos), np.array(per), np.array(voiced, dtype=bool)


def _align(x: np.ndarray, prev: int, guess: int, period: int) -> int:
    """``guess`` moved by up to a sixth of a period to where its period best matches the one at ``prev``."""
    half = max(2, period // 2)
    reach = max(1, period // 6)
    if prev - half < 0 or guess + reach + half + 1 > x.size or guess - reach - half < 0:
        return guess
    ref = x[prev - half : prev + half + 1]
    window = x[guess - reach - half : guess + reach + half + 1]
    scores = np.correlate(window, ref, mode="valid")  # one score per shift -reach..reach
    best = guess - reach + int(np.argmax(scores))
    return best if best > prev else guess


def sing(speech: np.ndarray, sr: int, hz: float, out_len: int) -> np.ndarray:
    """TD-PSOLA: ``speech`` held at ``hz`` in its voiced parts and fitted to ``out_len`` samples."""
    out = np.zeros(out_len, dtype=np.float64)
    if out_len <= 0 or speech.size == 0:
        return out.astype(np.float32)
    x = speech.astype(np.float64)
    pitch = estimate_f0(x, sr)
    pos, per, voiced = _marks(x, sr, pitch)
    # time map: the unvoiced parts keep their length when they fit, the voiced ones absorb the rest
    span = np.diff(np.append(pos, x.size)).astype(np.float64)
    span = np.maximum(span, 1.0)
    v_len = span[voiced].sum()
    u_len = span[~voiced].sum()
    if v_len > 0 and out_len > u_len * 1.05:
        rate = np.where(voiced, (out_len - u_len) / v_len, 1.0)
    else:
        rate = np.full(span.shape, out_len / span.sum())
    out_edges = np.concatenate([[0.0], np.cumsum(span * rate)])
    in_edges = np.concatenate([[0.0], pos[1:].astype(np.float64), [float(x.size)]])
    in_edges[0] = 0.0
    target_p = sr / hz
    wsum = np.zeros(out_len, dtype=np.float64)
    ts = 0.0
    padded = np.concatenate([np.zeros(x.size), x, np.zeros(x.size)])
    while ts < out_len:
        ta = float(np.interp(ts, out_edges, in_edges))
        j = int(np.clip(np.searchsorted(pos, ta, side="right") - 1, 0, pos.size - 1))  # pos[j] <= ta < pos[j+1]
        k = j + 1 if j + 1 < pos.size and ta - pos[j] > pos[j + 1] - ta else j  # the nearest mark
        if voiced[k] and j + 1 < pos.size and voiced[j] and voiced[j + 1]:
            # between two voiced marks: blend their grains, so a stretched vowel glides from period to period
            # instead of repeating one period and jumping to the next (which is heard as roughness)
            alpha = float(np.clip((ta - pos[j]) / max(1, pos[j + 1] - pos[j]), 0.0, 1.0))
            half = int(round((1 - alpha) * per[j] + alpha * per[j + 1]))
            g0 = padded[x.size + pos[j] - half : x.size + pos[j] + half + 1]
            g1 = padded[x.size + pos[j + 1] - half : x.size + pos[j + 1] + half + 1]
            grain = (1 - alpha) * g0 + alpha * g1
        else:
            half = int(per[k])
            grain = padded[x.size + pos[k] - half : x.size + pos[k] + half + 1]
        win = np.hanning(grain.size)
        c = int(round(ts))
        lo, hi = c - half, c + half + 1
        a, b = max(lo, 0), min(hi, out_len)
        if b > a:
            out[a:b] += (grain * win)[a - lo : b - lo]
            wsum[a:b] += win[a - lo : b - lo]
        ts += target_p if voiced[k] else half
    out /= np.maximum(wsum, 1.0)
    return out.astype(np.float32)


def _fade(y: np.ndarray, sr: int) -> np.ndarray:
    n = min(int(FADE_S * sr), y.size // 2)
    if n > 0:
        ramp = np.linspace(0.0, 1.0, n, dtype=np.float32)
        y[:n] *= ramp
        y[-n:] *= ramp[::-1]
    return y


def sing_word(text: str, pitch: int, seconds: float, sample_rate: int) -> np.ndarray:
    """One word sung at MIDI ``pitch`` for ``seconds``, at ``sample_rate`` (float32, RMS ``VOICE_RMS``)."""
    n_out = int(round(seconds * sample_rate))
    word = clean_word(text)
    if n_out <= 0 or not word:
        return np.zeros(max(n_out, 0), dtype=np.float32)
    hz = midi_hz(pitch)
    voice, p = _voice_for(hz)
    speech = speak(word, voice, p)
    n_native = max(1, int(round(seconds * ESPEAK_RATE)))
    y = sing(speech, ESPEAK_RATE, hz, n_native)
    if sample_rate != ESPEAK_RATE:
        y = soxr.resample(y, ESPEAK_RATE, sample_rate, quality="VHQ").astype(np.float32)
    y = _fit(y, n_out)  # soxr's length can differ by a sample
    rms = float(np.sqrt(np.mean(y.astype(np.float64) ** 2)))
    if rms > 0:
        y = (y * (VOICE_RMS / rms)).astype(np.float32)
    return _fade(y, sample_rate)
