"""Jukebox-compatible hierarchical VQ-VAE: config, model, EMA codebook training state, losses."""

from model.vqvae.config import VQVAEConfig, official_vqvae_config
from model.vqvae.ema import CodebookEMA, CodebookMetrics, make_codebook_emas
from model.vqvae.training import VQVAETraining
from model.vqvae.vqvae import VQVAE, VQVAEOutput

__all__ = [
    "VQVAE",
    "CodebookEMA",
    "CodebookMetrics",
    "VQVAEConfig",
    "VQVAEOutput",
    "VQVAETraining",
    "make_codebook_emas",
    "official_vqvae_config",
]
