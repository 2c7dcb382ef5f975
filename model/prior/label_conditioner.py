"""Jukebox's label conditioner (``y_emb`` of every prior): artist + genre start embedding and time signal.

Mounted as ``y_emb`` in a prior its state-dict keys equal the official checkpoints':
``y_emb.artist_emb.emb.weight``, ``y_emb.bow_genre_emb.emb.weight`` and, for top priors,
``y_emb.{total_length,absolute_pos,relative_pos}_emb.emb.weight``.
Input is the int64 label vector of :mod:`conditioning.labels` (only its first 4 + G columns are read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import torch
from torch import nn

from common.errors import ConfigError, InputError
from model.prior import presets
from model.prior.prior_config import PriorConfig


@dataclass(frozen=True)
class LabelConditionerConfig:
    """y_bins: (genre ids, artist ids); t_bins: bins of each time embedding; n_ctx, hop: the prior's window in
    tokens and samples per token; min/max_duration: seconds (needed with the time signal); width: prior width."""

    y_bins: tuple[int, int]
    t_bins: int
    max_bow_genre_size: int
    include_time_signal: bool
    width: int
    n_ctx: int
    hop: int
    sr: int = 44100
    min_duration: float | None = None
    max_duration: float | None = None
    init_scale: float = 1.0

    def __post_init__(self) -> None:
        if len(self.y_bins) != 2 or min(self.y_bins) < 1:
            raise ConfigError(f"y_bins must be (genre ids, artist ids), both >= 1, got {self.y_bins}")
        if self.include_time_signal:
            if self.min_duration is None or self.max_duration is None:
                raise ConfigError("a label conditioner with a time signal needs min_duration and max_duration")
            if not 0 <= self.min_duration < self.max_duration:
                raise ConfigError(
                    f"need 0 <= min_duration < max_duration, got {self.min_duration} and {self.max_duration}"
                )
        object.__setattr__(self, "y_bins", (int(self.y_bins[0]), int(self.y_bins[1])))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelConditionerConfig:
        return cls(**{**data, "y_bins": tuple(data["y_bins"])})

    @classmethod
    def from_jukebox_hps(cls, hps: Mapping[str, Any], include_time_signal: bool, hop: int) -> LabelConditionerConfig:
        """From Jukebox hyper-parameter names (``prior_width``, ``y_bins``, ...); ``include_time_signal`` is
        True for top priors (no upsampler conditioning), ``hop`` the level's samples per token."""
        return cls(
            y_bins=tuple(hps["y_bins"]),  # type: ignore[arg-type]
            t_bins=int(hps["t_bins"]),
            max_bow_genre_size=int(hps["max_bow_genre_size"]),
            include_time_signal=include_time_signal,
            width=int(hps["prior_width"]),
            n_ctx=int(hps["n_ctx"]),
            hop=hop,
            sr=int(hps.get("sr", 44100)),
            min_duration=hps.get("min_duration") if include_time_signal else None,
            max_duration=hps.get("max_duration") if include_time_signal else None,
            init_scale=float(hps.get("init_scale", 1.0)),
        )

    def to_jukebox_hps(self) -> dict[str, Any]:
        hps: dict[str, Any] = dict(
            y_bins=self.y_bins,
            t_bins=self.t_bins,
            max_bow_genre_size=self.max_bow_genre_size,
            prior_width=self.width,
            n_ctx=self.n_ctx,
            sr=self.sr,
            init_scale=self.init_scale,
        )
        if self.include_time_signal:
            hps.update(min_duration=self.min_duration, max_duration=self.max_duration)
        return hps


def label_conditioner_config(c: PriorConfig) -> LabelConditionerConfig:
    """``y_emb``: start embedding for every prior, time signal only for the top prior."""
    labels = c.labels
    return LabelConditionerConfig(
        y_bins=labels.y_bins, t_bins=labels.t_bins, max_bow_genre_size=labels.max_bow_genre_size,
        include_time_signal=c.time_signal,
        width=c.transformer.width, n_ctx=c.n_ctx, hop=c.hop_length, sr=labels.sample_rate,
        min_duration=labels.min_duration if c.time_signal else None,
        max_duration=labels.max_duration if c.time_signal else None,
        init_scale=c.transformer.init_scale,
    )  # fmt: skip


# The label conditioners of the released priors, from their presets (shapes checked against the official
# state dicts in tests/model/prior/test_label_conditioner.py).
JUKEBOX_LABEL_CONDITIONERS: dict[str, LabelConditionerConfig] = {
    name: label_conditioner_config(preset())
    for name, preset in (
        ("upsampler_level_0", presets.upsampler_level_0),
        ("upsampler_level_1", presets.upsampler_level_1),
        ("5b", presets.prior_5b),
        ("5b_lyrics", presets.prior_5b_lyrics),
        ("1b_lyrics", presets.prior_1b_lyrics),
    )
}


