"""Stems (decoded audio arrays) → frame features at a prior level's token rate (issue 9).

Pure functions, no file I/O: the caller decodes the file (``model.audio.read_audio``) and passes the
array. :func:`analyse_stem` mixes to mono, resamples to the model's rate and computes every feature once
for the whole stem at the *analysis hop*; :func:`stem_window` reads one window of tokens out of that
analysis; :func:`stem_features` does both. A caller sampling many windows of one stem analyses it once.

Who computes what: everything is numpy (soxr resamples). The features follow librosa's definitions so
librosa can serve as the oracle in the tests without being a run-time dependency:

- ``onset``: ``librosa.onset.onset_strength`` (128-band Slaney mel power spectrogram of a 2048-point
  periodic-Hann STFT, dB with ``amin=1e-10`` and ``top_db=80`` below the stem's maximum, first difference
  half-wave rectified, mean over bands, shifted by ``lag + n_fft // (2 * analysis_hop)`` frames as
  librosa does), then divided by ``max(p99, max / 10)`` of the stem's envelope and clipped to [0, 1];
- ``loudness_db``: RMS of the rectangular ``n_fft``-sample frame (``librosa.feature.rms``; 46.4 ms at
  44.1 kHz, not K-weighted) in dB re full scale (a square wave of amplitude 1 is 0 dB), floored at -80;
  ``loudness`` maps -80..0 dB to 0..1;
- ``chroma``: ``librosa.feature.chroma_stft`` on the same power spectrogram with ``tuning=0`` (A = 440 Hz,
  no tuning estimate), each frame divided by its maximum, and 0 where the frame is below -80 dB.

Frame rule: token frame ``i`` of a window covers ``[start_s + i·hop/sr, start_s + (i+1)·hop/sr)``.
Analysis frame ``j`` is centred on stem sample ``j·analysis_hop`` (``center=True``), with
``analysis_hop = max(512, hop)`` and ``n_fft`` the power of two at least ``4·analysis_hop`` (2048).
Token frames take the analysis features linearly interpolated at their centre (held at the stem's first
and last analysis frames); interpolated chroma is scaled to max 1 again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import soxr

from common.errors import InputError

MIN_STEM_RATE, MAX_STEM_RATE = 8000, 192000
MAX_CHANNELS = 16
MAX_STEM_S = 1200.0
MAX_ABS = 1000.0  # +60 dBFS: beyond it the array is not audio (integer PCM passed as float, say)
MAX_FRAMES = 2**22  # (n_frames, 12) float32 chroma = 192 MiB at the limit
MAX_TIME_S = 1e6  # |start_s|, |stem_start_s|
MIN_ANALYSIS_HOP = 512
FLOOR_DB = -80.0
N_MELS = 128
AMIN = 1e-10  # librosa.power_to_db
TOP_DB = 80.0
SPREAD = 10.0  # the onset reference is at least max / SPREAD: a few sparse clicks still reach 1
PITCH_CLASSES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
_CHUNK = 2048  # analysis frames per STFT block: ~25 MB of temporaries with n_fft 2048
N_FEATURES = 2 + len(PITCH_CLASSES)  # the columns of StemFeatures.as_matrix
_SILENT_RMS = 10.0 ** (FLOOR_DB / 20.0)


@dataclass(frozen=True)
class StemAnalysis:
    """A whole stem's features at the analysis hop (mono, at ``sample_rate``); arrays are read-only."""

    name: str
    sample_rate: int
    hop: int  # the token hop it was analysed for
    analysis_hop: int
    n_fft: int
    n_samples: int  # of the mono stem at sample_rate
    onset: np.ndarray  # (n_analysis,) float32, normalised to [0, 1]
    loudness_db: np.ndarray  # (n_analysis,) float32, -80..
    chroma: np.ndarray  # (n_analysis, 12) float32, max 1 per frame, 0 where silent
    silent: bool
    remarks: tuple[str, ...]

    @property
    def length_s(self) -> float:
        return self.n_samples / self.sample_rate


