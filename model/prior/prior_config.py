"""``PriorConfig``: every hyper-parameter of one Jukebox prior (spec 3.1), as a few nested frozen parts.

A prior generates the codes of one VQ-VAE level. The top prior (level 2) is conditioned on labels
(artist, genre, timing) and optionally lyrics; the upsamplers (levels 1 and 0) are conditioned on the codes
of the level above. The parts (``model/prior/prior_parts.py``): ``transformer`` (the stack),
``labels``, ``lyrics`` (none | separate encoder | merged into the sequence), ``upsampler`` (the
conditioner of levels below the top) and ``geometry`` (the VQ-VAE's hops).

``to_dict``/``from_dict`` are our checkpoint format (JSON-safe, nested, ``"version": 2``); ``from_dict``
also reads the flat version 1 (``model/prior/prior_config_v1.py``) that older model directories hold.
OpenAI Jukebox's hyper-parameter names are translated in ``model/checkpoint/jukebox_hps.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import ConfigError
from model.prior.prior_parts import (
    ATTN_ORDERS,
    LYRICS_KINDS,
    GeometryConfig,
    LabelsConfig,
    LyricsConfig,
    TransformerSpec,
    UpsamplerConfig,
    check,
    is_int,
    part_from_dict,
    part_to_dict,
)

__all__ = [
    "ATTN_ORDERS",
    "FORMAT_VERSION",
    "LYRICS_KINDS",
    "GeometryConfig",
    "LabelsConfig",
    "LyricsConfig",
    "PriorConfig",
    "TransformerSpec",
    "UpsamplerConfig",
]

FORMAT_VERSION = 2  # of to_dict's output; 1 (or no "version") is the flat format of prior_config_v1
_PARTS: dict[str, type] = {
    "transformer": TransformerSpec,
    "labels": LabelsConfig,
    "lyrics": LyricsConfig,
    "upsampler": UpsamplerConfig,
    "geometry": GeometryConfig,
}


@dataclass(frozen=True)
class PriorConfig:
    """One prior: the level it generates, its window of ``n_ctx`` music tokens, its codebook of ``n_bins``,
    how its output head is wired, and its parts."""

    level: int
    n_ctx: int  # music tokens per window
    transformer: TransformerSpec
    n_bins: int = 2048  # music codebook size (Jukebox: l_bins)
    merged_decoder: bool = False  # True: x_out not tied to x_emb and x_cond not re-added after the transformer
    fp16_params: bool = False  # Conv1D weights of the transformer(s) stored in float16 (5b, 5b_lyrics)
    labels: LabelsConfig = LabelsConfig()
    lyrics: LyricsConfig = LyricsConfig()
    upsampler: UpsamplerConfig = UpsamplerConfig()  # used by levels below the top
    geometry: GeometryConfig = GeometryConfig()

    def __post_init__(self) -> None:
        _validate(self)

    # ---- derived sizes -------------------------------------------------------------------------------
    @property
    def levels(self) -> int:
        return self.geometry.levels

    @property
    def is_upsampler(self) -> bool:
        """True for levels below the top: conditioned on the codes of the level above."""
        return self.level < self.levels - 1

    @property
    def time_signal(self) -> bool:
        """Top priors with labels get total-length/position embeddings as x_cond."""
        return self.labels.enabled and not self.is_upsampler

    @property
    def hop_length(self) -> int:
        """Audio samples per code of this level (8, 32, 128 for the released VQ-VAE)."""
        return self.geometry.hop_length(self.level)

    @property
    def cond_downsample(self) -> int:
        """Codes of this level per code of the level above (4); 0 for the top prior."""
        return self.geometry.downsample(self.level + 1) if self.is_upsampler else 0

    @property
    def sample_length(self) -> int:
        """Audio samples covered by one window of n_ctx codes."""
        return self.n_ctx * self.hop_length

    @property
    def prime_len(self) -> int:
        """Lyric positions in front of the music in the merged (1b_lyrics) sequence; 0 otherwise."""
        return self.lyrics.n_tokens if self.lyrics.kind == "merged" else 0

    @property
    def seq_len(self) -> int:
        """Transformer length: n_ctx, plus the lyric prefix for the merged model (6528 for 1b_lyrics)."""
        return self.n_ctx + self.prime_len

    @property
    def vocab_size(self) -> int:
        """Token vocabulary of the transformer: 2048, or 79 + 2048 = 2127 for the merged model."""
        return self.n_bins + (self.lyrics.n_vocab if self.lyrics.kind == "merged" else 0)

    @property
    def n_labels(self) -> int:
        """Label integers before the lyric tokens in a label vector: 4 + max_bow_genre_size."""
        return self.labels.n_labels

    # ---- serialisation -------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe nested dict (tuples become lists), tagged ``"version": 2``."""
        return {"version": FORMAT_VERSION, **part_to_dict(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PriorConfig:
        """Inverse of ``to_dict``; also reads the flat version 1 (no ``"version"``, or 1) of older model
        directories. Unknown or missing keys and wrong types raise ``ConfigError``."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"prior config must be a mapping, got {type(data).__name__}")
        version = data.get("version", 1)
        if version == 1:
            from model.prior.prior_config_v1 import from_flat

            return from_flat(data)
        if version != FORMAT_VERSION:
            raise ConfigError(
                f"prior config version {version!r} is not supported (this segue reads 1 and {FORMAT_VERSION}); "
                "convert the model again with this segue or upgrade segue"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names - {"version"})
        if unknown:
            raise ConfigError(f"prior config: unknown keys {unknown}; allowed: {sorted(names)}")
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k != "version"}
        for name, part in _PARTS.items():
            if name in kwargs:
                kwargs[name] = part_from_dict(part, kwargs[name], name)
        try:
            return cls(**kwargs)
        except TypeError as e:  # missing required keys
            raise ConfigError(f"prior config: {e}") from None


def _validate(c: PriorConfig) -> None:
    """Each part checks its own fields (skipping the parts this prior does not use), then the checks
    that need two parts."""
    for name, part in _PARTS.items():
        check(isinstance(getattr(c, name), part), f"{name} must be a {part.__name__}, got {getattr(c, name)!r}")
    for name in ("n_ctx", "n_bins"):
        v = getattr(c, name)
        check(is_int(v) and v > 0, f"{name} must be a positive integer, got {v!r}")
    for name in ("merged_decoder", "fp16_params"):
        check(isinstance(getattr(c, name), bool), f"{name} must be true or false, got {getattr(c, name)!r}")
    t, lyrics = c.transformer, c.lyrics
    t.validate("transformer.")
    check(is_int(t.blocks), f"transformer.blocks must be a positive integer, got {t.blocks!r}")
    c.geometry.validate("geometry.")
    check(is_int(c.level) and 0 <= c.level < c.levels, f"level must be in [0, {c.levels - 1}], got {c.level!r}")
    c.labels.validate("labels.")
    lyrics.validate("lyrics.")
    check(c.seq_len % t.blocks == 0, f"sequence length {c.seq_len} must be divisible by blocks={t.blocks}")  # type: ignore[operator]
    check(lyrics.kind == "none" or c.labels.enabled, "lyrics conditioning needs labels.enabled=true")
    check(lyrics.kind == "none" or not c.is_upsampler, "lyrics are only supported on the top prior")
    if lyrics.alignment_layer is not None or lyrics.alignment_head is not None:
        layer, head = lyrics.alignment_layer, lyrics.alignment_head
        check(
            is_int(layer) and 0 <= layer < t.depth,  # type: ignore[operator]
            f"lyrics.alignment_layer must be in [0, {t.depth - 1}], got {layer!r}",
        )
        check(
            is_int(head) and 0 <= head < t.heads,  # type: ignore[operator]
            f"lyrics.alignment_head must be in [0, {t.heads - 1}], got {head!r}",
        )
    if c.is_upsampler:
        c.upsampler.validate("upsampler.")
        check(
            c.n_ctx % c.cond_downsample == 0,
            f"n_ctx={c.n_ctx} must be divisible by the upsampling factor {c.cond_downsample}",
        )
