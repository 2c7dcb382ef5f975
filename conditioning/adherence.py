"""How closely generated audio follows its conditions (issue 9, "Inspecting and measuring").

Pure functions on arrays, no file I/O: the caller decodes the audio and reads the MIDI bytes. Three
metrics, each ``None`` (with a note saying why) when it cannot be computed, never NaN:

- ``midi_chroma``: mean cosine similarity between the audio's chroma and the MIDI's chroma;
- ``drum_onset_f1``: ``mir_eval.onset.f_measure`` (50 ms window) between onsets picked in the audio and
  the MIDI's drum-note starts, or the onsets picked in a drum stem;
- ``loudness_corr``: per stem, Pearson correlation of the audio's and the stem's loudness (dB).

Who computes what: :func:`conditioning.stems.analyse_stem` / :func:`~conditioning.stems.stem_window`
give the audio's and the stems' features (librosa's definitions, numpy) and
:func:`conditioning.midi.midi_features` the MIDI's, all at ``ANALYSIS_HOP`` = 512 samples (librosa's
default hop; n_fft 2048). Chroma and loudness are compared on frames of ``POOL`` = 4 analysis frames
(2048 samples: 21.53 frames/s at 44.1 kHz), each the mean of its four. Onsets are picked at the analysis
rate with librosa's ``onset_detect`` rule (:func:`pick_onsets`); mir_eval scores them. The time line:
audio sample 0 sits at ``start_s``, the MIDI clip's time 0 and each stem's sample 0 at the times given
with them, all in the same seconds.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

from common.errors import InputError
from conditioning.midi import MidiClip, midi_features
from conditioning.stems import StemAnalysis, analyse_stem, stem_window

ANALYSIS_HOP = 512  # samples: analyse_stem's smallest analysis hop (n_fft 2048)
POOL = 4  # analysis frames per comparison frame: 2048 samples, 21.53 frames/s at 44.1 kHz
FRAME = ANALYSIS_HOP * POOL
MIN_FRAMES = 8  # comparison frames a chroma or loudness number needs (0.37 s at 44.1 kHz)
ONSET_WINDOW_S = 0.05  # mir_eval's default tolerance
# librosa.onset.onset_detect's peak picking, in seconds (frames = floor(seconds · frames_per_s))
PRE_MAX_S, POST_MAX_S, PRE_AVG_S, POST_AVG_S, WAIT_S, DELTA = 0.03, 0.0, 0.10, 0.10, 0.03, 0.07
FLAT_DB = 1e-3  # a loudness envelope whose standard deviation is below this is constant
MAX_TIME_S = 1e6
_AUDIO = "generated audio"
_NO_STEMS: Mapping[str, tuple[np.ndarray, int, float]] = MappingProxyType({})
_TERMS = ("midi_chroma", "drum_onset_f1", "loudness_corr")  # the terms of "mean"

StemInput = tuple[np.ndarray, int, float]  # samples (frames,) or (frames, channels), rate, stem_start_s


@dataclass(frozen=True)
class AdherenceReport:
    """Adherence numbers of one take; a metric is ``None`` where its condition is absent or it could not
    be computed (``notes`` say why). ``loudness_corr`` has one entry per stem passed."""

    duration_s: float
    midi_chroma: float | None = None  # 0..1
    midi_chroma_frames: int = 0  # comparison frames it averages
    drum_onset_f1: float | None = None  # 0..1
    drum_onset_precision: float | None = None
    drum_onset_recall: float | None = None
    drum_reference: str | None = None  # "midi" or "stem:<name>"
    drum_reference_onsets: int = 0
    drum_estimated_onsets: int = 0
    loudness_corr: Mapping[str, float | None] = field(default_factory=lambda: MappingProxyType({}))
    notes: tuple[str, ...] = ()

    def metrics(self) -> dict[str, float]:
        """The metrics this report has, by the names :func:`order_candidates` takes."""
        found: dict[str, float] = {}
        for name in ("midi_chroma", "drum_onset_f1"):
            value = getattr(self, name)
            if value is not None:
                found[name] = value
        stems = {f"loudness_corr:{s}": v for s, v in self.loudness_corr.items() if v is not None}
        if stems:
            found["loudness_corr"] = float(np.mean(list(stems.values())))
            found.update(stems)
        terms = [found[t] for t in _TERMS if t in found]
        if terms:
            found["mean"] = float(np.mean(terms))
        return found

    def metric(self, name: str) -> float | None:
        return self.metrics().get(name)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready: plain floats (4 decimals), ints, strings, None."""

        def num(value: float | None) -> float | None:
            return None if value is None else round(float(value), 4)

        return {
            "duration_s": num(self.duration_s),
            "midi_chroma": num(self.midi_chroma),
            "midi_chroma_frames": self.midi_chroma_frames,
            "drum_onset_f1": num(self.drum_onset_f1),
            "drum_onset_precision": num(self.drum_onset_precision),
            "drum_onset_recall": num(self.drum_onset_recall),
            "drum_reference": self.drum_reference,
            "drum_reference_onsets": self.drum_reference_onsets,
            "drum_estimated_onsets": self.drum_estimated_onsets,
            "loudness_corr": {name: num(value) for name, value in self.loudness_corr.items()},
            "mean": num(self.metric("mean")),
            "notes": list(self.notes),
        }


