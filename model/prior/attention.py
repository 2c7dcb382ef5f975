"""``FactoredAttention``: Jukebox's multi-head attention layer, full forward and cached incremental steps.

Keys: ``c_attn.w/.b`` (width -> 3*n_state, q|k|v; cross-attention: width -> n_state queries),
``c_enc_kv.w/.b`` (cross-attention only: encoder width -> 2*n_state, k|v), ``c_proj.w/.b`` (n_state -> width).
q and k are each scaled by head_dim**-0.25 (keys are cached already scaled); scores and softmax in fp32.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from common.errors import InputError
from model.prior import attention_patterns as P
from model.prior.cache import LayerCache
from model.prior.config import AttnFunc, TransformerConfig
from model.prior.conv1d import Conv1D
from model.prior.static_attention import attend_static


class FactoredAttention(nn.Module):
    """One attention layer of type ``attn_func`` (spec 3.3) over a ``config.n_ctx``-position sequence."""

    def __init__(self, config: TransformerConfig, attn_func: AttnFunc, zero_out: bool = False) -> None:
        super().__init__()
        self.attn_func = AttnFunc(attn_func)
        self.n_ctx, self.heads, self.n_state = config.n_ctx, config.heads, config.n_state
        self.head_dim, self.block_ctx = config.head_dim, config.block_ctx
        self.blocks = int(config.blocks or 1)
        self.spread = int(config.spread or 1)
        self.prime_keys, self.encoder_dims = config.prime_keys, config.encoder_dims
        self.scale = self.head_dim**-0.25
        width, init_scale = config.width, config.init_scale
        if self.attn_func == AttnFunc.CROSS:
            self.c_attn = Conv1D(width, self.n_state, init_scale=init_scale)
            self.c_enc_kv = Conv1D(width, 2 * self.n_state, init_scale=init_scale)
        else:
            self.c_attn = Conv1D(width, 3 * self.n_state, init_scale=init_scale)
        self.c_proj = Conv1D(self.n_state, width, zero_out=zero_out, init_scale=init_scale)

    # -- head bookkeeping ---------------------------------------------------------------------------
    def _split(self, x: Tensor) -> Tensor:  # (B, T, n_state) -> (B, H, T, hd)
        B, T, _ = x.shape
        return x.view(B, T, self.heads, self.head_dim).transpose(1, 2)

    def _merge(self, x: Tensor) -> Tensor:  # (B, H, T, hd) -> (B, T, n_state)
        B, _, T, _ = x.shape
        return x.transpose(1, 2).reshape(B, T, self.n_state)

    def _encoder_kv(self, encoder_kv: Tensor | None, like: Tensor) -> tuple[Tensor, Tensor]:
        if encoder_kv is None:
            raise InputError("this transformer has cross-attention layers: pass encoder_kv (batch, tokens, width)")
        kv = self.c_enc_kv(encoder_kv.to(like.dtype))  # (B, E, 2*n_state)
        k, v = kv.chunk(2, dim=2)  # (B, E, n_state) each
        return self._split(k) * self.scale, self._split(v)  # (B, H, E, hd)

    def _qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        B, T, _ = x.shape
        qkv = self.c_attn(x)  # (B, T, 3*n_state): q | k | v
        qkv[..., : 2 * self.n_state].mul_(self.scale)  # q and k each scaled by head_dim**-0.25
        q, k, v = qkv.view(B, T, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        return q, k, v  # (B, H, T, hd) each

    # -- public -------------------------------------------------------------------------------------
    def forward(
        self,
        x: Tensor,
        cache: LayerCache | None = None,
        start: int = 0,
        encoder_kv: Tensor | None = None,
    ) -> Tensor:
        """Attend for positions ``start .. start + T - 1``; returns (B, T, width).

        x: (B, T, width), already layer-normed. Without ``cache`` this is the full forward pass of positions
        ``0 .. T-1`` (``start`` must be 0). With ``cache`` (positions ``< start`` already fed), new keys and
        values are stored and the layer sees exactly what the full pass would; any T works (1 token, a chunk
        that straddles blocks, or a whole window). ``encoder_kv`` (B, E, width): cross-attention input,
        read on the full pass and, with a cache, once per window (when ``cache.encoder_ready`` is False).
        """
        if self.attn_func == AttnFunc.CROSS:
            q = self._split(self.c_attn(x)) * self.scale  # (B, H, T, hd)
            if cache is None:
                k, v = self._encoder_kv(encoder_kv, q)
            else:
                k, v = self._cached_encoder_kv(cache, encoder_kv, q)
            out = P.attend(q, k, v, None)  # (B, H, T, hd)
        else:
            q, k, v = self._qkv(x)  # (B, H, T, hd)
            if cache is None:
                if start != 0:
                    raise ValueError("a full forward pass starts at position 0; pass a cache to continue")
                out = self._full(q, k, v)
            elif x.shape[1] == 1:
                out = self._step_one(q, k, v, cache, start)
            elif start == 0:  # a window's first chunk: the blocked full pass, then keep what later steps need
                out = self._full(q, k, v)
                self._write(cache, k, v, 0)
            else:
                out = self._step_chunk(q, k, v, cache, start)
        return self.c_proj(self._merge(out))  # (B, T, width)

    def step_static(self, x: Tensor, cache: LayerCache, t: Tensor) -> Tensor:
        """Position ``t`` ((1,) int64 tensor, >= 1) with the same shapes at every position (for compiling):
        x (B, 1, width), already layer-normed -> (B, 1, width). Same values as ``forward(x, cache, start=t)``;
        see static_attention.py. Cross-attention reads the encoder k/v already in the cache."""
        if self.attn_func == AttnFunc.CROSS:
            q = self._split(self.c_attn(x)) * self.scale  # (B, H, 1, hd)
            k = v = q  # unused: encoder k/v are already in the cache
        else:
            q, k, v = self._qkv(x)  # (B, H, 1, hd) each
        out = attend_static(self.attn_func, self.block_ctx, self.blocks, q, k, v, cache, t)  # (B, H, 1, hd)
        return self.c_proj(self._merge(out))  # (B, 1, width)

    # -- full pass ----------------------------------------------------------------------------------
    def _full(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        f, bc = self.attn_func, self.block_ctx
        if f == AttnFunc.DENSE:
            return P.dense_attn(q, k, v)
        if f == AttnFunc.BLOCK:
            return P.block_attn(q, k, v, bc)
        if f == AttnFunc.TRANSPOSE_BLOCK:
            return P.transpose_block_attn(q, k, v, bc)
        if f == AttnFunc.PREV_BLOCK:
            return P.prev_block_attn(q, k, v, bc)
        if f == AttnFunc.SUMMARY:
            return P.summary_attn(q, k, v, bc, self.blocks, 1)
        if f == AttnFunc.SUMMARY_SPREAD:
            return P.summary_attn(q, k, v, bc, self.blocks, self.spread)
        return P.prime_attn(q, k, v, self.prime_keys)

    # -- cached steps -------------------------------------------------------------------------------
    def _cached_encoder_kv(self, cache: LayerCache, encoder_kv: Tensor | None, q: Tensor) -> tuple[Tensor, Tensor]:
        if not cache.encoder_ready:
            k, v = self._encoder_kv(encoder_kv, q)  # (B, H, E, hd)
            if k.shape[2] != cache.capacity or k.shape[0] != cache.key.shape[0]:
                raise InputError(
                    f"encoder_kv has batch {k.shape[0]} and {k.shape[2]} states; this cache expects batch "
                    f"{cache.key.shape[0]} and {cache.capacity} states (encoder_dims)"
                )
            cache.key.copy_(k)
            cache.value.copy_(v)
            cache.encoder_ready = True
        return cache.key, cache.value

    def _step_one(self, q: Tensor, k: Tensor, v: Tensor, cache: LayerCache, t: int) -> Tensor:
        """One new position ``t``: q/k/v (B, H, 1, hd). Reads only the slots the pattern needs; no mask."""
        f, bc, K, V = self.attn_func, self.block_ctx, cache.key, cache.value
        if f in (AttnFunc.DENSE, AttnFunc.TRANSPOSE_BLOCK):
            K[:, :, t : t + 1].copy_(k)
            V[:, :, t : t + 1].copy_(v)
            if f == AttnFunc.DENSE:
                return P.attend(q, K[:, :, : t + 1], V[:, :, : t + 1], None)
            col = t % bc
            return P.attend(q, K[:, :, col : t + 1 : bc], V[:, :, col : t + 1 : bc], None)
        if f == AttnFunc.BLOCK:
            s = t % bc
            K[:, :, s : s + 1].copy_(k)
            V[:, :, s : s + 1].copy_(v)
            return P.attend(q, K[:, :, : s + 1], V[:, :, : s + 1], None)
        if f == AttnFunc.PREV_BLOCK:
            s = t % (2 * bc)
            K[:, :, s : s + 1].copy_(k)
            V[:, :, s : s + 1].copy_(v)
            if t < bc:  # block 0 attends to a block of zeros: output is exactly 0
                return torch.zeros_like(q)
            p = ((t // bc - 1) % 2) * bc
            return P.attend(q, K[:, :, p : p + bc], V[:, :, p : p + bc], None)
        if f == AttnFunc.SUMMARY:
            b = t // bc
            if t % bc == bc - 1 and b + 1 < cache.capacity:
                K[:, :, b + 1 : b + 2].copy_(k)
                V[:, :, b + 1 : b + 2].copy_(v)
            n = 1 + min((t + 1) // bc, self.blocks - 1)
            return P.attend(q, K[:, :, :n], V[:, :, :n], None)
        # prime
        if t < self.prime_keys:
            K[:, :, t : t + 1].copy_(k)
            V[:, :, t : t + 1].copy_(v)
        n = min(t + 1, self.prime_keys)
        return P.attend(q, K[:, :, :n], V[:, :, :n], None)

    def _step_chunk(self, q: Tensor, k: Tensor, v: Tensor, cache: LayerCache, s: int) -> Tensor:
        """Positions ``s .. s+T-1`` (T > 1): keys = cached prefix the pattern needs + the chunk, masked."""
        f, bc, T, dev = self.attn_func, self.block_ctx, q.shape[2], q.device
        qpos = torch.arange(s, s + T, device=dev)
        if f == AttnFunc.TRANSPOSE_BLOCK:  # gather each query's column: T x blocks scores, not T x (s+T)
            self._write(cache, k, v, s)
            n_rows = -(-(s + T) // bc)
            kpos = (qpos % bc)[:, None] + bc * torch.arange(n_rows, device=dev)[None, :]  # (T, n_rows)
            B, H, _, hd = q.shape
            keys = cache.key.index_select(2, kpos.flatten()).view(B, H, T, n_rows, hd)
            values = cache.value.index_select(2, kpos.flatten()).view(B, H, T, n_rows, hd)
            out = P.attend(q[:, :, :, None], keys, values, (kpos <= qpos[:, None])[:, None])  # (B, H, T, 1, hd)
            return out[:, :, :, 0]
        if f in (AttnFunc.DENSE, AttnFunc.PRIME, AttnFunc.SUMMARY):
            self._write(cache, k, v, s)
            if f == AttnFunc.SUMMARY:
                n_sum = min((s + T) // bc, self.blocks - 1)
                kpos = P.summary_key_positions(n_sum, bc, 1, dev)
            else:
                kpos = torch.arange(min(s + T, cache.capacity), device=dev)
            keys, values = cache.key[:, :, : kpos.numel()], cache.value[:, :, : kpos.numel()]
        else:
            if f == AttnFunc.BLOCK:
                first = s - s % bc  # start of the current block: slots 0 .. s%bc-1
                slots = torch.arange(0, s % bc, device=dev)
            else:  # previous block: the block before s's block, and s's block so far
                first = max(0, s - s % bc - bc)
                slots = torch.arange(first, s, device=dev) % (2 * bc)
            keys = torch.cat([cache.key.index_select(2, slots), k], dim=2)  # (B, H, s-first+T, hd)
            values = torch.cat([cache.value.index_select(2, slots), v], dim=2)
            kpos = torch.arange(first, s + T, device=dev)
            self._write(cache, k, v, s)
        out = P.attend(q, keys, values, P.visible(f, qpos, kpos, bc))  # (B, H, T, hd)
        if f == AttnFunc.PREV_BLOCK:
            out = out * (qpos >= bc).to(out.dtype)[:, None]  # block 0 sees only zeros
        return out

    def _write(self, cache: LayerCache, k: Tensor, v: Tensor, s: int) -> None:
        """Store keys/values of positions ``s .. s+T-1`` in the slots the pattern keeps (cache.py table)."""
        f, bc, T, dev = self.attn_func, self.block_ctx, k.shape[2], k.device
        if f in (AttnFunc.DENSE, AttnFunc.TRANSPOSE_BLOCK, AttnFunc.PRIME):
            n = min(s + T, cache.capacity) - s
            if n > 0:
                cache.key[:, :, s : s + n].copy_(k[:, :, :n])
                cache.value[:, :, s : s + n].copy_(v[:, :, :n])
            return
        if f == AttnFunc.BLOCK:
            first = max(s, (s + T - 1) // bc * bc)
            slots = torch.arange(first, s + T, device=dev) % bc
        elif f == AttnFunc.PREV_BLOCK:
            first = max(s, (s + T - 1) // bc * bc - bc)
            slots = torch.arange(first, s + T, device=dev) % (2 * bc)
        else:  # summary: block ends of blocks 0 .. blocks-2 go to slot block + 1
            pos = torch.arange(s, s + T, device=dev)
            keep = (pos % bc == bc - 1) & (pos // bc + 1 < cache.capacity)
            idx = (pos[keep] - s).long()
            cache.key.index_copy_(2, pos[keep] // bc + 1, k.index_select(2, idx))
            cache.value.index_copy_(2, pos[keep] // bc + 1, v.index_select(2, idx))
            return
        cache.key.index_copy_(2, slots, k[:, :, first - s :])
        cache.value.index_copy_(2, slots, v[:, :, first - s :])