class SimpleEmbedding(nn.Module):
    """An id → vector table (key ``emb.weight``), initialised N(0, 0.01·init_scale)."""

    def __init__(self, bins: int, width: int, init_scale: float = 1.0) -> None:
        super().__init__()
        self.bins = bins
        self.emb = nn.Embedding(bins, width)
        nn.init.normal_(self.emb.weight, std=0.01 * init_scale)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (N, K) int64 in [0, bins) → (N, K, width)."""
        if ids.numel() and not bool(((ids >= 0) & (ids < self.bins)).all()):
            raise InputError(f"label id out of range 0..{self.bins - 1}: got {ids.tolist()}")
        return self.emb(ids)  # (N, K, W)


class RangeEmbedding(nn.Module):
    """Bins a value (or ``n_time`` values interpolated from start to end) of ``[lo, hi)`` into ``bins`` embeddings.

    bin = floor(bins·(v − lo)/(hi − lo)); position i of n_time is start + (end − start)·i/n_time. With ``clamp``
    the end is clamped into [lo, hi] first (relative position); the start must lie in [lo, hi), the end in [lo, hi].
    """

    def __init__(self, n_time: int, bins: int, lo: float, hi: float, width: int, init_scale: float = 1.0,
                 clamp: bool = False) -> None:
        super().__init__()
        self.n_time, self.bins, self.lo, self.hi, self.clamp = n_time, bins, lo, hi, clamp
        self.emb = nn.Embedding(bins, width)
        nn.init.normal_(self.emb.weight, std=0.01 * init_scale)

    def _out_of_range(self, what: str, values: torch.Tensor, closed: bool) -> InputError:
        bracket = "]" if closed else ")"
        return InputError(f"{what} {values.flatten().tolist()} outside the embedding range [{self.lo:g}, {self.hi:g}{bracket}")

    def forward(self, start: torch.Tensor, end: torch.Tensor | None = None) -> torch.Tensor:
        """start, end (N, 1) → (N, n_time, width); ``end`` is required when n_time > 1."""
        start = start.float()  # (N, 1)
        if not bool(((start >= self.lo) & (start < self.hi)).all()):
            raise self._out_of_range("start", start, closed=False)
        if self.n_time == 1:
            position = start  # (N, 1)
        else:
            if end is None:
                raise ValueError("RangeEmbedding over several positions needs an end")
            end = end.float()  # (N, 1)
            if self.clamp:
                end = end.clamp(self.lo, self.hi)
            if not bool(((end >= self.lo) & (end <= self.hi)).all()):
                raise self._out_of_range("end", end, closed=True)
            steps = torch.arange(self.n_time, dtype=torch.float32, device=start.device).view(1, -1) / self.n_time
            position = start + (end - start) * steps  # (N, n_time)
        fraction = (position - self.lo) / (self.hi - self.lo)  # (N, n_time) in [0, 1)
        bins = (self.bins * fraction).floor().long()  # (N, n_time)
        return self.emb(bins)  # (N, n_time, W)


class LabelEmbedding(NamedTuple):
    """start: (N, 1, W) artist + genre embedding for position 0; positions: (N, n_ctx, W) time signal or None."""

    start: torch.Tensor
    positions: torch.Tensor | None


class LabelConditioner(nn.Module):
    """Label vector → (start embedding, per-position time embedding), exactly as Jukebox's ``y_emb``."""

    def __init__(self, config: LabelConditionerConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        n_genres, n_artists = c.y_bins
        self.bow_genre_emb = SimpleEmbedding(n_genres, c.width, c.init_scale)
        self.artist_emb = SimpleEmbedding(n_artists, c.width, c.init_scale)
        if c.include_time_signal:
            lo, hi = (c.min_duration or 0.0) * c.sr, (c.max_duration or 0.0) * c.sr  # both set: see the config
            self.total_length_emb = RangeEmbedding(1, c.t_bins, lo, hi, c.width, c.init_scale)
            self.absolute_pos_emb = RangeEmbedding(c.n_ctx, c.t_bins, 0.0, hi, c.width, c.init_scale)
            self.relative_pos_emb = RangeEmbedding(c.n_ctx, c.t_bins, 0.0, 1.0, c.width, c.init_scale, clamp=True)

    def forward(self, y: torch.Tensor) -> LabelEmbedding:
        """y (N, >= 4 + G) int64 = [total_length, offset, sample_length, artist, genre × G, ...]."""
        g = self.config.max_bow_genre_size
        if y.dim() != 2 or y.shape[1] < 4 + g:
            raise InputError(f"label vector must have shape (N, >= {4 + g}), got {tuple(y.shape)}")
        total_length, offset, length = y[:, 0:1], y[:, 1:2], y[:, 2:3]  # (N, 1) each
        artist, genres = y[:, 3:4], y[:, 4 : 4 + g]  # (N, 1), (N, G)
        if not bool((genres >= -1).all()):
            raise InputError(f"genre ids must be >= -1 (−1 = empty slot), got {genres.tolist()}")
        genre_emb = self.bow_genre_emb(genres.clamp(min=0))  # (N, G, W)
        present = (genres >= 0).unsqueeze(-1).to(genre_emb.dtype)  # (N, G, 1)
        start = self.artist_emb(artist) + (genre_emb * present).sum(dim=1, keepdim=True)  # (N, 1, W)
        if not self.config.include_time_signal:
            return LabelEmbedding(start, None)
        total, begin, end = total_length.float(), offset.float(), (offset + length).float()  # (N, 1) each
        positions = (
            self.total_length_emb(total)  # (N, 1, W)
            + self.absolute_pos_emb(begin, end)  # (N, n_ctx, W)
            + self.relative_pos_emb(begin / total, end / total)  # (N, n_ctx, W)
        )
        return LabelEmbedding(start, positions)
