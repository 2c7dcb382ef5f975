"""The Jukebox transformer: ``depth`` pre-LayerNorm ``ResAttnBlock``s laid out by ``attn_order``.

Keys: ``_attn_mods.{i}.ln_0``, ``.attn.*`` (see attention.py), ``.ln_1``, ``.mlp.c_fc``, ``.mlp.c_proj``.
There is no final LayerNorm (spec 3.2).
"""

from __future__ import annotations

from typing import cast

import torch
from torch import Tensor, nn

from model.prior.attention import FactoredAttention
from model.prior.cache import KVCache, LayerCache, new_kv_cache
from model.prior.config import AttnFunc, TransformerConfig
from model.prior.conv1d import Conv1D, LayerNorm


def quick_gelu(x: Tensor) -> Tensor:
    return x * torch.sigmoid(1.702 * x)


class MLP(nn.Module):
    def __init__(self, width: int, hidden: int, zero_out: bool, init_scale: float) -> None:
        super().__init__()
        self.c_fc = Conv1D(width, hidden, init_scale=init_scale)
        self.c_proj = Conv1D(hidden, width, zero_out=zero_out, init_scale=init_scale)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, width) -> (B, T, width)
        return self.c_proj(quick_gelu(self.c_fc(x)))


class ResAttnBlock(nn.Module):
    """``a = attn(ln_0(x)); m = mlp(ln_1(x + a)); h = x + a + m`` (or ``x + (a + m) / depth`` with res_scale)."""

    def __init__(self, config: TransformerConfig, attn_func: AttnFunc) -> None:
        super().__init__()
        zero_out = config.zero_out or attn_func == AttnFunc.CROSS
        self.ln_0 = LayerNorm(config.width)
        self.attn = FactoredAttention(config, attn_func, zero_out=zero_out)
        self.ln_1 = LayerNorm(config.width)
        self.mlp = MLP(config.width, config.mlp_width, zero_out, config.init_scale)
        self.res_scale = 1.0 / config.depth if config.res_scale else 1.0

    def forward(
        self, x: Tensor, cache: LayerCache | None = None, start: int = 0, encoder_kv: Tensor | None = None
    ) -> Tensor:
        a = self.attn(self.ln_0(x), cache, start, encoder_kv)  # (B, T, width)
        m = self.mlp(self.ln_1(x + a))  # (B, T, width)
        if self.res_scale == 1.0:
            return x + a + m
        return x + self.res_scale * (a + m)

    def step_static(self, x: Tensor, cache: LayerCache, t: Tensor) -> Tensor:
        """``forward`` of one position ``t`` ((1,) int64) with fixed shapes: x (B, 1, width) -> (B, 1, width)."""
        a = self.attn.step_static(self.ln_0(x), cache, t)  # (B, 1, width)
        m = self.mlp(self.ln_1(x + a))  # (B, 1, width)
        return x + a + m if self.res_scale == 1.0 else x + self.res_scale * (a + m)


class Transformer(nn.Module):
    """The layer stack. ``forward`` runs the full pass or, with a ``KVCache``, the next chunk of positions."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self._attn_mods = nn.ModuleList(ResAttnBlock(config, f) for f in config.layer_attn_funcs)

    def new_cache(self, batch: int, dtype: torch.dtype, device: torch.device | str | None = None) -> KVCache:
        """Preallocated cache for ``batch`` sequences (see cache.py for the protocol)."""
        return new_kv_cache(self.config, batch, dtype, device)

    def forward(self, x: Tensor, cache: KVCache | None = None, encoder_kv: Tensor | None = None) -> Tensor:
        """x (B, T, width) -> (B, T, width).

        Without ``cache``: positions ``0 .. T-1``. With ``cache``: positions ``cache.length .. + T - 1``, then
        ``cache.length += T``. ``encoder_kv`` (B, E, width) feeds the cross-attention layers.
        """
        start = 0 if cache is None else cache.length
        for i, block in enumerate(self._attn_mods):
            x = block(x, None if cache is None else cache.layers[i], start, encoder_kv)
        if cache is not None:
            cache.length += x.shape[1]
        return x

    def step_static(self, x: Tensor, cache: KVCache, t: Tensor) -> Tensor:
        """Position ``t`` ((1,) int64 tensor) of x (B, 1, width) with the same shapes at every position, for
        ``torch.compile`` (model/prior/fast_step.py); does not advance ``cache.length`` (the caller does)."""
        for block, layer_cache in zip(self.blocks, cache.layers, strict=True):
            x = block.step_static(x, layer_cache, t)
        return x

    @property
    def blocks(self) -> list[ResAttnBlock]:
        """The layers, bottom first (``_attn_mods`` keeps Jukebox's state-dict key)."""
        return cast("list[ResAttnBlock]", list(self._attn_mods))