@dataclass(frozen=True)
class StemFeatures:
    """Per-frame stem features of one window; every array is float32 with first dimension n_frames."""

    onset: np.ndarray  # (n_frames,) onset strength in [0, 1]
    loudness_db: np.ndarray  # (n_frames,) RMS loudness in dB re full scale, floored at -80 (-80 off the stem)
    loudness: np.ndarray  # (n_frames,) loudness_db mapped -80..0 dB -> 0..1
    chroma: np.ndarray  # (n_frames, 12) pitch-class energy, C first, each frame max 1, 0 where silent
    coverage: np.ndarray  # (n_frames,) 1.0 where the frame overlaps the stem
    notes: tuple[str, ...]

    def as_matrix(self) -> np.ndarray:
        """(n_frames, N_FEATURES) float32 for a network: onset strength, loudness (0..1), then chroma (12)."""
        return np.concatenate([self.onset[:, None], self.loudness[:, None], self.chroma], axis=1)


def _bad(name: str, problem: str) -> InputError:
    return InputError(f"stem {name!r}: {problem}")


def _check_int(label: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise InputError(f"{label} must be a positive integer, got {value!r}")
    return int(value)


def _check_seconds(label: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(f"{label} must be a number of seconds within ±{MAX_TIME_S:g}, got {value!r}")
    if not abs(float(value)) <= MAX_TIME_S:
        raise InputError(f"{label} must be a number of seconds within ±{MAX_TIME_S:g}, got {value!r}")
    return float(value)


def _check_samples(samples: object, stem_rate: object, name: str) -> np.ndarray:
    """The stem as a 2-D (frames, channels) float array, or an InputError naming the problem."""
    if not isinstance(samples, np.ndarray):
        raise _bad(name, f"samples must be a numpy array, got {type(samples).__name__}")
    if samples.dtype.kind != "f":
        raise _bad(name, f"samples must be floating point audio, got dtype {samples.dtype}")
    if samples.ndim not in (1, 2):
        raise _bad(name, f"samples must be (frames,) or (frames, channels), got shape {samples.shape}")
    if isinstance(stem_rate, bool) or not isinstance(stem_rate, int | np.integer):
        raise _bad(name, f"sample rate must be an integer, got {stem_rate!r}")
    if not MIN_STEM_RATE <= stem_rate <= MAX_STEM_RATE:
        raise _bad(name, f"sample rate {stem_rate} Hz is outside {MIN_STEM_RATE}..{MAX_STEM_RATE} Hz")
    stem = samples if samples.ndim == 2 else samples[:, None]
    frames, channels = stem.shape
    if channels == 0:
        raise _bad(name, "has no channels")
    if channels > MAX_CHANNELS:
        raise _bad(
            name,
            f"has {channels:,} channels, more than {MAX_CHANNELS} (samples must be (frames, channels))",
        )
    if frames == 0:
        raise _bad(name, "is empty (0 samples)")
    if frames / stem_rate > MAX_STEM_S:
        raise _bad(name, f"is {frames / stem_rate:.1f} s long; the limit is {MAX_STEM_S:g} s")
    if not math.isfinite(float(np.sum(stem, dtype=np.float64))):  # one pass; finite float32 cannot overflow
        bad = ~np.isfinite(stem)
        count = int(np.count_nonzero(bad))
        if count:
            first = int(np.argmax(bad.any(axis=1)))
            raise _bad(
                name,
                f"has {count:,} NaN or infinite samples; the first at sample {first:,} "
                f"({first / stem_rate:.3f} s)",
            )
    peak = float(np.max(np.abs(stem)))
    if peak > MAX_ABS:
        raise _bad(name, f"reaches {peak:.4g}; audio lies within about ±1 (is it unscaled integer PCM?)")
    return stem


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, htk=False): linear to 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    mel = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    mel[log_part] = 15.0 + np.log(hz[log_part] / 1000.0) / (np.log(6.4) / 27.0)
    return mel


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    hz = mel * (200.0 / 3)
    log_part = mel >= 15.0
    hz[log_part] = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel[log_part] - 15.0))
    return hz


