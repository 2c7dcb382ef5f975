"""Helpers for the prior conversion tests: tiny random priors saved as official-style ``.pth.tar`` files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from model.prior import presets
from model.prior.prior import JukeboxPrior
from model.prior.prior_config import PriorConfig
from model.vqvae import VQVAE, VQVAEConfig

# Hops 8/32/128 like Jukebox and 64 codes, the tiny priors' codebook size.
TINY_VQVAE = VQVAEConfig(
    sample_rate=44100, levels=3, downs_t=(3, 2, 2), strides_t=(2, 2, 2), emb_width=8, codebook_size=64,
    width=4, depth=2, multipliers=(2, 1, 1),
)  # fmt: skip
TOP_FAMILIES = {
    "top_prior": presets.tiny_prior,
    "separate_lyrics": presets.tiny_prior_separate,
    "merged_lyrics": presets.tiny_prior_merged,
}


def randomise(model: torch.nn.Module, seed: int) -> None:
    """Every parameter random (LayerNorm gains near 1), so each weight shows up in the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = (torch.randn(p.shape, generator=g) * 0.1).to(p.dtype)
            p.copy_(1.0 + noise if name.endswith("weight") and p.dim() == 1 else noise)


def tiny_prior(config: PriorConfig, seed: int = 1) -> JukeboxPrior:
    prior = JukeboxPrior(config).eval()
    randomise(prior, seed)
    return prior


def save_vqvae(path: Path, seed: int = 0, config: VQVAEConfig = TINY_VQVAE) -> VQVAE:
    torch.manual_seed(seed)
    model = VQVAE(config).eval()
    torch.save({"model": model.state_dict(), "hps": config.to_jukebox_hps(), "step": 1}, path)
    return model


def save_prior(path: Path, prior: JukeboxPrior, *, hps: bool = True, module_prefix: bool = True, **extra: Any) -> Path:
    """Official layout: ``{'model': state dict (OpenAI names), 'hps': {...}, 'step': 1}``."""
    state = {("module." if module_prefix else "") + k: v for k, v in prior.state_dict().items()}
    checkpoint: dict[str, Any] = {"model": state, "step": 1, **extra}
    if hps:
        checkpoint["hps"] = prior.config.to_jukebox_hps()
    torch.save(checkpoint, path)
    return path


def window(c: PriorConfig, seed: int = 0, batch: int = 2) -> tuple[Tensor, Tensor, Tensor | None]:
    """(codes (N, n_ctx), labels (N, 4 + G + n_tokens), codes of the level above (N, n_ctx // 4) or None)."""
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, c.n_bins, (batch, c.n_ctx), generator=g)
    labels = torch.zeros(batch, c.n_labels + c.n_tokens, dtype=torch.long)
    labels[:, 0] = 5 * c.sample_rate
    labels[:, 1] = torch.tensor([0, c.sample_length])[:batch]
    labels[:, 2] = c.sample_length
    labels[:, 3] = torch.randint(0, c.y_bins[1], (batch,), generator=g)
    labels[:, 4 : c.n_labels] = torch.randint(0, c.y_bins[0], (batch, c.max_bow_genre_size), generator=g)
    labels[:, c.n_labels :] = torch.randint(0, c.n_vocab, (batch, c.n_tokens), generator=g)
    upper = torch.randint(0, c.n_bins, (batch, c.n_ctx // c.cond_downsample), generator=g) if c.is_upsampler else None
    return codes, labels, upper


def logits(prior: JukeboxPrior, seed: int = 0) -> Tensor:
    codes, labels, upper = window(prior.config, seed)
    with torch.no_grad():
        out = prior(codes, prior.conditioning(labels, upper), return_logits=True)
    assert out.logits is not None
    return out.logits
