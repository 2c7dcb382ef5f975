"""Per-call sampling settings (``SamplingParams``): never stored on a model.

Values are checked when the object is made, so a bad option fails before any model work starts,
with a message that names the option and its allowed range.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from common.errors import InputError

PRECISIONS = ("auto", "fp32", "bf16")  # chosen where the model is loaded; auto: see model/sampling/precision.py
DEFAULT_TEMPERATURE = 0.99
MIN_TEMPERATURE = 0.01  # logits / 1e-30 overflow to inf (NaN probabilities); 0.01 is already all but greedy
MAX_TEMPERATURE = 10.0
DEFAULT_HOP_FRACTION_LOWER = 0.5  # upsampler levels: half a window of new tokens per window
DEFAULT_HOP_FRACTION_TOP = 0.125  # top level: 1/8 of a window of new tokens per window
MAX_GUIDANCE = 20.0


@dataclass(frozen=True)
class Guidance:
    """Classifier-free guidance of one condition (``midi``, ``grid`` or a stem's name): ``scale`` 0 is no
    guidance (exactly the conditioned logits), s > 0 pushes the logits away from those without the condition
    by s times their difference. ``level``: the prior level it applies to; ``None`` for every level."""

    condition: str
    scale: float
    level: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "scale", float(self.scale))
        if not -1.0 <= self.scale <= MAX_GUIDANCE:  # -1 removes the condition's effect entirely
            raise InputError(
                f"guidance scale {self.scale} for {self.condition!r} is out of range: use -1 to {MAX_GUIDANCE:g} "
                "(0 = no guidance; 1 to 3 is usual)"
            )
        if self.level is not None and not 0 <= self.level <= 7:
            raise InputError(f"guidance level {self.level} for {self.condition!r} is out of range 0..7")


_GUIDANCE = re.compile(r"([a-z][a-z0-9_]{0,31})(?:@([0-7]))?=(.+)")


def parse_guidance(text: str) -> Guidance:
    """``NAME=SCALE`` (every level) or ``NAME@LEVEL=SCALE``, as ``segue sample --guidance`` and the protocol's
    ``condition_guidance`` write it: ``midi=2``, ``drums@2=1.5``."""
    m = _GUIDANCE.fullmatch(text.strip())
    if m is None:
        raise InputError(
            f"guidance {text[:60]!r} is not NAME=SCALE or NAME@LEVEL=SCALE (for example midi=2 or drums@2=1.5)"
        )
    try:
        scale = float(m.group(3))
    except ValueError:
        raise InputError(f"guidance {text[:60]!r}: scale {m.group(3)[:20]!r} is not a number") from None
    if not math.isfinite(scale):
        raise InputError(f"guidance {text[:60]!r}: the scale must be a finite number")
    return Guidance(m.group(1), scale, None if m.group(2) is None else int(m.group(2)))


def _as_tuple(value: float | int | tuple | list, name: str) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) == 0:
            raise InputError(f"{name} needs at least one value")
        return tuple(value)
    return (value,)


@dataclass(frozen=True)
class SamplingParams:
    """How to sample: one object per request.

    ``temperature`` and ``hop_fraction`` take one value for every level or one value per level,
    level 0 (bottom) first. ``hop_fraction=()`` means 0.5 for the upsampler levels and 0.125 for the
    top level. Candidate ``i`` uses ``seeds[i]`` if ``seeds`` is given, else ``seed + i``; a candidate's
    tokens depend only on its seed, never on which other candidates share its batch.
    """

    temperature: tuple[float, ...] = (DEFAULT_TEMPERATURE,)
    top_k: int = 0  # 0 = off; keep only the k most likely tokens
    top_p: float = 0.0  # 0 = off; keep the smallest set of tokens whose probability reaches p
    n_candidates: int = 1
    max_batch_size: int = 16
    chunk_size: int = 32  # context tokens fed to the model per step when refilling the cache
    seed: int = 0
    seeds: tuple[int, ...] = ()
    hop_fraction: tuple[float, ...] = ()
    precision: str = "auto"  # auto: keep what the model was loaded in; fp32/bf16: see JukeboxLevel.use_precision
    progress_every: int = 8  # report progress at least every this many tokens
    guidance: tuple[Guidance, ...] = ()  # classifier-free guidance per condition (and level)

    def __post_init__(self) -> None:
        object.__setattr__(self, "temperature", tuple(float(t) for t in _as_tuple(self.temperature, "temperature")))
        hop = () if self.hop_fraction in ((), [], None) else _as_tuple(self.hop_fraction, "hop fraction")
        object.__setattr__(self, "hop_fraction", tuple(float(h) for h in hop))
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        object.__setattr__(
            self, "guidance", tuple(g if isinstance(g, Guidance) else Guidance(**g) for g in self.guidance)
        )
        for t in self.temperature:
            if not MIN_TEMPERATURE <= t <= MAX_TEMPERATURE:
                raise InputError(f"temperature {t} is out of range: use a value from {MIN_TEMPERATURE:g} to {MAX_TEMPERATURE:g} (0.99 is usual)")
        for h in self.hop_fraction:
            if not 0.0 < h <= 1.0:
                raise InputError(
                    f"hop fraction {h} is out of range: use a value above 0 and at most 1 "
                    "(the share of each window that is new music; 0.5 for upsamplers, 0.125 for the top level)"
                )
        if self.top_k < 0:
            raise InputError(f"top-k {self.top_k} is out of range: use 0 (off) or a positive number of tokens")
        if not 0.0 <= self.top_p <= 1.0:
            raise InputError(f"top-p {self.top_p} is out of range: use 0 (off) or a probability up to 1")
        if self.top_k > 0 and self.top_p > 0.0:
            raise InputError("top-k and top-p cannot be used together: set only one of them (the other to 0)")
        if self.n_candidates < 1:
            raise InputError(f"candidates {self.n_candidates} is out of range: use at least 1")
        if self.seeds and len(self.seeds) != self.n_candidates:
            raise InputError(f"{len(self.seeds)} seeds were given for {self.n_candidates} candidates: give one per candidate")
        if self.max_batch_size < 1:
            raise InputError(f"max batch size {self.max_batch_size} is out of range: use at least 1")
        if self.chunk_size < 1:
            raise InputError(f"chunk size {self.chunk_size} is out of range: use at least 1")
        if self.progress_every < 1:
            raise InputError(f"progress interval {self.progress_every} is out of range: use at least 1 token")
        if self.precision not in PRECISIONS:
            raise InputError(f"precision {self.precision!r} is not known: use one of {', '.join(PRECISIONS)}")

    def candidate_seeds(self) -> tuple[int, ...]:
        return self.seeds if self.seeds else tuple(self.seed + i for i in range(self.n_candidates))

    def temperature_at(self, level: int, n_levels: int) -> float:
        return self.temperature[0] if len(self.temperature) == 1 else self._per_level(self.temperature, "temperature", level, n_levels)

    def guidance_at(self, level: int) -> dict[str, float]:
        """Condition name -> guidance scale at ``level`` (a level-specific entry wins over an every-level one)."""
        out: dict[str, float] = {}
        for g in sorted(self.guidance, key=lambda g: g.level is not None):
            if g.level is None or g.level == level:
                out[g.condition] = g.scale
        return out

    def hop_fraction_at(self, level: int, n_levels: int) -> float:
        if not self.hop_fraction:
            return DEFAULT_HOP_FRACTION_TOP if level == n_levels - 1 else DEFAULT_HOP_FRACTION_LOWER
        if len(self.hop_fraction) == 1:
            return self.hop_fraction[0]
        return self._per_level(self.hop_fraction, "hop fraction", level, n_levels)

    @staticmethod
    def _per_level(values: tuple[float, ...], name: str, level: int, n_levels: int) -> float:
        if len(values) != n_levels:
            raise InputError(
                f"{len(values)} {name} values were given for a model with {n_levels} levels: "
                f"give one value, or one per level (level 0 first)"
            )
        return values[level]

    def to_dict(self) -> dict:
        return {
            "temperature": list(self.temperature),
            "top_k": self.top_k,
            "top_p": self.top_p,
            "n_candidates": self.n_candidates,
            "max_batch_size": self.max_batch_size,
            "chunk_size": self.chunk_size,
            "seed": self.seed,
            "seeds": list(self.candidate_seeds()),
            "hop_fraction": list(self.hop_fraction),
            "precision": self.precision,
            "progress_every": self.progress_every,
            "guidance": [{"condition": g.condition, "scale": g.scale, "level": g.level} for g in self.guidance],
        }

    @classmethod
    def from_dict(cls, data: dict) -> SamplingParams:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("temperature", "seeds", "hop_fraction", "guidance"):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)

