"""Key/value caches for incremental decoding of the Jukebox transformer.

Protocol (see docs/priors.md, "Transformer core"):

- ``model.new_cache(batch, dtype, device)`` preallocates one ``LayerCache`` per layer; nothing is allocated
  per token afterwards. Each layer keeps only what its attention pattern needs (spec 5.3):

  ============  ==========================  ======================================================
  attn_func     slots (``capacity``)        slot of position ``p``
  ============  ==========================  ======================================================
  0 dense       n_ctx                       p
  1 block       block_ctx                   p % block_ctx (the current, partial block)
  2 transpose   n_ctx                       p
  3 prev block  2 * block_ctx               p % (2 * block_ctx) (current + previous block)
  4 summary     blocks                      0 is a zero key; block b's last position -> b + 1
  6 cross       encoder_dims                encoder k/v, projected once per window
  7 prime       _prime_len                  p for p < _prime_len
  ============  ==========================  ======================================================

- ``KVCache.length`` is the number of positions already fed; a step of T positions covers
  ``length .. length + T - 1`` and then advances ``length`` by T (all layers move together).
- ``KVCache.reset()`` rewinds to position 0 without freeing memory, so one cache serves every window of a
  song (a new window re-feeds its context, as Jukebox does; cross-attention k/v are recomputed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor

from common.errors import InputError
from model.prior.config import AttnFunc, TransformerConfig


def cache_capacity(config: TransformerConfig, attn_func: AttnFunc) -> int:
    """Number of key/value slots a layer of type ``attn_func`` keeps (see module docstring)."""
    if attn_func in (AttnFunc.DENSE, AttnFunc.TRANSPOSE_BLOCK):
        return config.n_ctx
    if attn_func == AttnFunc.BLOCK:
        return config.block_ctx
    if attn_func == AttnFunc.PREV_BLOCK:
        return 2 * config.block_ctx
    if attn_func == AttnFunc.SUMMARY:
        return int(config.blocks or 1)
    if attn_func == AttnFunc.CROSS:
        return config.encoder_dims
    if attn_func == AttnFunc.PRIME:
        return config.prime_keys
    raise InputError(
        f"attention type {int(attn_func)} ({attn_func.name.lower()}) has no sampling support: "
        "it can be trained and run as a full forward pass, but not decoded token by token"
    )


@dataclass
class LayerCache:
    """Preallocated keys and values of one attention layer, (batch, heads, capacity, head_dim) each."""

    attn_func: AttnFunc
    key: Tensor  # (B, H, capacity, hd)
    value: Tensor  # (B, H, capacity, hd)
    encoder_ready: bool = False  # cross-attention only: encoder k/v computed for this window

    @property
    def capacity(self) -> int:
        return self.key.shape[2]


@dataclass
class KVCache:
    """The whole model's cache: one ``LayerCache`` per transformer layer plus the shared position counter."""

    layers: list[LayerCache]
    n_ctx: int
    length: int = 0
    batch: int = field(init=False)

    def __post_init__(self) -> None:
        self.batch = self.layers[0].key.shape[0] if self.layers else 0

    def reset(self) -> None:
        """Rewind to position 0 (keeps the memory; summary zero keys stay zero as they are never written)."""
        self.length = 0
        for layer in self.layers:
            layer.encoder_ready = False

    @property
    def dtype(self) -> torch.dtype:
        return self.layers[0].key.dtype if self.layers else torch.float32

    @property
    def nbytes(self) -> int:
        return sum(c.key.numel() * c.key.element_size() * 2 for c in self.layers)


def new_layer_cache(
    config: TransformerConfig,
    attn_func: AttnFunc,
    batch: int,
    dtype: torch.dtype,
    device: torch.device | str | None = None,
) -> LayerCache:
    """Allocate the cache of one layer of type ``attn_func``."""
    if batch < 1:
        raise InputError(f"cache batch size {batch} must be >= 1")
    shape = (batch, config.heads, cache_capacity(config, attn_func), config.head_dim)
    key = torch.zeros(shape, dtype=dtype, device=device)  # (B, H, cap, hd)
    value = torch.zeros(shape, dtype=dtype, device=device)  # (B, H, cap, hd)
    return LayerCache(attn_func=attn_func, key=key, value=value)


def new_kv_cache(
    config: TransformerConfig, batch: int, dtype: torch.dtype, device: torch.device | str | None = None
) -> KVCache:
    """Allocate a cache for ``batch`` sequences of the transformer described by ``config``."""
    layers = [new_layer_cache(config, f, batch, dtype, device) for f in config.layer_attn_funcs]
    return KVCache(layers=layers, n_ctx=config.n_ctx)
