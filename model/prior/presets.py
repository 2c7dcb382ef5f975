"""The five released Jukebox priors (spec 3.1) and tiny test-sized priors of each family.

Official: ``upsampler_level_0``/``upsampler_level_1`` (shared by every release), ``prior_5b`` (labels only),
``prior_5b_lyrics`` (separate lyrics encoder + cross-attention), ``prior_1b_lyrics`` (lyrics merged into
one sequence). Tiny: same wiring, a few thousand parameters, for unit tests and conformance checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from common.errors import ConfigError
from model.prior.prior_config import LabelsConfig, LyricsConfig, PriorConfig, TransformerSpec, UpsamplerConfig

_V2 = LabelsConfig(enabled=True, v3=False, y_bins=(120, 4111), t_bins=128, max_bow_genre_size=5)
_V3 = LabelsConfig(enabled=True, v3=True, y_bins=(604, 7898), t_bins=64, max_bow_genre_size=1)
_UPSAMPLER_STACK = TransformerSpec(width=1920, depth=72, heads=1, attn_order=2, blocks=128, init_scale=0.4)
_CONDITIONER = UpsamplerConfig(width=1024, depth=16, dilation_growth_rate=3, dilation_cycle=8)


def upsampler_level_0() -> PriorConfig:
    """Bottom upsampler: level-0 codes (hop 8) from level-1 codes; 981.3 M parameters."""
    return PriorConfig(level=0, n_ctx=8192, transformer=_UPSAMPLER_STACK, labels=_V2, upsampler=_CONDITIONER)


def upsampler_level_1() -> PriorConfig:
    """Middle upsampler: level-1 codes (hop 32) from level-2 codes; conditioner res_scale 0.25."""
    conditioner = dataclasses.replace(_CONDITIONER, res_scale=True)
    return PriorConfig(level=1, n_ctx=8192, transformer=_UPSAMPLER_STACK, labels=_V2, upsampler=conditioner)


def prior_5b() -> PriorConfig:
    """5B top prior without lyrics (5b/prior_level_2); 5060.5 M parameters."""
    return PriorConfig(
        level=2, n_ctx=8192, merged_decoder=True, fp16_params=True,
        transformer=TransformerSpec(width=4800, depth=72, heads=8, attn_order=2, blocks=128, init_scale=0.1),
        labels=dataclasses.replace(_V2, min_duration=60.0, max_duration=600.0),
    )  # fmt: skip


def prior_5b_lyrics() -> PriorConfig:
    """5B top prior with a separate 18-layer lyrics encoder and cross-attention; 5640.5 M parameters."""
    return PriorConfig(
        level=2, n_ctx=8192, merged_decoder=True, fp16_params=True,
        transformer=TransformerSpec(width=4800, depth=79, heads=8, attn_order=10, blocks=128, init_scale=0.1),
        labels=dataclasses.replace(_V2, min_duration=23.8, max_duration=600.0),
        lyrics=LyricsConfig(
            kind="separate", n_tokens=512, n_vocab=80, loss_fraction=0.4, alignment_layer=68, alignment_head=2,
            encoder=TransformerSpec(width=1280, depth=18, heads=4, attn_order=2, blocks=32, init_scale=0.7),
        ),
    )  # fmt: skip


def prior_1b_lyrics() -> PriorConfig:
    """1B top prior: 384 lyric tokens + 6144 music tokens in one sequence, merged vocab 2127; 942.6 M."""
    return PriorConfig(
        level=2, n_ctx=6144, merged_decoder=False, fp16_params=False,
        transformer=TransformerSpec(width=2048, depth=72, heads=2, attn_order=12, blocks=64, init_scale=0.2),
        labels=dataclasses.replace(_V3, min_duration=17.84, max_duration=600.0),
        lyrics=LyricsConfig(
            kind="merged", n_tokens=384, n_vocab=79, loss_fraction=0.4, alignment_layer=63, alignment_head=0
        ),
    )  # fmt: skip


# ---- tiny priors for tests: same families, n_ctx 32, width 32 ----------------------------------------
_TINY_LABELS = LabelsConfig(y_bins=(7, 11), t_bins=8, max_bow_genre_size=2, min_duration=1.0, max_duration=20.0)
_TINY_STACK = TransformerSpec(width=32, depth=3, heads=2, attn_order=2, blocks=4, init_scale=1.0)
_TINY: dict[str, Any] = dict(n_ctx=32, n_bins=64, labels=_TINY_LABELS)


def tiny_upsampler(level: int = 1) -> PriorConfig:
    """Upsampler of level 0 or 1 with a 2-deep, 16-wide conditioner (res_scale on for level 1)."""
    conditioner = UpsamplerConfig(width=16, depth=2, dilation_growth_rate=3, dilation_cycle=8, res_scale=level == 1)
    return PriorConfig(level=level, transformer=_TINY_STACK, upsampler=conditioner, **_TINY)


def tiny_prior() -> PriorConfig:
    """Top prior with labels and time signal, no lyrics (5b family: untied x_out, fp32 here)."""
    return PriorConfig(level=2, merged_decoder=True, transformer=_TINY_STACK, **_TINY)


def tiny_prior_separate() -> PriorConfig:
    """5b_lyrics family: 19 layers of attn_order 10 (cross-attention at layer 18), 8-token lyrics encoder."""
    return PriorConfig(
        level=2, merged_decoder=True, transformer=dataclasses.replace(_TINY_STACK, depth=19, attn_order=10),
        lyrics=LyricsConfig(
            kind="separate", n_tokens=8, n_vocab=80, loss_fraction=0.4, alignment_layer=18, alignment_head=1,
            encoder=TransformerSpec(width=16, depth=2, heads=2, attn_order=2, blocks=2, init_scale=1.0),
        ),
        **_TINY,
    )  # fmt: skip


def tiny_prior_merged() -> PriorConfig:
    """1b_lyrics family: 16 layers of attn_order 12 (prime attention at layer 15), 8 lyric + 32 music tokens."""
    return PriorConfig(
        level=2, merged_decoder=False, transformer=dataclasses.replace(_TINY_STACK, depth=16, attn_order=12),
        lyrics=LyricsConfig(
            kind="merged", n_tokens=8, n_vocab=79, loss_fraction=0.4, alignment_layer=15, alignment_head=0
        ),
        **_TINY,
    )  # fmt: skip


OFFICIAL: dict[str, Callable[[], PriorConfig]] = {
    "upsampler_level_0": upsampler_level_0,
    "upsampler_level_1": upsampler_level_1,
    "prior_5b": prior_5b,
    "prior_5b_lyrics": prior_5b_lyrics,
    "prior_1b_lyrics": prior_1b_lyrics,
}


def official(name: str) -> PriorConfig:
    """Config of a released prior by name (the part names of jukebox-official-shapes.json)."""
    if name not in OFFICIAL:
        raise ConfigError(f"unknown prior preset {name!r}; choose one of {sorted(OFFICIAL)}")
    return OFFICIAL[name]()


def with_changes(config: PriorConfig, **changes: Any) -> PriorConfig:
    """A copy of ``config`` with some fields replaced (validated again). A mapping given for a part
    replaces only the fields it names: ``with_changes(c, labels={"min_duration": 10.0})``."""
    for name, value in changes.items():
        if isinstance(value, Mapping):
            part = getattr(config, name)
            if "encoder" in value:  # lyrics={"encoder": {...}}: the encoder's fields, too
                value = {**value, "encoder": dataclasses.replace(part.encoder, **value["encoder"])}
            changes[name] = dataclasses.replace(part, **value)
    return dataclasses.replace(config, **changes)