def _mel_filters(sample_rate: int, n_fft: int) -> np.ndarray:
    """(N_MELS, n_fft//2 + 1) Slaney-normalised triangles from 0 Hz to Nyquist (librosa.filters.mel)."""
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(0.0, float(_hz_to_mel(np.array([sample_rate / 2.0]))[0]), N_MELS + 2))
    widths = np.diff(edges)
    ramps = edges[:, None] - fft_hz[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def _chroma_filters(sample_rate: int, n_fft: int) -> np.ndarray:
    """(12, n_fft//2 + 1) Gaussian pitch-class weights, C first, A = 440 Hz (librosa.filters.chroma)."""
    hz = np.linspace(0, sample_rate, n_fft, endpoint=False)[1:]
    bins = 12 * np.log2(hz / (440.0 / 16))  # in semitones
    bins = np.concatenate(([bins[0] - 1.5 * 12], bins))
    widths = np.concatenate((np.maximum(bins[1:] - bins[:-1], 1.0), [1.0]))
    distance = bins[None, :] - np.arange(12, dtype=np.float64)[:, None]
    distance = np.remainder(distance + 6 + 120, 12) - 6
    weights = np.exp(-0.5 * (2 * distance / widths[None, :]) ** 2)
    weights /= np.sqrt(np.sum(weights**2, axis=0, keepdims=True))
    weights *= np.exp(-0.5 * ((bins / 12 - 5.0) / 2.0) ** 2)[None, :]  # centred on octave 5, 2 octaves wide
    weights = np.roll(weights, -3, axis=0)  # rows from A to rows from C
    return np.ascontiguousarray(weights[:, : n_fft // 2 + 1], dtype=np.float32)


def _frames(mono: np.ndarray, analysis_hop: int, n_fft: int) -> np.ndarray:
    """(n_analysis, n_fft) read-only view: frame ``j`` centred on sample ``j·analysis_hop``, zero-padded
    at both ends (librosa's ``center=True, pad_mode="constant"``)."""
    padded = np.pad(mono, n_fft // 2)
    n_analysis = 1 + mono.shape[0] // analysis_hop
    step = padded.strides[0]
    return np.lib.stride_tricks.as_strided(
        padded, shape=(n_analysis, n_fft), strides=(step * analysis_hop, step), writeable=False
    )


def analyse_stem(
    samples: np.ndarray, stem_rate: int, *, name: str, sample_rate: int, hop: int
) -> StemAnalysis:
    """Validate, mix to mono (mean of the channels), resample to ``sample_rate`` and analyse the whole stem."""
    sample_rate = _check_int("sample_rate", sample_rate)
    hop = _check_int("hop", hop)
    stem = _check_samples(samples, stem_rate, name)
    channels = stem.shape[1]
    remarks = []
    mono = stem[:, 0] if channels == 1 else stem.mean(axis=1, dtype=np.float32)
    if channels > 1:
        remarks.append(f"stem had {channels} channels, mixed to mono")
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if stem_rate != sample_rate:
        try:
            mono = np.ascontiguousarray(soxr.resample(mono, int(stem_rate), sample_rate), dtype=np.float32)
        except Exception as error:  # soxr refuses rates it cannot convert between
            raise _bad(name, f"cannot be resampled from {stem_rate} to {sample_rate} Hz ({error})") from None
        remarks.append(f"stem resampled from {stem_rate} Hz to {sample_rate} Hz")
        if mono.shape[0] == 0:
            raise _bad(name, f"is shorter than one sample at {sample_rate} Hz")

    analysis_hop = max(MIN_ANALYSIS_HOP, hop)
    n_fft = 1 << math.ceil(math.log2(4 * analysis_hop))
    frames = _frames(mono, analysis_hop, n_fft)
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)  # periodic Hann
    n_analysis = frames.shape[0]
    mel_filters = _mel_filters(sample_rate, n_fft)
    chroma_filters = _chroma_filters(sample_rate, n_fft)
    mel_db = np.empty((n_analysis, N_MELS), dtype=np.float32)
    chroma = np.empty((n_analysis, 12), dtype=np.float32)
    mean_square = np.empty(n_analysis, dtype=np.float64)
    for begin in range(0, n_analysis, _CHUNK):
        block = frames[begin : begin + _CHUNK]  # (b, n_fft) view
        mean_square[begin : begin + block.shape[0]] = np.einsum("ij,ij->i", block, block, dtype=np.float64)
        spectrum = np.fft.rfft(block * window, axis=1)  # (b, n_fft//2 + 1) complex64
        power = spectrum.real**2 + spectrum.imag**2
        del spectrum
        mel = power @ mel_filters.T  # (b, N_MELS)
        np.maximum(mel, AMIN, out=mel)
        mel_db[begin : begin + block.shape[0]] = 10.0 * np.log10(mel)
        chroma[begin : begin + block.shape[0]] = power @ chroma_filters.T  # (b, 12)
    rms = np.sqrt(mean_square / n_fft)
    loudness_db = np.maximum(FLOOR_DB, 20.0 * np.log10(np.maximum(rms, 1e-30))).astype(np.float32)
    silent_frame = rms < _SILENT_RMS
    silent = bool(silent_frame.all())

    if silent:
        remarks.append("stem is silent (below -80 dBFS throughout)")
        onset = np.zeros(n_analysis, dtype=np.float32)
        chroma[:] = 0.0
    else:
        np.maximum(mel_db, mel_db.max() - TOP_DB, out=mel_db)
        flux = np.maximum(0.0, np.diff(mel_db, axis=0)).mean(axis=1)  # (n_analysis - 1,)
        shift = 1 + n_fft // (2 * analysis_hop)
        onset = np.zeros(n_analysis, dtype=np.float32)
        onset[shift:] = flux[: max(0, n_analysis - shift)]
        top = float(onset.max())
        reference = max(float(np.percentile(onset, 99)), top / SPREAD)
        if reference > 0:
            onset /= reference
            np.clip(onset, 0.0, 1.0, out=onset)
        loudest = chroma.max(axis=1, keepdims=True)
        np.divide(chroma, loudest, out=chroma, where=loudest > 0)
        chroma[silent_frame] = 0.0
    del mel_db
    for array in (onset, loudness_db, chroma):
        array.flags.writeable = False
    return StemAnalysis(
        name=name,
        sample_rate=sample_rate,
        hop=hop,
        analysis_hop=analysis_hop,
        n_fft=n_fft,
        n_samples=int(mono.shape[0]),
        onset=onset,
        loudness_db=loudness_db,
        chroma=chroma,
        silent=silent,
        remarks=tuple(remarks),
    )


def stem_window(
    analysis: StemAnalysis, *, start_s: float, n_frames: int, stem_start_s: float = 0.0
) -> StemFeatures:
    """One window of ``n_frames`` tokens at ``start_s`` from an analysed stem whose sample 0 is at ``stem_start_s``."""
    n_frames = _check_int("n_frames", n_frames)
    if n_frames > MAX_FRAMES:
        raise InputError(
            f"n_frames is {n_frames:,}; at most {MAX_FRAMES:,} frames fit one stem feature window"
        )
    start_s = _check_seconds("start_s", start_s)
    stem_start_s = _check_seconds("stem_start_s", stem_start_s)
    sample_rate, hop, analysis_hop = analysis.sample_rate, analysis.hop, analysis.analysis_hop
    frames_per_s = sample_rate / hop
    window_s = n_frames / frames_per_s

    offset = (stem_start_s - start_s) * frames_per_s  # stem sample 0, in token frames of this window
    cover_first = min(n_frames, max(0, math.floor(offset + 1e-6)))
    cover_stop = max(cover_first, min(n_frames, math.ceil(offset + analysis.n_samples / hop - 1e-6)))
    coverage = np.zeros(n_frames, dtype=np.float32)
    coverage[cover_first:cover_stop] = 1.0

    onset = np.zeros(n_frames, dtype=np.float32)
    loudness_db = np.full(n_frames, FLOOR_DB, dtype=np.float32)
    chroma = np.zeros((n_frames, 12), dtype=np.float32)
    if cover_stop > cover_first:
        centres = (np.arange(cover_first, cover_stop, dtype=np.float64) + 0.5 - offset) * (hop / analysis_hop)
        last = analysis.onset.shape[0] - 1
        np.clip(centres, 0.0, last, out=centres)
        below = np.minimum(np.floor(centres).astype(np.int64), max(0, last - 1))
        above = np.minimum(below + 1, last)
        weight = (centres - below).astype(np.float32)
        del centres
        inside = slice(cover_first, cover_stop)
        for source, target in ((analysis.onset, onset), (analysis.loudness_db, loudness_db)):
            target[inside] = source[below] + weight * (source[above] - source[below])
        step = 1 << 18  # frames per block: keeps the (block, 12) temporaries near 12 MB
        for begin in range(0, cover_stop - cover_first, step):
            part = slice(begin, begin + step)
            w = weight[part, None]
            block = analysis.chroma[below[part]] * (1 - w) + analysis.chroma[above[part]] * w
            loudest = block.max(axis=1, keepdims=True)
            np.divide(block, loudest, out=block, where=loudest > 0)
            chroma[cover_first + begin : cover_first + begin + block.shape[0]] = block
    loudness = (loudness_db - FLOOR_DB) / -FLOOR_DB
    np.clip(loudness, 0.0, 1.0, out=loudness)

    notes = list(analysis.remarks)
    stem_end_s = stem_start_s + analysis.length_s
    if analysis.length_s < window_s:
        notes.append(f"stem is {window_s - analysis.length_s:.3f} s shorter than the window")
    if stem_start_s < start_s:
        notes.append(f"stem starts {start_s - stem_start_s:.3f} s before the window")
    elif stem_start_s >= start_s + window_s:
        notes.append(f"stem starts {stem_start_s - start_s - window_s:.3f} s after the window ends")
    elif stem_start_s > start_s:
        notes.append(f"stem starts {stem_start_s - start_s:.3f} s into the window")
    if stem_end_s <= start_s:
        notes.append(f"stem ends {start_s - stem_end_s:.3f} s before the window starts")
    elif stem_end_s < start_s + window_s:
        notes.append(f"stem ends {start_s + window_s - stem_end_s:.3f} s before the window ends")
    if cover_stop == cover_first:
        notes.append("stem does not overlap the window")
    elif not analysis.silent and not np.any(loudness_db[cover_first:cover_stop] > FLOOR_DB):
        notes.append("stem is silent in this window")
    return StemFeatures(onset, loudness_db, loudness, chroma, coverage, tuple(notes))


def stem_features(
    samples: np.ndarray,
    stem_rate: int,
    *,
    name: str,
    sample_rate: int,
    hop: int,
    start_s: float,
    n_frames: int,
    stem_start_s: float = 0.0,
) -> StemFeatures:
    """Frame features of a decoded stem for the window of ``n_frames`` tokens (``hop`` samples each) at ``start_s``.

    ``samples`` is ``(frames,)`` or ``(frames, channels)`` float audio at ``stem_rate`` Hz whose sample 0
    sits at model-audio time ``stem_start_s``. Raises :class:`InputError` naming the stem for an empty
    array, NaN or infinite samples, a rate outside 8000..192000 Hz, more than 16 channels, more than
    1200 s, or an out-of-range window.
    """
    n_frames = _check_int("n_frames", n_frames)  # refuse an oversized window before the analysis
    if n_frames > MAX_FRAMES:
        raise InputError(
            f"n_frames is {n_frames:,}; at most {MAX_FRAMES:,} frames fit one stem feature window"
        )
    _check_seconds("start_s", start_s)
    _check_seconds("stem_start_s", stem_start_s)
    analysis = analyse_stem(samples, stem_rate, name=name, sample_rate=sample_rate, hop=hop)
    return stem_window(analysis, start_s=start_s, n_frames=n_frames, stem_start_s=stem_start_s)


class StemSummary(TypedDict):
    """One window's stem features in plain numbers (JSON-ready); loudness over the covered frames."""

    frames: int
    coverage: float  # fraction of frames the stem covers
    mean_loudness_db: float | None  # mean of the dB envelope (None: the stem misses the window)
    peak_loudness_db: float | None
    onsets: int  # runs of consecutive frames with onset strength above 0.5
    dominant_pitch_class: str | None  # "C".."B" with the most chroma energy (None: silent or no coverage)
    notes: list[str]


def summary(features: StemFeatures) -> StemSummary:
    """Plain numbers describing one window's stem features (for ``segue labels``)."""
    covered = features.coverage > 0
    loudness = features.loudness_db[covered]
    strong = features.onset > 0.5
    onsets = int(np.count_nonzero(strong[1:] & ~strong[:-1])) + int(strong[:1].sum())
    energy = features.chroma[covered].sum(axis=0, dtype=np.float64)
    dominant = PITCH_CLASSES[int(np.argmax(energy))] if energy.max(initial=0.0) > 0 else None
    return {
        "frames": int(features.coverage.shape[0]),
        "coverage": float(covered.mean()),
        "mean_loudness_db": round(float(loudness.mean()), 2) if loudness.size else None,
        "peak_loudness_db": round(float(loudness.max()), 2) if loudness.size else None,
        "onsets": onsets,
        "dominant_pitch_class": dominant,
        "notes": list(features.notes),
    }
