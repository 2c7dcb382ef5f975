"""Jukebox priors: the autoregressive transformer core (config, attention, cache, transformer) and, built on
it, the full priors with their conditioners."""

from model.prior.autoregressive import ARLoss, ConditionalAutoregressive, bits_per_token
from model.prior.cache import KVCache, LayerCache
from model.prior.config import AttnFunc, AutoregressiveConfig, TransformerConfig, attn_func_for_layer
from model.prior.transformer import Transformer

__all__ = [
    "ARLoss",
    "AttnFunc",
    "AutoregressiveConfig",
    "ConditionalAutoregressive",
    "KVCache",
    "LayerCache",
    "Transformer",
    "TransformerConfig",
    "attn_func_for_layer",
    "bits_per_token",
]
