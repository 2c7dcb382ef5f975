"""The parts a ``PriorConfig`` is made of: its transformer, labels, lyrics, upsampler conditioner and the
VQ-VAE geometry it models. Each is a small frozen dataclass that checks its own fields (``validate``);
checks that need two parts (alignment layer < depth, blocks divide the sequence) live in ``prior_config``.

The parts do not validate on construction: they are only meaningful inside a ``PriorConfig``, which names
the part in every error (``lyrics.encoder.width must be ...``) and skips the parts a prior does not use
(the lyrics encoder of a prior without separate lyrics, the conditioner of a top prior).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from common.errors import ConfigError

LYRICS_KINDS = ("none", "separate", "merged")
ATTN_ORDERS = range(13)  # spec 3.3: layouts 0..12


def check(ok: bool, message: str) -> None:
    """Raise ``ConfigError("prior config: <message>")`` unless ``ok``."""
    if not ok:
        raise ConfigError(f"prior config: {message}")


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _positive_ints(obj: object, where: str, names: tuple[str, ...]) -> None:
    for name in names:
        v = getattr(obj, name)
        check(is_int(v) and v > 0, f"{where}{name} must be a positive integer, got {v!r}")


def _non_negative(obj: object, where: str, names: tuple[str, ...]) -> None:
    for name in names:
        v = getattr(obj, name)
        check(is_int(v) or isinstance(v, float), f"{where}{name} must be a number, got {v!r}")
        check(v >= 0, f"{where}{name} must be >= 0, got {v!r}")


def _bools(obj: object, where: str, names: tuple[str, ...]) -> None:
    for name in names:
        v = getattr(obj, name)
        check(isinstance(v, bool), f"{where}{name} must be true or false, got {v!r}")


@dataclass(frozen=True)
class TransformerSpec:
    """Hyper-parameters of one transformer stack (the prior's, or the 5b_lyrics lyrics encoder's).

    The stored half of ``model.prior.config.TransformerConfig``: the prior derives the sequence length,
    encoder width and prime length from the other parts when it builds the stack.
    """

    width: int
    depth: int
    heads: int
    attn_order: int  # factorised-attention layout 0..12 (spec 3.3)
    init_scale: float
    blocks: int | None = None  # the sequence is blocks x block_ctx for block attention
    m_attn: float = 0.25  # attention width = m_attn * width
    m_mlp: float = 1.0

    def validate(self, where: str) -> None:
        _positive_ints(self, where, ("width", "depth", "heads"))
        _non_negative(self, where, ("init_scale", "m_attn", "m_mlp"))
        check(self.attn_order in ATTN_ORDERS, f"{where}attn_order must be in 0..12, got {self.attn_order!r}")
        check(
            self.blocks is None or (is_int(self.blocks) and self.blocks > 0),
            f"{where}blocks must be a positive integer or null, got {self.blocks!r}",
        )
        n_state = self.width * self.m_attn
        check(
            n_state == int(n_state) and int(n_state) % self.heads == 0,
            f"{where}attention width m_attn*width = {n_state} must be an integer divisible by heads={self.heads}",
        )


# Jukebox's hparams DEFAULTS for the lyrics encoder (prime_*), used by priors without one.
JUKEBOX_ENCODER = TransformerSpec(width=128, depth=3, heads=1, attn_order=0, init_scale=1.0)


@dataclass(frozen=True)
class LabelsConfig:
    """Artist, genre and timing labels of a top prior (and the upsamplers' copies, which ignore them)."""

    enabled: bool = True
    v3: bool = False  # v3 label set (1b_lyrics): one genre, 79-character vocabulary
    y_bins: tuple[int, int] = (120, 4111)  # (genres, artists)
    t_bins: int = 128  # timing embedding bins
    max_bow_genre_size: int = 5  # genres per song in the bag-of-words label
    min_duration: float = 0.0  # seconds: the range the total-length embedding covers
    max_duration: float = 600.0
    sample_rate: int = 44100

    @property
    def n_labels(self) -> int:
        """Label integers before the lyric tokens in a label vector: 4 + max_bow_genre_size."""
        return 4 + self.max_bow_genre_size

    def validate(self, where: str) -> None:
        _bools(self, where, ("enabled", "v3"))
        _positive_ints(self, where, ("t_bins", "sample_rate", "max_bow_genre_size"))
        _non_negative(self, where, ("min_duration", "max_duration"))
        check(
            len(self.y_bins) == 2 and all(is_int(v) and v > 0 for v in self.y_bins),
            f"{where}y_bins must be (genres, artists) positive ints, got {self.y_bins!r}",
        )
        check(
            self.max_duration > self.min_duration,
            f"{where}max_duration {self.max_duration} must exceed min_duration {self.min_duration}",
        )


@dataclass(frozen=True)
class LyricsConfig:
    """How a top prior reads lyrics: not at all, through a separate encoder (5b_lyrics, cross-attention),
    or merged in front of the music in one sequence (1b_lyrics). ``alignment_*`` name the attention head
    whose weights align lyrics to music."""

    kind: str = "none"  # "none" | "separate" | "merged"
    n_tokens: int = 0  # lyric tokens per window
    n_vocab: int = 80  # lyric characters (v2 80, v3 79)
    loss_fraction: float = 0.0  # weight of the lyrics (prime) loss in training (Jukebox prime_loss_fraction)
    encoder: TransformerSpec = JUKEBOX_ENCODER  # used when kind == "separate"
    alignment_layer: int | None = None
    alignment_head: int | None = None

    def validate(self, where: str) -> None:
        check(self.kind in LYRICS_KINDS, f"{where}kind must be one of {LYRICS_KINDS}, got {self.kind!r}")
        check(
            is_int(self.n_tokens) and self.n_tokens >= 0,
            f"{where}n_tokens must be >= 0, got {self.n_tokens!r}",
        )
        check(
            (self.kind == "none") == (self.n_tokens == 0),
            f"lyrics kind {self.kind!r} needs n_tokens > 0 exactly when it is not 'none' (got n_tokens={self.n_tokens})",
        )
        check(
            is_int(self.n_vocab) and (self.n_vocab > 0 or self.kind == "none"),
            f"{where}n_vocab must be a positive integer for a lyrics prior, got {self.n_vocab!r}",
        )
        _non_negative(self, where, ("loss_fraction",))
        if self.kind == "separate":
            self.encoder.validate(f"{where}encoder.")
            blocks = self.encoder.blocks
            check(
                blocks is None or self.n_tokens % blocks == 0,
                f"{where}encoder.blocks must be null or a divisor of n_tokens={self.n_tokens}, got {blocks!r}",
            )


@dataclass(frozen=True)
class UpsamplerConfig:
    """The conditioner of an upsampler (levels below the top): a dilated conv stack over the upper codes.
    Defaults are Jukebox's (cond_*); a top prior carries them unused."""

    width: int = 128
    depth: int = 3
    m_conv: float = 1.0
    dilation_growth_rate: int = 1
    dilation_cycle: int | None = None
    res_scale: bool = False  # True: residual branches scaled by 1/sqrt(depth) (0.25 for depth 16)

    def validate(self, where: str) -> None:
        _positive_ints(self, where, ("width", "depth", "dilation_growth_rate"))
        _non_negative(self, where, ("m_conv",))
        _bools(self, where, ("res_scale",))
        check(
            self.dilation_cycle is None or (is_int(self.dilation_cycle) and self.dilation_cycle > 0),
            f"{where}dilation_cycle must be a positive integer or null, got {self.dilation_cycle!r}",
        )


@dataclass(frozen=True)
class GeometryConfig:
    """The hop structure of the VQ-VAE whose codes the prior models (bottom level first)."""

    downs_t: tuple[int, ...] = (3, 2, 2)
    strides_t: tuple[int, ...] = (2, 2, 2)

    @property
    def levels(self) -> int:
        return len(self.downs_t)

    def downsample(self, level: int) -> int:
        """Codes of level ``level - 1`` per code of ``level`` (4 for the released VQ-VAE's upper levels)."""
        return int(self.strides_t[level] ** self.downs_t[level])

    def hop_length(self, level: int) -> int:
        """Audio samples per code of ``level`` (8, 32, 128 for the released VQ-VAE)."""
        return math.prod(self.downsample(lv) for lv in range(level + 1))

    def validate(self, where: str) -> None:
        check(
            len(self.downs_t) == len(self.strides_t)
            and len(self.downs_t) >= 1
            and all(is_int(v) and v >= 0 for v in self.downs_t)
            and all(is_int(v) and v >= 1 for v in self.strides_t),
            f"{where}downs_t {self.downs_t} / strides_t {self.strides_t} must be equal-length lists of "
            "non-negative / positive ints",
        )


# ---- serialisation of one part ---------------------------------------------------------------------------
Part = TypeVar("Part", TransformerSpec, LabelsConfig, LyricsConfig, UpsamplerConfig, GeometryConfig)


def part_to_dict(part: object) -> dict[str, Any]:
    """JSON-safe dict of a part (tuples become lists, nested parts dicts)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(part):  # type: ignore[arg-type]
        v = getattr(part, f.name)
        out[f.name] = (
            part_to_dict(v) if dataclasses.is_dataclass(v) else list(v) if isinstance(v, tuple) else v
        )
    return out


def part_from_dict(cls: type[Part], data: Any, where: str) -> Part:
    """Inverse of ``part_to_dict``; unknown or missing keys raise ``ConfigError`` naming the part."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"prior config: {where} must be a mapping, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"prior config: {where} has unknown keys {unknown}; allowed: {sorted(names)}")
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    if cls is LyricsConfig and "encoder" in kwargs:
        kwargs["encoder"] = part_from_dict(TransformerSpec, kwargs["encoder"], f"{where}.encoder")
    try:
        return cls(**kwargs)
    except TypeError as e:  # missing required keys
        raise ConfigError(f"prior config: {where}: {e}") from None
