"""Factorised attention patterns of Jukebox (spec 3.3) as pure tensor functions.

Every function takes queries, keys and values split into heads, ``(B, H, L, hd)``, for the positions
``0 .. L-1`` of one sequence, with q and k each already scaled by ``hd ** -0.25``; it returns ``(B, H, L, hd)``.
Block patterns view the sequence as ``blocks x block_ctx`` and attend inside reshaped blocks, as the
original does, instead of building an L x L mask; L need not be a multiple of block_ctx (the tail is
zero-padded, which no earlier position can see).

``visible`` states each pattern's rule on absolute positions; the cached, chunked path of
``FactoredAttention`` builds its masks from it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from model.prior.config import AttnFunc

MASK_VALUE = -1e9  # Jukebox masks with w * mask - 1e9 * (1 - mask), not -inf


def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
    """Softmax attention; scores and softmax in float32, probabilities cast back to ``v``'s dtype.

    q (..., Tq, hd), k/v (..., Tk, hd), mask bool broadcastable to (..., Tq, Tk) (True = visible) or None.
    """
    w = torch.matmul(q, k.transpose(-1, -2)).float()  # (..., Tq, Tk)
    if mask is not None:
        w = torch.where(mask, w, MASK_VALUE)  # same values as w * mask - 1e9 * (1 - mask)
    p = torch.softmax(w, dim=-1).to(v.dtype)  # (..., Tq, Tk)
    return torch.matmul(p, v)  # (..., Tq, hd)


def causal_mask(n_q: int, n_k: int, device: torch.device, offset: int = 0) -> Tensor:
    """(n_q, n_k) bool: query i sees key j iff j <= i + offset."""
    return torch.ones(n_q, n_k, dtype=torch.bool, device=device).tril(offset)


def _pad_blocks(x: Tensor, block_ctx: int) -> tuple[Tensor, int]:
    """Zero-pad the time axis (dim 2) of (B, H, L, hd) to whole blocks; returns (padded, n_blocks)."""
    n_blocks = -(-x.shape[2] // block_ctx)
    pad = n_blocks * block_ctx - x.shape[2]
    return (F.pad(x, (0, 0, 0, pad)) if pad else x), n_blocks


def dense_attn(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    length = q.shape[2]
    return attend(q, k, v, causal_mask(length, length, q.device))


def block_attn(q: Tensor, k: Tensor, v: Tensor, block_ctx: int) -> Tensor:
    B, H, L, hd = q.shape
    (q, nb), (k, _), (v, _) = (_pad_blocks(t, block_ctx) for t in (q, k, v))
    shape = (B, H, nb, block_ctx, hd)
    out = attend(q.view(shape), k.view(shape), v.view(shape), causal_mask(block_ctx, block_ctx, q.device))
    return out.view(B, H, nb * block_ctx, hd)[:, :, :L]


def transpose_block_attn(q: Tensor, k: Tensor, v: Tensor, block_ctx: int) -> Tensor:
    B, H, L, hd = q.shape
    (q, nb), (k, _), (v, _) = (_pad_blocks(t, block_ctx) for t in (q, k, v))
    shape = (B, H, nb, block_ctx, hd)
    qt, kt, vt = (t.view(shape).transpose(2, 3) for t in (q, k, v))  # (B, H, block_ctx, nb, hd)
    out = attend(qt, kt, vt, causal_mask(nb, nb, q.device))  # (B, H, block_ctx, nb, hd)
    return out.transpose(2, 3).reshape(B, H, nb * block_ctx, hd)[:, :, :L]


def prev_block_attn(q: Tensor, k: Tensor, v: Tensor, block_ctx: int) -> Tensor:
    B, H, L, hd = q.shape
    (q, nb), (k, _), (v, _) = (_pad_blocks(t, block_ctx) for t in (q, k, v))
    shape = (B, H, nb, block_ctx, hd)
    # block b attends to the whole block b-1; block 0 to a block of zeros (so its output is 0)
    kp = F.pad(k.view(shape)[:, :, :-1], (0, 0, 0, 0, 1, 0))  # (B, H, nb, block_ctx, hd)
    vp = F.pad(v.view(shape)[:, :, :-1], (0, 0, 0, 0, 1, 0))  # (B, H, nb, block_ctx, hd)
    out = attend(q.view(shape), kp, vp, None)
    return out.view(B, H, nb * block_ctx, hd)[:, :, :L]


def summary_attn(q: Tensor, k: Tensor, v: Tensor, block_ctx: int, blocks: int, spread: int = 1) -> Tensor:
    """Summary (spread 1, attn_func 4) and summary-spread (attn_func 5) attention.

    Keys: ``spread`` zero keys, then the last ``spread`` positions of blocks ``0 .. blocks-2``; a key at
    position p is visible to query t iff p <= t (the zero keys always are).
    """
    B, H, L, hd = q.shape
    (kb, nb), (vb, _) = (_pad_blocks(t, block_ctx) for t in (k, v))
    n_sum = min(nb, blocks - 1)
    shape = (B, H, nb, block_ctx, hd)
    ks = F.pad(kb.view(shape)[:, :, :n_sum, -spread:], (0, 0, 0, 0, 1, 0))  # (B, H, n_sum+1, spread, hd)
    vs = F.pad(vb.view(shape)[:, :, :n_sum, -spread:], (0, 0, 0, 0, 1, 0))  # (B, H, n_sum+1, spread, hd)
    ks, vs = ks.flatten(2, 3), vs.flatten(2, 3)  # (B, H, (n_sum+1)*spread, hd)
    kpos = summary_key_positions(n_sum, block_ctx, spread, q.device)
    qpos = torch.arange(L, device=q.device)
    return attend(q, ks, vs, kpos[None, :] <= qpos[:, None])


def summary_key_positions(n_sum: int, block_ctx: int, spread: int, device: torch.device) -> Tensor:
    """Positions of the summary keys: -1 for the ``spread`` zero keys, then each block's last ``spread``."""
    last = torch.arange(n_sum, device=device)[:, None] * block_ctx + block_ctx - spread  # (n_sum, 1)
    pos = last + torch.arange(spread, device=device)[None, :]  # (n_sum, spread)
    return torch.cat([torch.full((spread,), -1, device=device), pos.flatten()])  # ((n_sum+1)*spread,)


def prime_attn(q: Tensor, k: Tensor, v: Tensor, prime_keys: int) -> Tensor:
    n_k = min(q.shape[2], prime_keys)
    return attend(q, k[:, :, :n_k], v[:, :, :n_k], causal_mask(q.shape[2], n_k, q.device))


def visible(attn_func: AttnFunc, qpos: Tensor, kpos: Tensor, block_ctx: int) -> Tensor:
    """(Tq, Tk) bool: which key positions each query position may attend to (self-attention types).

    Summary keys carry the position of the block end they summarise (-1 for the zero key).
    Previous-block queries of block 0 see nothing here; their output is zero by definition.
    """
    q, kk = qpos[:, None], kpos[None, :]
    if attn_func in (AttnFunc.DENSE, AttnFunc.PRIME, AttnFunc.SUMMARY):
        return kk <= q
    if attn_func == AttnFunc.BLOCK:
        return (kk <= q) & (kk // block_ctx == q // block_ctx)
    if attn_func == AttnFunc.TRANSPOSE_BLOCK:
        return (kk <= q) & (kk % block_ctx == q % block_ctx)
    if attn_func == AttnFunc.PREV_BLOCK:
        return kk // block_ctx == q // block_ctx - 1
    raise ValueError(f"no position rule for attention type {attn_func!r}")
