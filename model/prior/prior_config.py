"""``PriorConfig``: every hyper-parameter of one Jukebox prior (spec 3.1), in one frozen dataclass.

A prior generates the codes of one VQ-VAE level. The top prior (level 2) is conditioned on labels
(artist, genre, timing) and optionally lyrics; the upsamplers (levels 1 and 0) are conditioned on the codes
of the level above. ``to_dict``/``from_dict`` are our checkpoint format (JSON-safe);
OpenAI Jukebox's hyper-parameter names are translated in ``model/checkpoint/jukebox_hps.py``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import ConfigError

LYRICS_MODELS = ("none", "separate", "merged")
ATTN_ORDERS = range(13)  # spec 3.3: layouts 0..12


@dataclass(frozen=True)
class PriorConfig:
    """One prior. Widths and depths are the transformer's; ``cond_*`` the upsampler conditioner's;
    ``prime_*`` the 5b_lyrics lyrics encoder's ("prime prior"); ``downs_t``/``strides_t`` the VQ-VAE's."""

    level: int
    n_ctx: int  # music tokens per window
    width: int
    depth: int
    heads: int
    attn_order: int
    blocks: int
    init_scale: float
    m_attn: float = 0.25
    m_mlp: float = 1.0
    n_bins: int = 2048  # music codebook size (Jukebox: l_bins)
    merged_decoder: bool = False  # True: x_out not tied to x_emb and x_cond not re-added after the transformer
    fp16_params: bool = False  # Conv1D weights of the transformer(s) stored in float16 (5b, 5b_lyrics)
    # labels (artist, genre, timing)
    labels: bool = True
    labels_v3: bool = False
    y_bins: tuple[int, int] = (120, 4111)  # (genres, artists)
    t_bins: int = 128
    max_bow_genre_size: int = 5
    min_duration: float = 0.0  # seconds
    max_duration: float = 600.0  # seconds
    sample_rate: int = 44100
    # lyrics
    lyrics: str = "none"  # "none" | "separate" (5b_lyrics encoder) | "merged" (1b_lyrics single sequence)
    n_tokens: int = 0  # lyric tokens per window
    n_vocab: int = 80  # lyric characters (v2 80, v3 79)
    prime_loss_fraction: float = 0.0
    prime_width: int = 128  # prime_* and cond_* defaults are Jukebox's hparams DEFAULTS
    prime_depth: int = 3
    prime_heads: int = 1
    prime_attn_order: int = 0
    prime_blocks: int | None = None
    prime_init_scale: float = 1.0
    prime_m_attn: float = 0.25
    prime_m_mlp: float = 1.0
    alignment_layer: int | None = None
    alignment_head: int | None = None
    # upsampler conditioner (levels below the top)
    cond_width: int = 128
    cond_depth: int = 3
    cond_m_conv: float = 1.0
    cond_dilation_growth_rate: int = 1
    cond_dilation_cycle: int | None = None
    cond_res_scale: bool = False  # True: residual branches scaled by 1/sqrt(cond_depth) (0.25 for depth 16)
    # VQ-VAE geometry (bottom level first)
    downs_t: tuple[int, ...] = (3, 2, 2)
    strides_t: tuple[int, ...] = (2, 2, 2)

    def __post_init__(self) -> None:
        _validate(self)

    # ---- derived sizes -------------------------------------------------------------------------------
    @property
    def levels(self) -> int:
        return len(self.downs_t)

    @property
    def is_upsampler(self) -> bool:
        """True for levels below the top: conditioned on the codes of the level above."""
        return self.level < self.levels - 1

    @property
    def time_signal(self) -> bool:
        """Top priors with labels get total-length/position embeddings as x_cond."""
        return self.labels and not self.is_upsampler

    @property
    def hop_length(self) -> int:
        """Audio samples per code of this level (8, 32, 128 for the released VQ-VAE)."""
        return math.prod(s**d for s, d in zip(self.strides_t[: self.level + 1], self.downs_t[: self.level + 1]))

    @property
    def cond_downsample(self) -> int:
        """Codes of this level per code of the level above (4); 0 for the top prior."""
        if not self.is_upsampler:
            return 0
        return int(self.strides_t[self.level + 1] ** self.downs_t[self.level + 1])

    @property
    def sample_length(self) -> int:
        """Audio samples covered by one window of n_ctx codes."""
        return self.n_ctx * self.hop_length

    @property
    def prime_len(self) -> int:
        """Lyric positions in front of the music in the merged (1b_lyrics) sequence; 0 otherwise."""
        return self.n_tokens if self.lyrics == "merged" else 0

    @property
    def seq_len(self) -> int:
        """Transformer length: n_ctx, plus the lyric prefix for the merged model (6528 for 1b_lyrics)."""
        return self.n_ctx + self.prime_len

    @property
    def vocab_size(self) -> int:
        """Token vocabulary of the transformer: 2048, or 79 + 2048 = 2127 for the merged model."""
        return self.n_bins + (self.n_vocab if self.lyrics == "merged" else 0)

    @property
    def n_labels(self) -> int:
        """Label integers before the lyric tokens in a label vector: 4 + max_bow_genre_size."""
        return 4 + self.max_bow_genre_size

    # ---- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples become lists)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriorConfig:
        """Inverse of ``to_dict``; unknown or missing keys and wrong types raise ``ConfigError``."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"prior config must be a mapping, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ConfigError(f"prior config: unknown keys {unknown}; allowed: {sorted(fields)}")
        kwargs: dict[str, Any] = {}
        for name, value in data.items():
            kwargs[name] = tuple(value) if isinstance(value, list) else value
        try:
            return cls(**kwargs)
        except TypeError as e:  # missing required keys
            raise ConfigError(f"prior config: {e}") from None


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(f"prior config: {message}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _validate(c: PriorConfig) -> None:
    for name in ("n_ctx", "width", "depth", "heads", "blocks", "n_bins", "t_bins", "sample_rate"):
        v = getattr(c, name)
        _check(_is_int(v) and v > 0, f"{name} must be a positive integer, got {v!r}")
    for name in ("init_scale", "m_attn", "m_mlp", "min_duration", "max_duration", "prime_loss_fraction"):
        v = getattr(c, name)
        _check(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0, f"{name} must be >= 0, got {v!r}")
    for name in ("merged_decoder", "fp16_params", "labels", "labels_v3", "cond_res_scale"):
        _check(isinstance(getattr(c, name), bool), f"{name} must be true or false, got {getattr(c, name)!r}")
    _check(
        len(c.downs_t) == len(c.strides_t) and len(c.downs_t) >= 1
        and all(_is_int(v) and v >= 0 for v in c.downs_t) and all(_is_int(v) and v >= 1 for v in c.strides_t),
        f"downs_t {c.downs_t} / strides_t {c.strides_t} must be equal-length lists of non-negative / positive ints",
    )
    _check(_is_int(c.level) and 0 <= c.level < c.levels, f"level must be in [0, {c.levels - 1}], got {c.level!r}")
    _check(c.attn_order in ATTN_ORDERS, f"attn_order must be in 0..12, got {c.attn_order!r}")
    n_state = c.width * c.m_attn
    _check(
        n_state == int(n_state) and int(n_state) % c.heads == 0,
        f"attention width m_attn*width = {n_state} must be an integer divisible by heads={c.heads}",
    )
    _check(c.lyrics in LYRICS_MODELS, f"lyrics must be one of {LYRICS_MODELS}, got {c.lyrics!r}")
    _check(_is_int(c.n_tokens) and c.n_tokens >= 0, f"n_tokens must be >= 0, got {c.n_tokens!r}")
    _check(
        (c.lyrics == "none") == (c.n_tokens == 0),
        f"lyrics={c.lyrics!r} needs n_tokens > 0 exactly when lyrics is not 'none' (got n_tokens={c.n_tokens})",
    )
    _check(
        _is_int(c.n_vocab) and (c.n_vocab > 0 or c.lyrics == "none"),
        f"n_vocab must be a positive integer for a lyrics prior, got {c.n_vocab!r}",
    )
    _check(c.seq_len % c.blocks == 0, f"sequence length {c.seq_len} must be divisible by blocks={c.blocks}")
    _check(c.lyrics == "none" or c.labels, "lyrics conditioning needs labels=True")
    _check(c.lyrics == "none" or not c.is_upsampler, "lyrics are only supported on the top prior")
    _check(
        len(c.y_bins) == 2 and all(_is_int(v) and v > 0 for v in c.y_bins),
        f"y_bins must be (genres, artists) positive ints, got {c.y_bins!r}",
    )
    _check(
        _is_int(c.max_bow_genre_size) and c.max_bow_genre_size >= 1,
        f"max_bow_genre_size must be >= 1, got {c.max_bow_genre_size!r}",
    )
    _check(c.max_duration > c.min_duration, f"max_duration {c.max_duration} must exceed min_duration {c.min_duration}")
    if c.lyrics == "separate":
        for name in ("prime_width", "prime_depth", "prime_heads"):
            v = getattr(c, name)
            _check(_is_int(v) and v > 0, f"{name} must be a positive integer, got {v!r}")
        _check(c.prime_attn_order in ATTN_ORDERS, f"prime_attn_order must be in 0..12, got {c.prime_attn_order!r}")
        p_state = c.prime_width * c.prime_m_attn
        _check(
            p_state == int(p_state) and int(p_state) % c.prime_heads == 0,
            f"prime attention width {p_state} must be an integer divisible by prime_heads={c.prime_heads}",
        )
        _check(
            c.prime_blocks is None or (_is_int(c.prime_blocks) and c.prime_blocks > 0 and c.n_tokens % c.prime_blocks == 0),
            f"prime_blocks must be null or a positive divisor of n_tokens={c.n_tokens}, got {c.prime_blocks!r}",
        )
    if c.alignment_layer is not None or c.alignment_head is not None:
        _check(
            _is_int(c.alignment_layer) and 0 <= c.alignment_layer < c.depth,  # type: ignore[operator]
            f"alignment_layer must be in [0, {c.depth - 1}], got {c.alignment_layer!r}",
        )
        _check(
            _is_int(c.alignment_head) and 0 <= c.alignment_head < c.heads,  # type: ignore[operator]
            f"alignment_head must be in [0, {c.heads - 1}], got {c.alignment_head!r}",
        )
    if c.is_upsampler:
        for name in ("cond_width", "cond_depth", "cond_dilation_growth_rate"):
            v = getattr(c, name)
            _check(_is_int(v) and v > 0, f"{name} must be a positive integer, got {v!r}")
        _check(
            c.cond_dilation_cycle is None or (_is_int(c.cond_dilation_cycle) and c.cond_dilation_cycle > 0),
            f"cond_dilation_cycle must be a positive integer or null, got {c.cond_dilation_cycle!r}",
        )
        _check(
            c.n_ctx % c.cond_downsample == 0,
            f"n_ctx={c.n_ctx} must be divisible by the upsampling factor {c.cond_downsample}",
        )
