"""A static-shape single-token step of ``ConditionalAutoregressive``, optionally compiled with ``torch.compile``.

``ConditionalAutoregressive.step`` slices each layer's cache to the positions its pattern needs, so shapes
change every token and each step costs ~20 eager ops per layer. ``static_step`` computes the same logits with
the same shapes at every position: the position is a tensor, caches are written with ``index_copy_`` at a
tensor slot and attended over their whole capacity with a validity mask (masked scores are -1e9, as in the
full pass, so they contribute exactly 0), and nothing branches on data. That lets ``torch.compile`` turn the
whole step (all layers, embedding, output head) into one graph of fused kernels that is traced once per
(batch, dtype) and reused for every token of every window.

``FastStep(model, cache, compile=True)`` is what callers use: ``attach`` it to a cache and
``ConditionalAutoregressive.step`` routes every single-token call after position 0 through it (chunks and a
window's first call keep the eager path). If compilation fails the step falls back to the eager path and
says why once (``logging``). See docs/priors.md, "Fast single-token step".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, cast

import torch
import torch.nn.functional as F
from torch import Tensor

from model.prior import attention_patterns as P
from model.prior.cache import KVCache, LayerCache
from model.prior.config import AttnFunc

if TYPE_CHECKING:
    from model.prior.attention import FactoredAttention
    from model.prior.autoregressive import ConditionalAutoregressive
    from model.prior.transformer import ResAttnBlock

log = logging.getLogger(__name__)

AUTO_BF16_ROWS = 16  # CPU: bf16 matmuls beat fp32 only from ~16 rows (oneDNN avx512_bf16 / AMX kernels)


def auto_precision(rows: int, device_type: str) -> str:
    """The precision ``"auto"`` means for a step over ``rows`` rows: fp32 on CPU below ``AUTO_BF16_ROWS``
    rows (single-row bf16 matmuls are slower there), bf16 from there and on GPUs."""
    return "bf16" if device_type != "cpu" or rows >= AUTO_BF16_ROWS else "fp32"


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


def _attend_one(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
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


def _attend_static(attn: FactoredAttention, q: Tensor, k: Tensor, v: Tensor, cache: LayerCache, t: Tensor) -> Tensor:
    """The new position ``t`` (1,) int64 of one layer: q/k/v (B, H, 1, hd) -> (B, H, 1, hd); shapes fixed."""
    f, bc, K, V = attn.attn_func, attn.block_ctx, cache.key, cache.value
    B, H, cap, hd = K.shape
    slots = torch.arange(cap, device=t.device)  # (cap,)
    if f == AttnFunc.CROSS:
        return _attend_one(q, K, V, None)
    if f == AttnFunc.DENSE:
        _write(cache, t, k, v)
        return _attend_one(q, K, V, slots <= t)
    if f == AttnFunc.TRANSPOSE_BLOCK:  # column t % bc of every block, rows up to t's
        _write(cache, t, k, v)
        col = t % bc  # (1,)
        n_rows = cap // bc
        keys = K.view(B, H, n_rows, bc, hd).index_select(3, col).view(B, H, n_rows, hd)
        values = V.view(B, H, n_rows, bc, hd).index_select(3, col).view(B, H, n_rows, hd)
        return _attend_one(q, keys, values, torch.arange(n_rows, device=t.device) <= t // bc)
    if f == AttnFunc.BLOCK:
        s = t % bc  # (1,)
        _write(cache, s, k, v)
        return _attend_one(q, K, V, slots <= s)
    if f == AttnFunc.PREV_BLOCK:  # two halves of bc slots: current and previous block
        _write(cache, t % (2 * bc), k, v)
        half = (t // bc + 1) % 2  # (1,) the previous block's half
        keys = K.view(B, H, 2, bc, hd).index_select(2, half).view(B, H, bc, hd)
        values = V.view(B, H, 2, bc, hd).index_select(2, half).view(B, H, bc, hd)
        return _attend_one(q, keys, values, None) * (t >= bc).to(q.dtype)  # block 0 sees only zeros
    if f == AttnFunc.SUMMARY:  # slot 0 a zero key; block b's last position goes to slot b + 1
        b = t // bc
        keep = (t % bc == bc - 1) & (b + 1 < cap)
        _write_if(cache, (b + 1).clamp(max=cap - 1), keep, k, v)
        return _attend_one(q, K, V, slots < 1 + torch.clamp((t + 1) // bc, max=attn.blocks - 1))
    if f == AttnFunc.PRIME:
        _write_if(cache, t.clamp(max=cap - 1), t < cap, k, v)
        return _attend_one(q, K, V, slots <= t)
    raise ValueError(f"attention type {int(f)} has no cached step")


def static_step(model: ConditionalAutoregressive, cache: KVCache, token: Tensor, t: Tensor, x_cond: Tensor | None) -> Tensor:
    """Feed ``token`` (N, 1) int64 at position ``t`` (1,) int64 (>= 1); return float32 logits (N, bins).

    Same values as ``model.step(token, cache, x_cond)`` with ``cache.length == t``; does not advance
    ``cache.length`` (the caller does). ``x_cond``: (N, >= t + 1, width), (N, 1, width) or None.
    """
    dtype = model.x_emb.weight.dtype
    h = model.x_emb(token) + model.pos_emb.pos_emb.index_select(0, t).to(dtype)  # (N, 1, width)
    cond = None
    if x_cond is not None:
        cond = (x_cond if x_cond.shape[1] == 1 else x_cond.index_select(1, t)).to(dtype)  # (N, 1, width)
        h = h + cond
    blocks = cast("list[ResAttnBlock]", list(model.transformer._attn_mods))
    for block, layer_cache in zip(blocks, cache.layers, strict=True):
        attn = block.attn
        a_in = block.ln_0(h)  # (N, 1, width)
        if attn.attn_func == AttnFunc.CROSS:
            q = attn._split(attn.c_attn(a_in)) * attn.scale  # (N, H, 1, hd)
            k = v = q  # unused: encoder k/v are already in the cache
        else:
            q, k, v = attn._qkv(a_in)  # (N, H, 1, hd) each
        a = attn.c_proj(attn._merge(_attend_static(attn, q, k, v, layer_cache, t)))  # (N, 1, width)
        m = block.mlp(block.ln_1(h + a))  # (N, 1, width)
        h = h + a + m if block.res_scale == 1.0 else h + block.res_scale * (a + m)
    if cond is not None and model.config.add_cond_after_transformer:
        h = h + cond
    return F.linear(h[:, 0].float(), model.x_out.weight.float())  # (N, bins)


class FastStep:
    """Single-token steps of ``model`` over ``cache`` through ``static_step``, compiled when ``compile``.

    Use ``FastStep(model, cache).attach()``: from then on ``model.step(token (N, 1), cache, ...)`` after
    position 0 runs here. ``compiled`` tells whether the compiled graph is in use; ``error`` why not.
    The graph is specialised to the cache's batch, dtype and device and to the shape of ``x_cond`` (None,
    broadcast or per position); another shape traces once more. Compiled with inductor's ``freezing``, the
    weights are constants of the graph: a FastStep serves the weights it first ran with (make a new one
    after loading others). Once a call signature has run, later calls with it skip dynamo's guard checks
    (``skip_guard_eval_unsafe``), which this class makes safe by checking that signature itself.
    """

    def __init__(self, model: ConditionalAutoregressive, cache: KVCache, compile: bool = True) -> None:
        self.model, self.cache = model, cache
        self.error: str | None = None
        self._position = torch.zeros(1, dtype=torch.long, device=cache.layers[0].key.device)  # (1,)
        self._token = torch.zeros(cache.batch, 1, dtype=torch.long, device=self._position.device)  # (N, 1)
        self._seen: set[tuple[object, ...]] = set()  # call signatures the compiled graph has been traced for
        fn: Callable[[Tensor, Tensor, Tensor | None], Tensor] = self._eager
        if compile:
            fn = torch.compile(self._eager, dynamic=False, fullgraph=True, options={"freezing": True})
        self._fn = fn
        self.compiled = compile

    def attach(self) -> FastStep:
        self.cache.fast_step = self
        return self

    def _eager(self, token: Tensor, t: Tensor, x_cond: Tensor | None) -> Tensor:
        return static_step(self.model, self.cache, token, t, x_cond)

    def _compiled(self, token: Tensor, x_cond: Tensor | None) -> Tensor:
        cond = None if x_cond is None else (tuple(x_cond.shape), x_cond.stride(), x_cond.dtype, x_cond.device)
        weight = self.model.x_emb.weight
        signature = (cond, weight.dtype, weight.device, torch.is_grad_enabled(), torch.is_inference_mode_enabled())
        if signature in self._seen:  # traced for exactly these inputs: dynamo's guards would only repeat this
            try:
                with torch.compiler.set_stance("default", skip_guard_eval_unsafe=True):
                    return self._fn(self._token, self._position, x_cond)
            except RuntimeError:  # something this signature misses changed: trace again, with guards
                self._seen.discard(signature)
        logits = self._fn(self._token, self._position, x_cond)  # (N, bins); traces (compiles) on a new signature
        self._seen.add(signature)
        return logits

    def __call__(self, token: Tensor, x_cond: Tensor | None) -> Tensor:
        """token (N, 1) at position ``cache.length``; returns (N, 1, bins) float32 and advances the cache."""
        self._position.fill_(self.cache.length)
        self._token.copy_(token)  # one input buffer: the graph never sees another stride or address
        if self.compiled:
            try:
                logits = self._compiled(token, x_cond)  # (N, bins)
            except Exception as exc:  # noqa: BLE001 - any compiler failure falls back to the eager step
                self.error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("compiled single-token step failed, using the eager step: %s", self.error)
                self.compiled = False
                logits = self._eager(self._token, self._position, x_cond)
        else:
            logits = self._eager(self._token, self._position, x_cond)
        self.cache.length += 1
        return logits[:, None]  # (N, 1, bins)
