"""Tiny seeded VQ-VAE configs shared by the VQ-VAE tests."""

from __future__ import annotations

import pytest

from model.vqvae import VQVAE, VQVAEConfig


def tiny_config(**overrides: object) -> VQVAEConfig:
    """3 levels, hops 4/8/16, small receptive fields (so chunking really cuts), multipliers like the official."""
    values: dict[str, object] = dict(
        sample_rate=8000,
        levels=3,
        downs_t=(2, 1, 1),
        strides_t=(2, 2, 2),
        emb_width=8,
        codebook_size=32,
        width=8,
        depth=2,
        dilation_growth_rate=3,
        multipliers=(2, 1, 1),
    )
    values.update(overrides)
    return VQVAEConfig(**values)  # type: ignore[arg-type]


@pytest.fixture
def tiny_vqvae() -> VQVAE:
    return VQVAE(tiny_config()).eval()
