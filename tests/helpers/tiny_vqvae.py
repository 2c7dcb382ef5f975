"""Tiny Jukebox-shaped VQ-VAE configs shared by the checkpoint and CLI tests.

Hops 8/32/128 and level multipliers like the released model, 32 codes, so converted model directories
and codes files look like real ones while models build in milliseconds.
"""

from __future__ import annotations

from typing import Any

from model.vqvae import VQVAEConfig


def jukebox_shaped_config(**overrides: Any) -> VQVAEConfig:
    """44.1 kHz, 3 levels with hops 8/32/128, emb width 8, 32 codes, width 4, depth 2, multipliers 2/1/1."""
    values: dict[str, Any] = dict(
        sample_rate=44100,
        levels=3,
        downs_t=(3, 2, 2),
        strides_t=(2, 2, 2),
        emb_width=8,
        codebook_size=32,
        width=4,
        depth=2,
        multipliers=(2, 1, 1),
    )
    values.update(overrides)
    return VQVAEConfig(**values)


def hf_vqvae_config(**overrides: Any) -> dict[str, Any]:
    """A Hugging Face ``JukeboxVQVAEConfig`` dict of the same geometry (dilation growth 3)."""
    config: dict[str, Any] = {
        "model_type": "jukebox_vqvae",
        "act_fn": "relu",
        "nb_discrete_codes": 32,
        "embed_dim": 8,
        "levels": 3,
        "res_downs_t": [3, 2, 2],
        "res_strides_t": [2, 2, 2],
        "res_conv_width": 4,
        "res_conv_depth": 2,
        "multipliers": [2, 1, 1],
        "res_convolution_multiplier": 1,
        "res_dilation_growth_rate": 3,
        "res_dilation_cycle": None,
        "conv_res_scale": False,
        "lmu": 0.99,
        "commit": 0.02,
        "zero_out": False,
    }
    config.update(overrides)
    return config