def pick_onsets(envelope: np.ndarray, frames_per_s: float) -> np.ndarray:
    """Frame indices of the peaks of an onset envelope, by ``librosa.onset.onset_detect``'s rule.

    The envelope is scaled to [0, 1] (minus its minimum, over its maximum). Frame ``n`` is an onset when
    it is the maximum of ``[n - pre_max, n + post_max)``, at least ``DELTA`` above the mean of
    ``[n - pre_avg, n + post_avg)`` (both cut at the ends) and more than ``wait`` frames after the last
    onset kept; ``pre_max = floor(0.03·fps)``, ``post_max = 1``, ``pre_avg = floor(0.1·fps)``,
    ``post_avg = pre_avg + 1``, ``wait = floor(0.03·fps)`` (at 86.13 frames/s: 2, 1, 8, 9, 2).
    """
    x = np.asarray(envelope, dtype=np.float64)
    if x.size == 0:
        return np.zeros(0, dtype=np.int64)
    x = x - x.min()
    top = float(x.max())
    if top <= 0:
        return np.zeros(0, dtype=np.int64)
    x /= top
    pre_max = math.floor(PRE_MAX_S * frames_per_s)
    post_max = math.floor(POST_MAX_S * frames_per_s) + 1
    pre_avg = math.floor(PRE_AVG_S * frames_per_s)
    post_avg = math.floor(POST_AVG_S * frames_per_s) + 1
    wait = math.floor(WAIT_S * frames_per_s)
    n = x.size
    padded = np.pad(x, (pre_max, post_max - 1))  # zero = the scaled minimum, as librosa pads
    moving_max = np.lib.stride_tricks.sliding_window_view(padded, pre_max + post_max).max(axis=1)
    index = np.arange(n)
    low, high = np.maximum(0, index - pre_avg), np.minimum(n, index + post_avg)
    total = np.concatenate(([0.0], np.cumsum(x)))
    moving_mean = (total[high] - total[low]) / (high - low)
    candidates = np.flatnonzero((x > 0) & (x == moving_max) & (x >= moving_mean + DELTA))
    kept: list[int] = []
    for frame in candidates.tolist():
        if not kept or frame > kept[-1] + wait:
            kept.append(frame)
    return np.array(kept, dtype=np.int64)


def _onset_times(analysis: StemAnalysis, offset_s: float) -> np.ndarray:
    """Onsets picked in an analysed signal, in seconds from the audio's start (``offset_s``: its sample 0)."""
    frames_per_s = analysis.sample_rate / analysis.analysis_hop
    return offset_s + pick_onsets(analysis.onset, frames_per_s) / frames_per_s


def _merge_close(times: np.ndarray, gap_s: float) -> np.ndarray:
    """Sorted times with every time within ``gap_s`` of the last one kept dropped (a chord is one onset)."""
    kept: list[float] = []
    for t in np.sort(times).tolist():
        if not kept or t > kept[-1] + gap_s:
            kept.append(t)
    return np.array(kept, dtype=np.float64)


def _pooled(values: np.ndarray, n_pooled: int) -> np.ndarray:
    """Means of consecutive groups of POOL frames (the first n_pooled groups)."""
    return values[: n_pooled * POOL].reshape(n_pooled, POOL, *values.shape[1:]).mean(axis=1)


