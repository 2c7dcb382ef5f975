"""EMA codebook learning (spec 1.3) with all statistics in registered buffers.

A trainer builds ``make_codebook_emas(config, training)`` (one ``CodebookEMA`` per level), passes it to
``VQVAE.forward(audio, ema=emas)`` and saves ``emas.state_dict()`` with its training checkpoint.
Multi-process training injects ``all_reduce`` (in-place sum) and ``broadcast`` (in-place, from rank 0);
the module itself never calls torch.distributed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from model.vqvae.config import VQVAEConfig
from model.vqvae.training import VQVAETraining

Collective = Callable[[torch.Tensor], None]


@dataclass(frozen=True)
class CodebookMetrics:
    """Per-level codebook health after one EMA update."""

    entropy: torch.Tensor  # () entropy (nats) of this batch's code usage
    used_curr: torch.Tensor  # () codes used at least ``threshold`` times in this batch
    usage: torch.Tensor  # () codes whose EMA count is above the threshold (the rest were restarted)
    dk: torch.Tensor  # () RMS change of the codebook in this update


class CodebookEMA(nn.Module):
    """EMA statistics of one level's codebook: buffers ``k_sum`` (K, emb), ``k_elem`` (K,), ``initialised``."""

    def __init__(
        self,
        codebook_size: int,
        emb_width: int,
        *,
        decay: float = 0.99,
        revival_threshold: float = 1.0,
        all_reduce: Collective | None = None,
        broadcast: Collective | None = None,
    ):
        super().__init__()
        self.codebook_size = codebook_size
        self.emb_width = emb_width
        self.decay = decay
        self.threshold = revival_threshold
        self.all_reduce = all_reduce
        self.broadcast = broadcast
        self.register_buffer("k_sum", torch.zeros(codebook_size, emb_width))
        self.register_buffer("k_elem", torch.zeros(codebook_size))
        self.register_buffer("initialised", torch.zeros((), dtype=torch.bool))
        self.k_sum: torch.Tensor
        self.k_elem: torch.Tensor
        self.initialised: torch.Tensor

    @property
    def is_initialised(self) -> bool:
        return bool(self.initialised)

    def _random_codes(self, x: torch.Tensor) -> torch.Tensor:
        """K random batch vectors (tiled with noise std 0.01/sqrt(emb) when the batch is smaller than K)."""
        m = x.shape[0]
        if m < self.codebook_size:
            repeats = (self.codebook_size + m - 1) // m
            x = x.repeat(repeats, 1)  # (M*repeats, emb)
            x = x + torch.randn_like(x) * (0.01 / math.sqrt(self.emb_width))
        picked = x[torch.randperm(x.shape[0], device=x.device)[: self.codebook_size]]  # (K, emb)
        if self.broadcast is not None:
            self.broadcast(picked)
        return picked

    @torch.no_grad()
    def init_from_batch(self, k: torch.Tensor, x: torch.Tensor) -> None:
        """Set codebook ``k`` (K, emb) to random vectors of the batch x (M, emb); counts start at 1."""
        k.copy_(self._random_codes(x.float()).to(k.dtype))
        self.k_sum.copy_(k)
        self.k_elem.fill_(1.0)
        self.initialised.fill_(True)

    @torch.no_grad()
    def restore_k(self, k: torch.Tensor, num_tokens: int | None = None) -> None:
        """Start EMA from a trained codebook ``k`` (fine-tuning): counts = num_tokens / K (tokens per
        step over all processes), or 1 when not given."""
        expected = 1.0 if num_tokens is None else num_tokens / self.codebook_size
        self.k_elem.fill_(expected)
        self.k_sum.copy_(k.float() * expected)
        self.initialised.fill_(True)

    @torch.no_grad()
    def update(self, k: torch.Tensor, x: torch.Tensor, codes: torch.Tensor) -> CodebookMetrics:
        """One EMA step from batch vectors x (M, emb) assigned to ``codes`` (M,); writes ``k`` in place.

        Codes whose EMA count falls below the revival threshold are restarted at random batch vectors.
        """
        x = x.float()
        batch_sum = torch.zeros_like(self.k_sum).index_add_(0, codes, x)  # (K, emb)
        batch_count = torch.bincount(codes, minlength=self.codebook_size).to(x.dtype)  # (K,)
        random_codes = self._random_codes(x)  # (K, emb)
        if self.all_reduce is not None:
            self.all_reduce(batch_sum)
            self.all_reduce(batch_count)
        old_k = k.float().clone()
        self.k_sum.lerp_(batch_sum, 1.0 - self.decay)
        self.k_elem.lerp_(batch_count, 1.0 - self.decay)
        alive = (self.k_elem >= self.threshold).unsqueeze(1).to(x.dtype)  # (K, 1)
        new_k = alive * (self.k_sum / self.k_elem.clamp_min(1e-12).unsqueeze(1)) + (1 - alive) * random_codes
        k.copy_(new_k.to(k.dtype))
        prob = batch_count / batch_count.sum().clamp_min(1.0)  # (K,)
        return CodebookMetrics(
            entropy=-(prob * torch.log(prob + 1e-8)).sum(),
            used_curr=(batch_count >= self.threshold).sum(),
            usage=alive.sum(),
            dk=torch.linalg.vector_norm(new_k - old_k) / math.sqrt(new_k.numel()),
        )


def make_codebook_emas(
    config: VQVAEConfig,
    training: VQVAETraining | None = None,
    *,
    all_reduce: Collective | None = None,
    broadcast: Collective | None = None,
) -> nn.ModuleList:
    """One ``CodebookEMA`` per level of ``config``, with ``training``'s decay and revival threshold
    (default: the released VQ-VAE's recipe)."""
    training = training or VQVAETraining()
    return nn.ModuleList(
        CodebookEMA(
            config.codebook_size,
            config.emb_width,
            decay=training.codebook_decay,
            revival_threshold=training.revival_threshold,
            all_reduce=all_reduce,
            broadcast=broadcast,
        )
        for _ in range(config.levels)
    )
