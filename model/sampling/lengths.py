"""Length arithmetic: seconds <-> samples <-> tokens per level, and the checks that go with it.

Audio lengths are whole multiples of the top level's hop (one top token), rounded down, as in
Jukebox. Every check raises ``InputError`` naming the value and the allowed range.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from common.errors import InputError


@dataclass(frozen=True)
class Geometry:
    """What sampling needs to know about a model's levels. Level 0 (bottom) first."""

    sample_rate: int
    hops: tuple[int, ...]  # audio samples per token at each level
    n_ctx: tuple[int, ...]  # tokens in one window of each level's prior
    min_duration: float = 0.0  # seconds: range of the top prior's total-length label
    max_duration: float = math.inf

    @property
    def n_levels(self) -> int:
        return len(self.hops)

    @property
    def top_hop(self) -> int:
        return self.hops[-1]

    def tokens(self, samples: int, level: int) -> int:
        return samples // self.hops[level]

    def seconds(self, samples: int) -> float:
        return samples / self.sample_rate

    def min_upsample_samples(self, levels: tuple[int, ...] | list[int]) -> int:
        """Shortest audio (samples, a multiple of the top hop) for which every lower level in ``levels`` fills a window."""
        need = max((self.n_ctx[lv] * self.hops[lv] for lv in levels if lv < self.n_levels - 1), default=self.top_hop)
        return -(-need // self.top_hop) * self.top_hop


def samples_from_seconds(seconds: float, geometry: Geometry, what: str = "length") -> int:
    """Seconds → samples, rounded down to a whole top-level token; at least one token."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"{what} {seconds} s is not a positive number of seconds")
    samples = int(seconds * geometry.sample_rate) // geometry.top_hop * geometry.top_hop
    if samples < geometry.top_hop:
        raise InputError(
            f"{what} {seconds} s is too short: use at least {geometry.seconds(geometry.top_hop):.4f} s (one top-level token)"
        )
    return samples


def take_samples(seconds: float, geometry: Geometry, what: str = "length") -> int:
    """A take's length, seconds → samples at the model's rate (not rounded to tokens: tasks cut takes exactly);
    it must be a finite, positive number of seconds and at least one sample."""
    if not math.isfinite(seconds) or seconds <= 0:
        raise InputError(f"{what} {seconds} s is not a positive number of seconds")
    samples = int(round(seconds * geometry.sample_rate))
    if samples < 1:
        raise InputError(f"{what} {seconds} s is shorter than one sample at {geometry.sample_rate} Hz")
    return samples


def label_samples(seconds: float, geometry: Geometry, what: str = "total length") -> int:
    """Seconds → samples for a label (song length, offset): not rounded to tokens, must be finite and >= 0."""
    if not math.isfinite(seconds) or seconds < 0:
        raise InputError(f"{what} {seconds} s is not a number of seconds of 0 or more")
    return int(round(seconds * geometry.sample_rate))


def check_upsampling(samples: int, geometry: Geometry, levels: tuple[int, ...] | list[int]) -> None:
    """Upsampling a level needs at least one full window of it (its conditioning is one window of the level above)."""
    need = geometry.min_upsample_samples(levels)
    if samples < need:
        raise InputError(
            f"length {geometry.seconds(samples):.2f} s is too short to upsample: each upsampler needs at least one full "
            f"window, so use a length of at least {geometry.seconds(need):.2f} s"
        )


def check_total_length(total_samples: int, samples: int, geometry: Geometry, offset_samples: int = 0) -> None:
    """The song length label must lie in the top prior's range and cover the offset plus the sampled audio."""
    total_s = geometry.seconds(total_samples)
    if not geometry.min_duration <= total_s < geometry.max_duration:
        raise InputError(
            f"total length {total_s:.2f} s is outside the range this model was trained on: "
            f"use at least {geometry.min_duration:.2f} s and less than {geometry.max_duration:.2f} s"
        )
    if offset_samples < 0:
        raise InputError(f"offset {geometry.seconds(offset_samples):.2f} s is negative: use 0 s or more")
    if offset_samples + samples > total_samples:
        raise InputError(
            f"total length {total_s:.2f} s is shorter than offset + length = "
            f"{geometry.seconds(offset_samples + samples):.2f} s: use a total length of at least that"
        )


def default_total_samples(samples: int, geometry: Geometry, offset_samples: int = 0) -> int:
    """The song length label when none is given: the audio's end, raised to the model's minimum if needed."""
    least = math.ceil(geometry.min_duration * geometry.sample_rate)
    return max(offset_samples + samples, least)


def prime_samples_from_seconds(seconds: float, samples: int, geometry: Geometry) -> int:
    """Prime length in samples, rounded down to a whole top-level token; it must leave something to sample."""
    prime = samples_from_seconds(seconds, geometry, what="prime length")
    if prime >= samples:
        raise InputError(
            f"prime length {geometry.seconds(prime):.2f} s leaves nothing to sample: use less than the length "
            f"({geometry.seconds(samples):.2f} s)"
        )
    return prime
