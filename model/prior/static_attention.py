"""One new position of one cached attention layer, with the same tensor shapes at every position.

``attend_static`` is the static-shape twin of ``FactoredAttention._step_one``: the position is a (1,) int64
tensor, keys/values are written with ``index_copy_`` at a tensor slot and every layer attends over its whole
cache with a validity mask (masked scores are -1e9, as in the full pass, so they weigh exactly 0), and nothing
branches on data. ``FactoredAttention.step_static`` calls it; ``model/prior/fast_step.py`` compiles the whole
step built from it. Cache slots follow the table in cache.py, so both steps read and write the same cache.
"""

from __future__ import annotations

import torch
from torch import Tensor

from model.prior import attention_patterns as P
from model.prior.cache import LayerCache
from model.prior.config import AttnFunc


def _write(cache: LayerCache, slot: Tensor, k: Tensor, v: Tensor) -> None:
    """Store k/v (B, H, 1, hd) in slot ``slot`` (1,) int64 of the layer's keys/values."""
    cache.key.index_copy_(2, slot, k)
    cache.value.index_copy_(2, slot, v)


def _write_if(cache: LayerCache, slot: Tensor, keep: Tensor, k: Tensor, v: Tensor) -> None:
    """Store k/v in ``slot`` only where ``keep`` (1,) bool is True (otherwise the slot keeps its value)."""
    _write(
        cache,
        slot,
        torch.where(keep, k, cache.key.index_select(2, slot)),  # (B, H, 1, hd)
        torch.where(keep, v, cache.value.index_select(2, slot)),
    )


def attend_one(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
    """``attention_patterns.attend`` for one query per row, as products and sums (which inductor fuses and
    vectorises; a bmm with one query row is not), with the same roundings: scores rounded to the activation
    dtype, then softmax in float32, probabilities rounded to ``v``'s dtype, sums accumulated in float32.

    q (..., 1, hd), k/v (..., S, hd), mask bool broadcastable to (..., 1, S) or None -> (..., 1, hd).
    """
    w = (q.float() * k.float()).sum(-1).to(q.dtype).float()[..., None, :]  # (..., 1, S)
    if mask is not None:
        w = torch.where(mask, w, P.MASK_VALUE)
    p = torch.softmax(w, dim=-1).to(v.dtype).float()  # (..., 1, S)
    return (p.transpose(-1, -2) * v.float()).sum(-2, keepdim=True).to(v.dtype)  # (..., 1, hd)


def attend_static(
    f: AttnFunc, block_ctx: int, blocks: int, q: Tensor, k: Tensor, v: Tensor, cache: LayerCache, t: Tensor
) -> Tensor:
    """Position ``t`` (1,) int64 of a layer of type ``f``: q/k/v (B, H, 1, hd) -> (B, H, 1, hd); shapes fixed."""
    bc, K, V = block_ctx, cache.key, cache.value
    B, H, cap, hd = K.shape
    slots = torch.arange(cap, device=t.device)  # (cap,)
    if f == AttnFunc.CROSS:
        return attend_one(q, K, V, None)
    if f == AttnFunc.DENSE:
        _write(cache, t, k, v)
        return attend_one(q, K, V, slots <= t)
    if f == AttnFunc.TRANSPOSE_BLOCK:  # column t % bc of every block, rows up to t's
        _write(cache, t, k, v)
        col = t % bc  # (1,)
        n_rows = cap // bc
        keys = K.view(B, H, n_rows, bc, hd).index_select(3, col).view(B, H, n_rows, hd)
        values = V.view(B, H, n_rows, bc, hd).index_select(3, col).view(B, H, n_rows, hd)
        return attend_one(q, keys, values, torch.arange(n_rows, device=t.device) <= t // bc)
    if f == AttnFunc.BLOCK:
        s = t % bc  # (1,)
        _write(cache, s, k, v)
        return attend_one(q, K, V, slots <= s)
    if f == AttnFunc.PREV_BLOCK:  # two halves of bc slots: current and previous block
        _write(cache, t % (2 * bc), k, v)
        half = (t // bc + 1) % 2  # (1,) the previous block's half
        keys = K.view(B, H, 2, bc, hd).index_select(2, half).view(B, H, bc, hd)
        values = V.view(B, H, 2, bc, hd).index_select(2, half).view(B, H, bc, hd)
        return attend_one(q, keys, values, None) * (t >= bc).to(q.dtype)  # block 0 sees only zeros
    if f == AttnFunc.SUMMARY:  # slot 0 a zero key; block b's last position goes to slot b + 1
        b = t // bc
        keep = (t % bc == bc - 1) & (b + 1 < cap)
        _write_if(cache, (b + 1).clamp(max=cap - 1), keep, k, v)
        return attend_one(q, K, V, slots < 1 + torch.clamp((t + 1) // bc, max=blocks - 1))
    if f == AttnFunc.PRIME:
        _write_if(cache, t.clamp(max=cap - 1), t < cap, k, v)
        return attend_one(q, K, V, slots <= t)
    raise ValueError(f"attention type {int(f)} has no cached step")
