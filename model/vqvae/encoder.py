"""Per-level encoder: level blocks 0..L applied in order (spec 1.2)."""

from __future__ import annotations

import torch
from torch import nn

from model.vqvae.blocks import EncoderConvBlock, level_block_options
from model.vqvae.config import VQVAEConfig


class Encoder(nn.Module):
    """Encoder of level ``level``: audio (N, 1, T) -> latent (N, emb_width, T // hop_lengths[level]).

    All its level blocks use the width/depth multiplier of ``level`` (not of the block's own index).
    """

    def __init__(self, config: VQVAEConfig, level: int):
        super().__init__()
        options = level_block_options(config, level)
        self.level_blocks = nn.ModuleList(
            EncoderConvBlock(
                1 if j == 0 else config.emb_width, config.emb_width, config.downs_t[j], config.strides_t[j], **options
            )
            for j in range(level + 1)
        )

    def forward(self, audio: torch.Tensor) -> torch.Tensor:  # (N, 1, T) -> (N, emb, T // hop)
        x = audio
        for block in self.level_blocks:
            x = block(x)  # (N, emb, T_j)
        return x
