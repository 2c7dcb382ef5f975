"""Typed results of a sampling run."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from model.sampling.params import SamplingParams


@dataclass(frozen=True)
class LevelTiming:
    """Wall time of one level; ``new_tokens`` counts tokens sampled over all candidates."""

    level: int
    seconds: float
    new_tokens: int
    windows: int

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict:
        return {
            "level": self.level,
            "seconds": round(self.seconds, 4),
            "new_tokens": self.new_tokens,
            "windows": self.windows,
            "tokens_per_second": round(self.tokens_per_second, 2),
        }


@dataclass(frozen=True)
class SampleResult:
    """Codes of every level (level 0 first), candidate ``i`` in row ``i``; empty levels have 0 tokens."""

    mode: str
    codes: tuple[Tensor, ...]  # per level: (n_candidates, tokens) int64
    sample_length: int  # audio samples the codes cover
    seeds: tuple[int, ...]
    params: SamplingParams
    timings: tuple[LevelTiming, ...]

    @property
    def n_candidates(self) -> int:
        return len(self.seeds)

    def candidate(self, index: int) -> tuple[Tensor, ...]:
        """Codes of one candidate, per level: (tokens,) each."""
        return tuple(c[index] for c in self.codes)

    def to_dict(self) -> dict:
        """Everything but the codes, JSON-safe (for the run record)."""
        return {
            "mode": self.mode,
            "sample_length": self.sample_length,
            "tokens_per_level": [int(c.shape[1]) for c in self.codes],
            "seeds": list(self.seeds),
            "params": self.params.to_dict(),
            "timings": [t.to_dict() for t in self.timings],
        }
