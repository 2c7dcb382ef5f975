"""The five released Jukebox priors (spec 3.1) and tiny test-sized priors of each family.

Official: ``upsampler_level_0``/``upsampler_level_1`` (shared by every release), ``prior_5b`` (labels only),
``prior_5b_lyrics`` (separate lyrics encoder + cross-attention), ``prior_1b_lyrics`` (lyrics merged into
one sequence). Tiny: same wiring, a few thousand parameters, for unit tests and conformance checks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from common.errors import ConfigError
from model.prior.prior_config import PriorConfig

_V2: dict[str, Any] = dict(labels=True, labels_v3=False, y_bins=(120, 4111), t_bins=128, max_bow_genre_size=5, n_vocab=80)
_V3: dict[str, Any] = dict(labels=True, labels_v3=True, y_bins=(604, 7898), t_bins=64, max_bow_genre_size=1, n_vocab=79)
_UPSAMPLER: dict[str, Any] = dict(
    n_ctx=8192, width=1920, depth=72, heads=1, attn_order=2, blocks=128, init_scale=0.4,
    cond_width=1024, cond_depth=16, cond_dilation_growth_rate=3, cond_dilation_cycle=8, **_V2,
)  # fmt: skip


def upsampler_level_0() -> PriorConfig:
    """Bottom upsampler: level-0 codes (hop 8) from level-1 codes; 981.3 M parameters."""
    return PriorConfig(level=0, cond_res_scale=False, **_UPSAMPLER)


def upsampler_level_1() -> PriorConfig:
    """Middle upsampler: level-1 codes (hop 32) from level-2 codes; conditioner res_scale 0.25."""
    return PriorConfig(level=1, cond_res_scale=True, **_UPSAMPLER)


def prior_5b() -> PriorConfig:
    """5B top prior without lyrics (5b/prior_level_2); 5060.5 M parameters."""
    return PriorConfig(
        level=2, n_ctx=8192, width=4800, depth=72, heads=8, attn_order=2, blocks=128, init_scale=0.1,
        merged_decoder=True, fp16_params=True, min_duration=60.0, max_duration=600.0, **_V2,
    )  # fmt: skip


def prior_5b_lyrics() -> PriorConfig:
    """5B top prior with a separate 18-layer lyrics encoder and cross-attention; 5640.5 M parameters."""
    return PriorConfig(
        level=2, n_ctx=8192, width=4800, depth=79, heads=8, attn_order=10, blocks=128, init_scale=0.1,
        merged_decoder=True, fp16_params=True, min_duration=23.8, max_duration=600.0,
        lyrics="separate", n_tokens=512, prime_loss_fraction=0.4,
        prime_width=1280, prime_depth=18, prime_heads=4, prime_attn_order=2, prime_blocks=32, prime_init_scale=0.7,
        alignment_layer=68, alignment_head=2, **_V2,
    )  # fmt: skip


def prior_1b_lyrics() -> PriorConfig:
    """1B top prior: 384 lyric tokens + 6144 music tokens in one sequence, merged vocab 2127; 942.6 M."""
    return PriorConfig(
        level=2, n_ctx=6144, width=2048, depth=72, heads=2, attn_order=12, blocks=64, init_scale=0.2,
        merged_decoder=False, fp16_params=False, min_duration=17.84, max_duration=600.0,
        lyrics="merged", n_tokens=384, prime_loss_fraction=0.4, alignment_layer=63, alignment_head=0, **_V3,
    )  # fmt: skip


# ---- tiny priors for tests: same families, n_ctx 32, width 32 ----------------------------------------
_TINY_LABELS: dict[str, Any] = dict(labels=True, y_bins=(7, 11), t_bins=8, max_bow_genre_size=2, min_duration=1.0, max_duration=20.0)
_TINY: dict[str, Any] = dict(n_ctx=32, n_bins=64, width=32, depth=3, heads=2, attn_order=2, blocks=4, init_scale=1.0, **_TINY_LABELS)


def tiny_upsampler(level: int = 1) -> PriorConfig:
    """Upsampler of level 0 or 1 with a 2-deep, 16-wide conditioner (res_scale on for level 1)."""
    return PriorConfig(
        level=level, cond_width=16, cond_depth=2, cond_dilation_growth_rate=3, cond_dilation_cycle=8,
        cond_res_scale=level == 1, **_TINY,
    )  # fmt: skip


def tiny_prior() -> PriorConfig:
    """Top prior with labels and time signal, no lyrics (5b family: untied x_out, fp32 here)."""
    return PriorConfig(level=2, merged_decoder=True, **_TINY)


def tiny_prior_separate() -> PriorConfig:
    """5b_lyrics family: 19 layers of attn_order 10 (cross-attention at layer 18), 8-token lyrics encoder."""
    kw: dict[str, Any] = dict(_TINY, depth=19, attn_order=10)
    return PriorConfig(
        level=2, merged_decoder=True, lyrics="separate", n_tokens=8, n_vocab=80, prime_loss_fraction=0.4,
        prime_width=16, prime_depth=2, prime_heads=2, prime_attn_order=2, prime_blocks=2, prime_init_scale=1.0,
        alignment_layer=18, alignment_head=1, **kw,
    )  # fmt: skip


def tiny_prior_merged() -> PriorConfig:
    """1b_lyrics family: 16 layers of attn_order 12 (prime attention at layer 15), 8 lyric + 32 music tokens."""
    kw: dict[str, Any] = dict(_TINY, depth=16, attn_order=12)
    return PriorConfig(
        level=2, merged_decoder=False, lyrics="merged", n_tokens=8, n_vocab=79, prime_loss_fraction=0.4,
        alignment_layer=15, alignment_head=0, **kw,
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
    """A copy of ``config`` with some fields replaced (validated again)."""
    return dataclasses.replace(config, **changes)
