"""``JobConditions``: the MIDI clip, stems and beat grid a task is steered by, placed in project time.

A job says where each condition sits in the producer's project (a clip's time 0, a stem's first sample,
the tempo map), and where the take starts (``take_start_s``: the region's end for a continuation).
``level_conditions`` turns them into every conditioned level's ``LevelConditions`` for the sampled audio
of one task, whose sample 0 sits ``start`` samples before the take. Each model conditioner reads the
condition of its name (``midi``, ``grid`` or a stem's label); a job condition no conditioner reads is an
``InputError`` naming the conditioners the model has. Features come from the pure functions of
``conditioning`` (MIDI rolls, stem analysis, grid phases) at each level's token rate.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import soxr

from common.errors import InputError
from conditioning.grid import grid_features
from conditioning.midi import MidiClip, midi_features
from conditioning.stems import StemAnalysis, analyse_stem, stem_window
from conditioning.tempo import TempoMap
from model.conditioners.config import CODES_SUFFIX, ConditionerConfig
from model.conditioners.window import LevelConditions, LevelFeatures
from model.sampling.lengths import Geometry
from model.sampling.params import SamplingParams

GRID = "grid"
MIDI = "midi"


@dataclass(frozen=True)
class StemCondition:
    """A decoded stem ``samples`` (S, C) float32 at ``sample_rate``; its sample 0 is at project ``start_s``."""

    name: str
    samples: np.ndarray
    sample_rate: int
    start_s: float = 0.0


@dataclass(frozen=True)
class JobConditions:
    """What steers one job. ``take_start_s``: project time of the take's first sample; ``midi_start_s``:
    project time of the clip's time 0; ``tempo``: the host's tempo map (the grid condition), or None."""

    take_start_s: float = 0.0
    midi: MidiClip | None = None
    midi_start_s: float = 0.0
    stems: tuple[StemCondition, ...] = ()
    tempo: TempoMap | None = None
    _analyses: dict[tuple[str, int, int], StemAnalysis] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [s.name for s in self.stems]
        for name in names:
            if name in (MIDI, GRID):
                raise InputError(f"a stem may not be labelled {name!r}: that name is the {name} condition's")
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InputError(f"stems labelled {', '.join(repeated)} more than once: give each stem its own label")

    @property
    def names(self) -> tuple[str, ...]:
        """The conditions this job gives, by the name a conditioner reads."""
        return ((MIDI,) if self.midi is not None else ()) + tuple(s.name for s in self.stems) + (
            (GRID,) if self.tempo is not None else ()
        )

    def stem(self, name: str) -> StemCondition:
        return next(s for s in self.stems if s.name == name)

    def analysis(self, name: str, sample_rate: int, hop: int) -> StemAnalysis:
        """The stem analysed for one token hop, computed once per (stem, rate, hop) and kept."""
        key = (name, sample_rate, hop)
        if key not in self._analyses:
            s = self.stem(name)
            self._analyses[key] = analyse_stem(s.samples, s.sample_rate, name=name, sample_rate=sample_rate, hop=hop)
        return self._analyses[key]


NO_CONDITIONS = JobConditions()


StemEncoder = Callable[[np.ndarray, int], np.ndarray]
"""(mono samples (S,) float32 at the model's rate, level) -> (S // hop_level, emb_width) float32: the codebook
vectors of the samples' VQ-VAE codes at that level (``stem_codes`` conditioners; ``model.tasks.render``)."""


def reads(config: ConditionerConfig) -> str:
    """The job condition a conditioner reads: its name, or for ``stem_codes`` the stem it is named after."""
    return config.name.removesuffix(CODES_SUFFIX) if config.kind == "stem_codes" else config.name


def check_conditioners(conditions: JobConditions, available: Mapping[int, tuple[ConditionerConfig, ...]]) -> None:
    """``InputError`` if the job gives a condition that no level's conditioner reads."""
    have = {reads(c) for configs in available.values() for c in configs}
    missing = [name for name in conditions.names if name not in have and name != GRID]
    if missing:
        listed = ", ".join(sorted(have)) or "none"
        raise InputError(
            f"this model has no conditioner for {', '.join(missing)} (its conditioners: {listed}): "
            "send the job without it, or use a model trained with it"
        )


def level_conditions(
    conditions: JobConditions, geometry: Geometry, configs: Mapping[int, tuple[ConditionerConfig, ...]],
    levels: tuple[int, ...], *, start: int, sample_length: int, params: SamplingParams,
    encode: StemEncoder | None = None,
) -> dict[int, LevelConditions]:  # fmt: skip
    """Per sampled level, the features of every condition a conditioner of that level reads, over the
    ``sample_length`` samples whose sample 0 is ``start`` samples before the take. The grid is used only
    where the model has a grid conditioner (the host always has a tempo map). Guidance for one level must
    name a condition that level reads; every-level guidance guides the levels that read its condition and
    must name one that some sampled level reads; otherwise an ``InputError``. ``encode`` gives the VQ-VAE
    codes of a stem for ``stem_codes`` conditioners (required when the model has one and the job that stem)."""
    check_conditioners(conditions, configs)
    rate = geometry.sample_rate
    audio_start_s = conditions.take_start_s - start / rate
    given = set(conditions.names)
    out: dict[int, LevelConditions] = {}
    for level in levels:
        features: dict[str, LevelFeatures] = {}
        hop = geometry.hops[level]
        n_frames = geometry.tokens(sample_length, level)
        for config in configs.get(level, ()):
            if reads(config) not in given:
                continue
            if config.kind == "stem_codes":
                if encode is None:
                    raise InputError(f"conditioner {config.name!r} reads VQ-VAE codes: pass the model's encoder")
                frames, coverage = _stem_codes(conditions, reads(config), level, rate, hop, audio_start_s,
                                               sample_length, encode)  # fmt: skip
            else:
                frames, coverage = _features(conditions, config, rate, hop, audio_start_s, n_frames)
            if frames.shape[1] != config.n_features:
                raise InputError(
                    f"conditioner {config.name!r} of level {level} takes {config.n_features} features per frame; "
                    f"the {config.kind} features have {frames.shape[1]}"
                )
            features[config.name] = LevelFeatures(frames, coverage)
        named = sorted(g.condition for g in params.guidance if g.level == level and g.scale != 0)
        unknown = [name for name in named if name not in features]
        if unknown:
            raise InputError(
                f"guidance for {', '.join(unknown)} at level {level}, but no conditioner of that level reads a "
                f"condition of this job by that name (level {level} has: {', '.join(features) or 'none'})"
            )
        if features:  # an every-level entry guides the levels that read its condition
            guidance = params.guidance_at(level)
            out[level] = LevelConditions(features, {k: v for k, v in guidance.items() if k in features})
    everywhere = sorted({g.condition for g in params.guidance if g.level is None and g.scale != 0})
    unread = [name for name in everywhere if not any(name in c.features for c in out.values())]
    if unread:
        read = sorted({name for c in out.values() for name in c.features})
        raise InputError(
            f"guidance for {', '.join(unread)}, but no sampled level reads a condition of this job by that name "
            f"(the levels read: {', '.join(read) or 'none'})"
        )
    return out


def _stem_codes(
    conditions: JobConditions, name: str, level: int, rate: int, hop: int, start_s: float, sample_length: int,
    encode: StemEncoder,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The stem placed on the sampled audio's timeline (mono, at the model's rate, zeros off the stem), its
    codes' codebook vectors at ``level``, and per token the share of its samples the stem covers."""
    stem = conditions.stem(name)
    conditions.analysis(name, rate, hop)  # the stem's checks (NaN, rate, channels, length) with its name
    mono = stem.samples.mean(axis=1, dtype=np.float32) if stem.samples.shape[1] > 1 else stem.samples[:, 0]
    if stem.sample_rate != rate:
        mono = soxr.resample(mono, stem.sample_rate, rate).astype(np.float32)
    offset = round((stem.start_s - start_s) * rate)  # where the stem's sample 0 falls in the sampled audio
    buffer = np.zeros(sample_length, dtype=np.float32)
    first, last = max(0, offset), min(sample_length, offset + mono.shape[0])
    covered = np.zeros(sample_length, dtype=np.float32)
    if last > first:
        buffer[first:last] = mono[first - offset : last - offset]
        covered[first:last] = 1.0
    frames = encode(buffer, level)  # (sample_length // hop, emb_width)
    coverage = covered[: frames.shape[0] * hop].reshape(-1, hop).mean(axis=1)
    return frames.astype(np.float32, copy=False), coverage.astype(np.float32)


def _features(
    conditions: JobConditions, config: ConditionerConfig, rate: int, hop: int, start_s: float, n_frames: int
) -> tuple[np.ndarray, np.ndarray]:
    if config.kind == "midi":
        assert conditions.midi is not None
        m = midi_features(conditions.midi, sample_rate=rate, hop=hop, start_s=start_s, n_frames=n_frames,
                          clip_start_s=conditions.midi_start_s)  # fmt: skip
        return m.as_matrix(), m.coverage
    if config.kind == "stem":
        stem = conditions.stem(config.name)
        s = stem_window(conditions.analysis(config.name, rate, hop), start_s=start_s, n_frames=n_frames,
                        stem_start_s=stem.start_s)  # fmt: skip
        return s.as_matrix(), s.coverage
    assert conditions.tempo is not None
    g = grid_features(conditions.tempo, sample_rate=rate, hop=hop, start_s=start_s, n_frames=n_frames)
    return g.as_matrix(), g.coverage
