"""Configs of the Jukebox transformer core: ``TransformerConfig`` and ``AutoregressiveConfig``.

The layer layout (which factorised attention each layer uses) is a pure function of ``attn_order`` and
the layer index (spec 3.3); ``layer_attn_funcs`` spells it out once for the whole package.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from common.errors import ConfigError


class AttnFunc(IntEnum):
    """Factorised attention types (Jukebox ``attn_func``), spec 3.3."""

    DENSE = 0  # all keys <= t
    BLOCK = 1  # own block (row), keys <= t
    TRANSPOSE_BLOCK = 2  # same column (t mod block_ctx) in all blocks, keys <= t
    PREV_BLOCK = 3  # the whole previous block (zeros for block 0)
    SUMMARY = 4  # last position of every previous block (+ one zero key)
    SUMMARY_SPREAD = 5  # last `spread` positions of every previous block; full forward only
    CROSS = 6  # all encoder (lyrics) states
    PRIME = 7  # first _prime_len positions (lyrics + first music block), causal


NEEDS_BLOCKS = frozenset(
    {AttnFunc.BLOCK, AttnFunc.TRANSPOSE_BLOCK, AttnFunc.PREV_BLOCK, AttnFunc.SUMMARY, AttnFunc.SUMMARY_SPREAD}
)

_ORDER_10 = [1, 2, 3] * 3 + ([1, 2, 3] * 3 + [6]) * 7  # 79 layers, cross-attention at 18, 28, ..., 78


def attn_func_for_layer(attn_order: int, d: int) -> AttnFunc:
    """Attention type of layer ``d`` (0-based) under layout ``attn_order`` (0..12), spec 3.3."""
    if attn_order == 0:
        f = 0
    elif attn_order == 1:
        f = [1, 2][d % 2]
    elif attn_order == 2:
        f = [1, 2, 3][d % 3]
    elif attn_order == 3:
        f = [1, 4][d % 2]
    elif attn_order == 4:
        f = [1, 5][d % 2]
    elif attn_order == 5:
        f = [1, 4, 1, 1][d % 4]
    elif attn_order == 6:
        f = [1, 2, 3, 6][d % 4]
    elif attn_order == 7:
        f = ([1, 2, 3] * 5 + [6])[d % 16]
    elif attn_order == 8:
        f = ([1, 2, 3] * 3 + [6])[d % 10]
    elif attn_order == 9:
        f = [1, 2, 3, 0][d % 4]
    elif attn_order == 10:
        f = _ORDER_10[d % 79]
    elif attn_order == 11:
        f = [6, 6, 0][d % 3] if d % 16 == 15 else [1, 2, 3][d % 3]
    elif attn_order == 12:
        f = [7, 7, 0][d % 3] if d % 16 == 15 else [1, 2, 3][d % 3]
    else:
        raise ConfigError(f"attn_order {attn_order} is not a Jukebox layout; allowed 0..12")
    return AttnFunc(f)


@dataclass(frozen=True)
class TransformerConfig:
    """The stack of ``depth`` ResAttnBlocks over a sequence of ``n_ctx`` positions.

    ``n_ctx`` is the transformer length (for the merged 1b_lyrics model: lyric tokens + music tokens).
    ``blocks`` factorises it as ``blocks x block_ctx`` for the block attention types.
    ``encoder_dims``: number of encoder states that cross-attention layers (type 6) read (5b_lyrics: 512).
    ``prime_len``: lyric prefix length seen by prime attention (type 7, 1b_lyrics: 384); the layer attends to
    ``_prime_len = (prime_len // blocks + 1) * blocks`` keys (448 for 1b_lyrics, a Jukebox quirk kept on purpose).
    """

    n_ctx: int
    width: int
    depth: int
    heads: int = 1
    attn_order: int = 0
    blocks: int | None = None
    spread: int | None = None
    m_attn: float = 0.25
    m_mlp: float = 1.0
    init_scale: float = 1.0
    res_scale: bool = False  # True: h = x + (a + m) / depth
    zero_out: bool = False  # zero-initialise every c_proj (cross-attention layers always are)
    encoder_dims: int = 0
    prime_len: int = 0

    def __post_init__(self) -> None:
        for name in ("n_ctx", "width", "depth", "heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"transformer {name}={getattr(self, name)} must be >= 1")
        if self.n_state % self.heads != 0 or self.n_state < self.heads:
            raise ConfigError(
                f"attention width m_attn*width={self.n_state} must be a positive multiple of heads={self.heads}"
            )
        funcs = self.layer_attn_funcs  # validates attn_order
        needs_blocks = any(f in NEEDS_BLOCKS for f in funcs) or AttnFunc.PRIME in funcs
        if needs_blocks and (self.blocks is None or self.blocks < 1 or self.n_ctx % self.blocks != 0):
            raise ConfigError(
                f"attn_order {self.attn_order} needs blocks dividing n_ctx={self.n_ctx}; got blocks={self.blocks}"
            )
        if AttnFunc.SUMMARY_SPREAD in funcs and (self.spread is None or not 1 <= self.spread <= self.block_ctx):
            raise ConfigError(f"summary-spread attention needs 1 <= spread <= block_ctx; got spread={self.spread}")
        if AttnFunc.CROSS in funcs and self.encoder_dims < 1:
            raise ConfigError(f"attn_order {self.attn_order} has cross-attention: encoder_dims must be >= 1")
        if AttnFunc.PRIME in funcs and not 1 <= self.prime_len < self.n_ctx:
            raise ConfigError(f"attn_order {self.attn_order} has prime attention: need 1 <= prime_len < n_ctx")

    @property
    def n_state(self) -> int:
        """Attention width (q, k and v each), ``int(m_attn * width)``."""
        return int(self.m_attn * self.width)

    @property
    def head_dim(self) -> int:
        return self.n_state // self.heads

    @property
    def mlp_width(self) -> int:
        return int(self.m_mlp * self.width)

    @property
    def block_ctx(self) -> int:
        """Positions per block; ``n_ctx`` when the layout has no block attention."""
        return self.n_ctx // self.blocks if self.blocks else self.n_ctx

    @property
    def prime_keys(self) -> int:
        """Keys seen by prime attention: ``(prime_len // blocks + 1) * blocks``, clipped to n_ctx."""
        if not self.prime_len or not self.blocks:
            return 0
        return min((self.prime_len // self.blocks + 1) * self.blocks, self.n_ctx)

    @property
    def layer_attn_funcs(self) -> tuple[AttnFunc, ...]:
        return tuple(attn_func_for_layer(self.attn_order, d) for d in range(self.depth))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TransformerConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown transformer config keys {sorted(unknown)}; allowed {sorted(names)}")
        return cls(**d)


@dataclass(frozen=True)
class AutoregressiveConfig:
    """``ConditionalAutoregressive``: token embedding + positions + transformer + output head.

    ``bins``: vocabulary (music codes, or merged lyrics+music vocab for 1b_lyrics, or lyric chars for the
    5b_lyrics encoder). ``merged_decoder`` False (upsamplers, 1b_lyrics): ``x_out`` is tied to ``x_emb`` and
    ``x_cond`` is added again after the transformer. ``start_token``: a learned position-0 input (lyrics
    encoder) instead of the caller's ``y_cond``. ``only_encode``: no ``x_out``; the model returns hidden states.
    """

    transformer: TransformerConfig
    bins: int
    merged_decoder: bool = False
    start_token: bool = False
    only_encode: bool = False

    def __post_init__(self) -> None:
        if self.bins < 1:
            raise ConfigError(f"bins={self.bins} must be >= 1")

    @property
    def add_cond_after_transformer(self) -> bool:
        return not self.merged_decoder

    @property
    def tied_output(self) -> bool:
        return not self.merged_decoder

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AutoregressiveConfig:
        d = dict(d)
        transformer = d.pop("transformer")
        if not isinstance(transformer, TransformerConfig):
            transformer = TransformerConfig.from_dict(transformer)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"unknown autoregressive config keys {sorted(unknown)}; allowed {sorted(names)}")
        return cls(transformer=transformer, **d)
