"""Per-level decoder: level blocks L..0 applied in reverse, then ``out`` (spec 1.2)."""

from __future__ import annotations

import torch
from torch import nn

from model.vqvae.blocks import DecoderConvBock, level_block_options
from model.vqvae.config import VQVAEConfig


class Decoder(nn.Module):
    """Decoder of level ``level``: latent (N, emb_width, L) -> audio (N, 1, L * hop_lengths[level]).

    Only the level's own latent is decoded (Jukebox always calls it with ``all_levels=False``).
    """

    def __init__(self, config: VQVAEConfig, level: int):
        super().__init__()
        options = level_block_options(config, level)
        self.level_blocks = nn.ModuleList(
            DecoderConvBock(
                config.emb_width,
                config.emb_width,
                config.downs_t[j],
                config.strides_t[j],
                reverse_dilation=config.reverse_decoder_dilation,
                **options,
            )
            for j in range(level + 1)
        )
        self.out = nn.Conv1d(config.emb_width, 1, 3, 1, 1)

    def execution_order(self) -> list[nn.Module]:
        """Level blocks in the order they run (top block first), then ``out``."""
        return [*reversed(list(self.level_blocks)), self.out]

    def forward(self, latent: torch.Tensor) -> torch.Tensor:  # (N, emb, L) -> (N, 1, L * hop)
        x = latent
        for block in self.execution_order():
            x = block(x)
        return x
