"""Helpers for the prior conversion tests: tiny random priors saved as official-style ``.pth.tar`` files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from model.checkpoint.jukebox_hps import hps_from_prior_config
from model.prior.prior import JukeboxPrior
from model.prior.prior_config import PriorConfig
from model.vqvae import VQVAE, VQVAEConfig
from tests.helpers.factories import PRIOR_VQVAE, tiny_vqvae


def save_vqvae(path: Path, seed: int = 0, config: VQVAEConfig = PRIOR_VQVAE) -> VQVAE:
    model = tiny_vqvae(seed, config)
    torch.save({"model": model.state_dict(), "hps": config.to_jukebox_hps(), "step": 1}, path)
    return model


def save_prior(path: Path, prior: JukeboxPrior, *, hps: bool = True, module_prefix: bool = True,
               hps_override: dict[str, Any] | None = None, **extra: Any) -> Path:
    """Official layout: ``{'model': state dict (OpenAI names), 'hps': {...}, 'step': 1}``; ``hps_override``
    saves the prior's hps with these values changed (implies ``hps``)."""
    state = {("module." if module_prefix else "") + k: v for k, v in prior.state_dict().items()}
    checkpoint: dict[str, Any] = {"model": state, "step": 1, **extra}
    if hps or hps_override:
        checkpoint["hps"] = {**hps_from_prior_config(prior.config), **(hps_override or {})}
    torch.save(checkpoint, path)
    return path


def window(c: PriorConfig, seed: int = 0, batch: int = 2) -> tuple[Tensor, Tensor, Tensor | None]:
    """(codes (N, n_ctx), labels (N, 4 + G + n_tokens), codes of the level above (N, n_ctx // 4) or None)."""
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, c.n_bins, (batch, c.n_ctx), generator=g)
    labels = torch.zeros(batch, c.n_labels + c.lyrics.n_tokens, dtype=torch.long)
    labels[:, 0] = 5 * c.labels.sample_rate
    labels[:, 1] = torch.tensor([0, c.sample_length])[:batch]
    labels[:, 2] = c.sample_length
    labels[:, 3] = torch.randint(0, c.labels.y_bins[1], (batch,), generator=g)
    labels[:, 4 : c.n_labels] = torch.randint(0, c.labels.y_bins[0], (batch, c.labels.max_bow_genre_size), generator=g)
    labels[:, c.n_labels :] = torch.randint(0, c.lyrics.n_vocab, (batch, c.lyrics.n_tokens), generator=g)
    upper = torch.randint(0, c.n_bins, (batch, c.n_ctx // c.cond_downsample), generator=g) if c.is_upsampler else None
    return codes, labels, upper


def logits(prior: JukeboxPrior, seed: int = 0) -> Tensor:
    codes, labels, upper = window(prior.config, seed)
    with torch.no_grad():
        out = prior(codes, prior.conditioning(labels, upper), return_logits=True)
    assert out.logits is not None
    return out.logits