def _check_number(label: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(f"{label} must be a number of seconds within ±{MAX_TIME_S:g}, got {value!r}")
    if not abs(float(value)) <= MAX_TIME_S:
        raise InputError(f"{label} must be a number of seconds within ±{MAX_TIME_S:g}, got {value!r}")
    return float(value)


def _analyse_audio(audio: np.ndarray, sample_rate: int) -> StemAnalysis:
    try:
        return analyse_stem(audio, sample_rate, name=_AUDIO, sample_rate=sample_rate, hop=ANALYSIS_HOP)
    except InputError as error:  # analyse_stem names its input a stem
        raise InputError(str(error).replace(f"stem {_AUDIO!r}", _AUDIO, 1)) from None


def _chroma_similarity(
    audio_chroma: np.ndarray, midi_chroma: np.ndarray, notes: list[str]
) -> tuple[float | None, int]:
    """Mean cosine over the pooled frames where some pitched note of the MIDI sounds (so the clip covers
    them); a frame where the audio is silent scores 0."""
    sounding = midi_chroma.sum(axis=1) > 0
    count = int(np.count_nonzero(sounding))
    if count < MIN_FRAMES:
        notes.append(
            f"midi_chroma: the MIDI's pitched notes sound in {count} frames of the audio; "
            f"at least {MIN_FRAMES} are needed"
        )
        return None, count
    a = audio_chroma[sounding].astype(np.float64)
    m = midi_chroma[sounding].astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(m, axis=1)
    cosine = np.divide(np.einsum("ij,ij->i", a, m), norms, out=np.zeros(count), where=norms > 0)
    silent = int(np.count_nonzero(norms == 0))
    if silent:
        notes.append(
            f"midi_chroma: the audio is silent in {silent} of {count} frames where the MIDI sounds (0 there)"
        )
    return float(np.clip(cosine.mean(), 0.0, 1.0)), count


def _correlation(audio_db: np.ndarray, stem_db: np.ndarray, name: str, notes: list[str]) -> float | None:
    if audio_db.size < MIN_FRAMES:
        notes.append(
            f"loudness_corr:{name}: the stem covers {audio_db.size} frames of the audio; "
            f"at least {MIN_FRAMES} are needed"
        )
        return None
    a, s = audio_db.astype(np.float64), stem_db.astype(np.float64)
    for label, values in (("the stem's", s), ("the audio's", a)):
        if values.std() < FLAT_DB:
            notes.append(f"loudness_corr:{name}: {label} loudness is constant where they overlap (silent?)")
            return None
    a, s = a - a.mean(), s - s.mean()
    return float(np.clip(np.dot(a, s) / math.sqrt(np.dot(a, a) * np.dot(s, s)), -1.0, 1.0))


def _onset_f1(
    reference: np.ndarray, estimated: np.ndarray, span: tuple[float, float], what: str, notes: list[str]
) -> tuple[float | None, float | None, float | None, int, int]:
    """(F1, precision, recall, reference count, estimated count) over ``span`` (seconds from the audio's
    start); ``what`` names the reference in notes ("the MIDI clip's drum notes", "onsets of drum stem 'x'")."""
    lo, hi = span
    if hi <= lo:
        notes.append(f"drum_onset_f1: the reference does not overlap the audio ({what})")
        return None, None, None, 0, 0
    reference = _merge_close(reference[(reference >= lo) & (reference < hi)], WAIT_S)
    estimated = np.sort(estimated[(estimated >= lo) & (estimated < hi)])
    if reference.size == 0:
        notes.append(f"drum_onset_f1: no reference onsets within the audio ({what})")
        return None, None, None, 0, int(estimated.size)
    if estimated.size == 0:
        notes.append("drum_onset_f1: no onsets were detected in the audio")
        return 0.0, 0.0, 0.0, int(reference.size), 0
    import mir_eval.onset  # its scipy import takes ~1 s: paid only by callers that score onsets

    f1, precision, recall = mir_eval.onset.f_measure(reference, estimated, window=ONSET_WINDOW_S)
    return float(f1), float(precision), float(recall), int(reference.size), int(estimated.size)


def adherence(
    audio: np.ndarray,
    sample_rate: int,
    *,
    start_s: float,
    midi: tuple[MidiClip, float] | None = None,
    stems: Mapping[str, StemInput] = _NO_STEMS,
    drum_stem: str | None = None,
) -> AdherenceReport:
    """Adherence of ``audio`` ((samples, channels) float, at ``sample_rate``, sample 0 at ``start_s``) to
    its conditions: ``midi`` = (clip, time of the clip's 0), ``stems`` = name -> (samples, rate, time of
    sample 0). Drum onsets are compared with ``drum_stem``'s onsets when it is named, else with the MIDI's
    drum notes. Raises :class:`InputError` for bad audio, stems or placements, or an unknown ``drum_stem``.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer) or sample_rate <= 0:
        raise InputError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    sample_rate = int(sample_rate)
    start_s = _check_number("start_s", start_s)
    if drum_stem is not None and drum_stem not in stems:
        raise InputError(f"drum stem {drum_stem!r} is not among the stems: {', '.join(stems) or 'none'}")
    if midi is not None and not (len(midi) == 2 and isinstance(midi[0], MidiClip)):
        raise InputError("midi must be (MidiClip, clip_start_s)")
    clip_start_s = _check_number("clip_start_s", midi[1]) if midi is not None else 0.0

    analysis = _analyse_audio(audio, sample_rate)
    duration_s = analysis.length_s
    notes = [r.replace("stem", "audio", 1) for r in analysis.remarks if "silent" in r]
    n_pooled = analysis.n_samples // FRAME
    if n_pooled < MIN_FRAMES:
        notes.append(
            f"audio is {duration_s:.3f} s long; adherence needs at least {MIN_FRAMES * FRAME / sample_rate:.3f} s"
        )
        return AdherenceReport(
            duration_s, loudness_corr=MappingProxyType(dict.fromkeys(stems)), notes=tuple(notes)
        )
    n_frames = n_pooled * POOL
    own = stem_window(analysis, start_s=start_s, n_frames=n_frames, stem_start_s=start_s)
    estimated = _onset_times(analysis, 0.0)
    whole = (0.0, n_frames * ANALYSIS_HOP / sample_rate)  # the measured part of the audio, in its seconds

    chroma: float | None = None
    chroma_frames = 0
    f1 = precision = recall = None
    reference_name: str | None = None
    n_reference = n_estimated = 0
    if midi is not None:
        clip = midi[0]
        features = midi_features(
            clip,
            sample_rate=sample_rate,
            hop=ANALYSIS_HOP,
            start_s=start_s,
            n_frames=n_frames,
            clip_start_s=clip_start_s,
        )
        chroma, chroma_frames = _chroma_similarity(
            _pooled(own.chroma, n_pooled), _pooled(features.chroma, n_pooled), notes
        )
        if drum_stem is None:
            reference_name = "midi"
            offset = clip_start_s - start_s
            span = (max(whole[0], offset), min(whole[1], offset + clip.length_s))
            drum_starts = clip.start_s[clip.is_drum] + offset
            f1, precision, recall, n_reference, n_estimated = _onset_f1(
                drum_starts, estimated, span, "the MIDI clip's drum notes", notes
            )

    correlations: dict[str, float | None] = {}
    own_db = _pooled(own.loudness_db, n_pooled)
    for name, entry in stems.items():
        if not (isinstance(entry, tuple) and len(entry) == 3):
            raise InputError(f"stem {name!r}: expected (samples, sample_rate, stem_start_s)")
        samples, rate, stem_start_s = entry
        stem_start_s = _check_number(f"stem {name!r} start", stem_start_s)
        stem = analyse_stem(samples, rate, name=name, sample_rate=sample_rate, hop=ANALYSIS_HOP)
        features_s = stem_window(stem, start_s=start_s, n_frames=n_frames, stem_start_s=stem_start_s)
        covered = _pooled(features_s.coverage, n_pooled) >= 1.0
        correlations[name] = _correlation(
            own_db[covered], _pooled(features_s.loudness_db, n_pooled)[covered], name, notes
        )
        if name == drum_stem:
            reference_name = f"stem:{name}"
            offset = stem_start_s - start_s
            span = (max(whole[0], offset), min(whole[1], offset + stem.length_s))
            f1, precision, recall, n_reference, n_estimated = _onset_f1(
                _onset_times(stem, offset), estimated, span, f"onsets of drum stem {name!r}", notes
            )
    return AdherenceReport(
        duration_s=duration_s,
        midi_chroma=chroma,
        midi_chroma_frames=chroma_frames,
        drum_onset_f1=f1,
        drum_onset_precision=precision,
        drum_onset_recall=recall,
        drum_reference=reference_name,
        drum_reference_onsets=n_reference,
        drum_estimated_onsets=n_estimated,
        loudness_corr=MappingProxyType(correlations),
        notes=tuple(notes),
    )


def order_candidates(reports: Sequence[AdherenceReport], by: str) -> list[int]:
    """Indices of ``reports``, best (highest) first, by one metric: ``midi_chroma``, ``drum_onset_f1``,
    ``loudness_corr:<stem>``, ``loudness_corr`` (mean over stems) or ``mean`` (of midi_chroma,
    drum_onset_f1 and loudness_corr). Reports without the metric come last; ties keep their order. For
    ``mean``, reports with more of its terms come first. A metric no report has is an InputError.
    """
    if not isinstance(by, str):
        raise InputError(f"order candidates by a metric name, got {by!r}")
    table = [report.metrics() for report in reports]
    if not reports:
        return []
    if not any(by in found for found in table):
        available = sorted({name for found in table for name in found})
        raise InputError(
            f"cannot order candidates by {by!r}: no candidate has it; available: "
            f"{', '.join(available) or 'none (no condition could be measured)'}"
        )

    def key(index: int) -> tuple[int, float]:
        found = table[index]
        value = found.get(by)
        if value is None:
            return (1, 0.0)
        if by == "mean":
            return (-sum(term in found for term in _TERMS), -value)
        return (0, -value)

    return sorted(range(len(reports)), key=key)


@dataclass(frozen=True)
class Conditions:
    """One piece's conditions, as :func:`adherence` takes them."""

    midi: tuple[MidiClip, float] | None = None
    stems: Mapping[str, StemInput] = field(default_factory=lambda: _NO_STEMS)
    drum_stem: str | None = None


@dataclass(frozen=True)
class BaselineReport:
    """Each piece scored against its own conditions (``matched``) and against another piece's
    (``shuffled``): piece ``i``'s audio against ``conditions[permutation[i]]``."""

    permutation: tuple[int, ...]
    matched: tuple[AdherenceReport, ...]
    shuffled: tuple[AdherenceReport, ...]

    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """Per metric: the mean over the pieces that have it, matched and shuffled, and how many."""
        names = sorted({n for r in self.matched + self.shuffled for n in r.metrics()})
        result: dict[str, dict[str, float | int | None]] = {}
        for name in names:
            row: dict[str, float | int | None] = {}
            for label, reports in (("matched", self.matched), ("shuffled", self.shuffled)):
                values = [v for v in (r.metric(name) for r in reports) if v is not None]
                row[label] = round(float(np.mean(values)), 4) if values else None
                row[f"{label}_pieces"] = len(values)
            result[name] = row
        return result

    def to_dict(self) -> dict[str, object]:
        return {
            "permutation": list(self.permutation),
            "summary": self.summary(),
            "matched": [r.to_dict() for r in self.matched],
            "shuffled": [r.to_dict() for r in self.shuffled],
        }


def derangement(n: int, seed: int) -> tuple[int, ...]:
    """A permutation of ``range(n)`` with no fixed point, uniform among them, the same for the same seed."""
    if n < 2:
        raise InputError(f"a shuffled baseline needs at least 2 pieces, got {n}")
    rng = np.random.default_rng(seed)
    while True:  # a random permutation is a derangement with probability ~1/e: ~2.7 draws
        order = rng.permutation(n)
        if not np.any(order == np.arange(n)):
            return tuple(int(i) for i in order)


def shuffled_baseline(
    audio: Sequence[np.ndarray],
    sample_rate: int,
    *,
    start_s: Sequence[float],
    conditions: Sequence[Conditions],
    seed: int = 0,
) -> BaselineReport:
    """Score each piece's audio against its own conditions and against another piece's (a seeded
    derangement), placed where that piece's audio started (``start_s[j]``), so the conditions keep their
    position relative to the audio. The shuffled numbers are the metrics' chance level on this music; they
    complement, not replace, generating with shuffled conditions (which measures what the model does
    without its conditions)."""
    if not len(audio) == len(start_s) == len(conditions):
        raise InputError(
            f"a baseline needs as many audio arrays, start times and conditions; got "
            f"{len(audio)}, {len(start_s)}, {len(conditions)}"
        )
    permutation = derangement(len(audio), seed)

    def score(i: int, j: int) -> AdherenceReport:
        c = conditions[j]
        return adherence(
            audio[i], sample_rate, start_s=start_s[j], midi=c.midi, stems=c.stems, drum_stem=c.drum_stem
        )

    return BaselineReport(
        permutation=permutation,
        matched=tuple(score(i, i) for i in range(len(audio))),
        shuffled=tuple(score(i, j) for i, j in enumerate(permutation)),
    )
