"""Vector quantisation per level (spec 1.3): nearest-code lookup, straight-through, commitment loss.

The codebook ``k`` is the only state-dict entry of a level (exact Jukebox key match). Its EMA
training statistics live in ``model.vqvae.ema.CodebookEMA`` modules held by the trainer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from model.vqvae.config import VQVAEConfig
from model.vqvae.ema import CodebookEMA, CodebookMetrics

ARGMIN_ROWS = 8192  # latent vectors per distance matrix slice: bounds memory to ARGMIN_ROWS * codebook_size floats


@dataclass(frozen=True)
class QuantisedLevel:
    """Result of quantising one level's latent in a training forward."""

    codes: torch.Tensor  # (N, T_l) int64
    quantised: torch.Tensor  # (N, emb, T_l), straight-through: gradients flow to the encoder
    commit_loss: torch.Tensor  # () ||x_d.detach() - x||^2 / numel(x)
    fit: torch.Tensor  # () mean squared distance to the chosen code
    prenorm: torch.Tensor  # () ||x - mean(x)|| / sqrt(numel(x))
    codebook: CodebookMetrics | None  # EMA metrics when an EMA was given


class BottleneckBlock(nn.Module):
    """One level's codebook. Buffer ``k``: (codebook_size, emb_width)."""

    def __init__(self, codebook_size: int, emb_width: int):
        super().__init__()
        self.codebook_size = codebook_size
        self.emb_width = emb_width
        # Jukebox starts from zeros and initialises from data on the first training step; a random start
        # keeps untrained models (tests, benchmarks) from mapping everything to code 0.
        self.register_buffer("k", torch.randn(codebook_size, emb_width) / math.sqrt(emb_width))
        self.k: torch.Tensor

    def quantise(self, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """latent (N, emb, T) -> codes (N, T) int64 and the mean squared distance to them (fit).

        Distances are computed in float32 whatever the model's precision, in slices of ``ARGMIN_ROWS``.
        """
        n, _, t = latent.shape
        k = self.k.float()  # (K, emb)
        k_t = k.t()  # (emb, K)
        k_sq = (k * k).sum(dim=1)  # (K,)
        codes = torch.empty(n, t, dtype=torch.long, device=latent.device)
        fit = torch.zeros((), device=latent.device)
        for b in range(n):
            for start in range(0, t, ARGMIN_ROWS):
                xs = latent[b, :, start : start + ARGMIN_ROWS].float().t()  # (R, emb), a transposed view
                # |x|^2 is the same for every code, so argmin needs only |k|^2 - 2 x.k
                partial = torch.addmm(k_sq, xs, k_t, alpha=-2.0)  # (R, K)
                min_partial, idx = partial.min(dim=1)  # (R,), (R,)
                codes[b, start : start + ARGMIN_ROWS] = idx
                fit = fit + (min_partial + (xs * xs).sum(dim=1)).sum()
        return codes, fit / max(1, n * t)

    def dequantise(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (N, T) -> latent (N, emb, T) in the codebook's dtype."""
        return nn.functional.embedding(codes, self.k).permute(0, 2, 1)  # (N, emb, T)

    def forward(self, latent: torch.Tensor, ema: CodebookEMA | None = None) -> QuantisedLevel:
        """Training quantisation of latent (N, emb, T). With ``ema`` (in training mode) the codebook is
        initialised from the batch on first use and EMA-updated after the lookup, as in Jukebox."""
        n, c, t = latent.shape
        flat = latent.permute(0, 2, 1).reshape(n * t, c)  # (N*T, emb)
        prenorm = torch.linalg.vector_norm(flat - flat.mean()) / math.sqrt(flat.numel())
        update = ema is not None and self.training
        if update and ema is not None and not ema.is_initialised:
            ema.init_from_batch(self.k, flat.detach())
        codes, fit = self.quantise(latent)
        dequantised = self.dequantise(codes).to(latent.dtype)  # (N, emb, T)
        metrics = ema.update(self.k, flat.detach(), codes.view(-1)) if update and ema is not None else None
        commit_loss = (dequantised.detach() - latent).pow(2).sum() / latent.numel()
        quantised = latent + (dequantised - latent).detach()  # straight-through estimator
        return QuantisedLevel(codes, quantised, commit_loss, fit, prenorm, metrics)


class Bottleneck(nn.Module):
    """One ``BottleneckBlock`` per level (keys ``bottleneck.level_blocks.{l}.k``)."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        self.level_blocks = nn.ModuleList(
            BottleneckBlock(config.codebook_size, config.emb_width) for _ in range(config.levels)
        )
