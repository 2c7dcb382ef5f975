"""``ConditionalAutoregressive``: token embedding + learned positions + transformer + output head (spec 3.2).

Keys: ``x_emb.weight`` (bins, width), ``pos_emb.pos_emb`` (n_ctx, width), ``start_token`` (1, width; lyrics
encoder only), ``transformer.*``, ``x_out.weight`` (bins, width; tied to ``x_emb`` unless merged_decoder;
absent with ``only_encode``).

Input at position 0 is the caller's ``y_cond`` (label start embedding) or the learned ``start_token``; input at
position p > 0 is the embedding of token p-1 (teacher forcing / shift right). ``h = emb + pos_emb + x_cond``,
the transformer, ``+ x_cond`` again when ``add_cond_after_transformer``, then ``x_out``. No final LayerNorm.

Precision: activations run in the dtype of ``x_emb.weight`` (the caller casts the module, e.g. to bfloat16);
LayerNorm and softmax run in float32 inside, and logits are always float32.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.errors import InputError
from model.prior.cache import KVCache
from model.prior.config import AutoregressiveConfig
from model.prior.transformer import Transformer


class ARLoss(NamedTuple):
    """Mean cross-entropy in bits per token of the prime (lyrics prefix) and generated (music) parts."""

    prime_bits: Tensor  # scalar; 0 when prime_len is 0
    gen_bits: Tensor  # scalar


def bits_per_token(logits: Tensor, targets: Tensor, prime_len: int = 0) -> ARLoss:
    """Jukebox ``get_sep_loss``: logits (N, L, bins), targets (N, L) int64; first ``prime_len`` positions apart."""
    nll = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none") / math.log(2.0)  # (N, L)
    prime = nll[:, :prime_len].mean() if prime_len > 0 else nll.new_zeros(())
    return ARLoss(prime_bits=prime, gen_bits=nll[:, prime_len:].mean())


class PositionEmbedding(nn.Module):
    def __init__(self, n_ctx: int, width: int, init_scale: float) -> None:
        super().__init__()
        self.pos_emb = nn.Parameter(torch.empty(n_ctx, width).normal_(std=0.01 * init_scale))  # (n_ctx, width)


class ConditionalAutoregressive(nn.Module):
    """Autoregressive model over ``bins`` tokens; see the module docstring for the computation."""

    def __init__(self, config: AutoregressiveConfig) -> None:
        super().__init__()
        self.config = config
        tc = config.transformer
        self.n_ctx, self.width, self.bins = tc.n_ctx, tc.width, config.bins
        self.x_emb = nn.Embedding(config.bins, tc.width)
        nn.init.normal_(self.x_emb.weight, std=0.02 * tc.init_scale)
        self.pos_emb = PositionEmbedding(tc.n_ctx, tc.width, tc.init_scale)
        if config.start_token:
            self.start_token = nn.Parameter(torch.empty(1, tc.width).normal_(std=0.01 * tc.init_scale))
        self.transformer = Transformer(tc)
        if not config.only_encode:
            self.x_out = nn.Linear(tc.width, config.bins, bias=False)
            if config.tied_output:
                self.x_out.weight = self.x_emb.weight

    # -- inputs -------------------------------------------------------------------------------------
    def _start(self, n: int, y_cond: Tensor | None, dtype: torch.dtype) -> Tensor:
        if self.config.start_token:
            return self.start_token.to(dtype).expand(n, 1, self.width)  # (N, 1, width)
        if y_cond is None:
            raise InputError("this model starts from a label embedding: pass y_cond (batch, 1, width)")
        if y_cond.numel() != n * self.width:
            raise InputError(f"y_cond has shape {tuple(y_cond.shape)}; expected ({n}, 1, {self.width})")
        return y_cond.reshape(n, 1, self.width).to(dtype)

    def _cond(self, x_cond: Tensor | None, start: int, length: int, dtype: torch.dtype) -> Tensor | None:
        """Slice x_cond (N, >= start+length, width) or broadcast (N, 1, width) to positions start.. ."""
        if x_cond is None:
            return None
        if x_cond.shape[1] == 1:
            return x_cond.to(dtype)
        if x_cond.shape[1] < start + length:
            raise InputError(
                f"x_cond covers {x_cond.shape[1]} positions; positions {start}..{start + length - 1} are needed"
            )
        return x_cond[:, start : start + length].to(dtype)

    def _logits(self, h: Tensor) -> Tensor:  # (N, T, width) -> (N, T, bins) float32
        if self.config.only_encode:
            raise InputError("this model only encodes (no output head); use hidden()")
        return F.linear(h.float(), self.x_out.weight.float())

    # -- full pass ----------------------------------------------------------------------------------
    def hidden(
        self,
        x: Tensor,
        x_cond: Tensor | None = None,
        y_cond: Tensor | None = None,
        encoder_kv: Tensor | None = None,
    ) -> Tensor:
        """Hidden states (N, L, width) before ``x_out`` for tokens x (N, L), L <= n_ctx (teacher forcing)."""
        N, L = x.shape
        if not 1 <= L <= self.n_ctx:
            raise InputError(f"sequence of {L} tokens; this model takes 1..{self.n_ctx}")
        dtype = self.x_emb.weight.dtype
        emb = self.x_emb(x)  # (N, L, width)
        h = torch.cat([self._start(N, y_cond, dtype), emb[:, :-1]], dim=1)  # (N, L, width) shifted right
        h = h + self.pos_emb.pos_emb[:L].to(dtype)  # (N, L, width)
        cond = self._cond(x_cond, 0, L, dtype)
        if cond is not None:
            h = h + cond
        h = self.transformer(h, encoder_kv=encoder_kv)  # (N, L, width)
        if cond is not None and self.config.add_cond_after_transformer:
            h = h + cond
        return h

    def forward(
        self,
        x: Tensor,
        x_cond: Tensor | None = None,
        y_cond: Tensor | None = None,
        encoder_kv: Tensor | None = None,
    ) -> Tensor:
        """Next-token logits (N, L, bins), float32: position p predicts x[:, p] from x[:, :p]."""
        return self._logits(self.hidden(x, x_cond, y_cond, encoder_kv))

    def loss(
        self,
        x: Tensor,
        x_cond: Tensor | None = None,
        y_cond: Tensor | None = None,
        encoder_kv: Tensor | None = None,
        prime_len: int = 0,
    ) -> ARLoss:
        """Bits per token of x (N, L), split at ``prime_len`` (1b_lyrics: the lyric prefix)."""
        return bits_per_token(self(x, x_cond, y_cond, encoder_kv), x, prime_len)

    # -- incremental decoding -----------------------------------------------------------------------
    def new_cache(self, batch: int, dtype: torch.dtype, device: torch.device | str | None = None) -> KVCache:
        """A preallocated ``KVCache`` for ``batch`` sequences; ``dtype`` should match the module's."""
        return self.transformer.new_cache(batch, dtype, device)

    def step(
        self,
        tokens: Tensor,
        cache: KVCache,
        x_cond: Tensor | None = None,
        y_cond: Tensor | None = None,
        encoder_kv: Tensor | None = None,
    ) -> Tensor:
        """Feed newly known tokens and return float32 logits for the positions they open.

        tokens (N, T) int64 are the tokens at positions ``cache.length - 1 .. cache.length + T - 2``.
        On a fresh cache (length 0) position 0 (``y_cond`` / start token) is fed first, so T may be 0 and
        the result has T + 1 positions; later calls return (N, T, bins). The last row always predicts the
        next unknown token. ``x_cond`` is indexed by absolute position: (N, >= positions fed, width) or
        (N, 1, width). ``y_cond`` is read at position 0 only; ``encoder_kv`` once per window.
        """
        N, T = tokens.shape
        s = cache.length
        n_pos = T + (1 if s == 0 else 0)
        if cache.batch != N:
            raise InputError(f"tokens have batch {N}; the cache was made for batch {cache.batch}")
        if n_pos == 0:
            raise InputError("step needs at least one token after position 0")
        if s + n_pos > self.n_ctx:
            raise InputError(f"positions {s}..{s + n_pos - 1} exceed the context of {self.n_ctx} tokens")
        dtype = self.x_emb.weight.dtype
        if cache.dtype != dtype:
            raise InputError(f"the cache holds {cache.dtype} but the model runs in {dtype}; make it with that dtype")
        h = self.x_emb(tokens)  # (N, T, width)
        if s == 0:
            h = torch.cat([self._start(N, y_cond, dtype), h], dim=1)  # (N, T+1, width)
        h = h + self.pos_emb.pos_emb[s : s + n_pos].to(dtype)  # (N, n_pos, width)
        cond = self._cond(x_cond, s, n_pos, dtype)
        if cond is not None:
            h = h + cond
        h = self.transformer(h, cache=cache, encoder_kv=encoder_kv)  # (N, n_pos, width)
        if cond is not None and self.config.add_cond_after_transformer:
            h = h + cond
        return self._logits(h)

    def static_step(self, token: Tensor, cache: KVCache, t: Tensor, x_cond: Tensor | None = None) -> Tensor:
        """``step`` of one token (N, 1) int64 at position ``t`` ((1,) int64 tensor, >= 1), with the same shapes
        at every position so that ``torch.compile`` traces it once (model/prior/fast_step.py). Returns float32
        logits (N, bins), the same values as ``step(token, cache, x_cond)[:, 0]`` with ``cache.length == t``;
        does not advance ``cache.length`` (the caller does). ``x_cond``: (N, >= t + 1, width), (N, 1, width) or None.
        """
        dtype = self.x_emb.weight.dtype
        h = self.x_emb(token) + self.pos_emb.pos_emb.index_select(0, t).to(dtype)  # (N, 1, width)
        cond = None
        if x_cond is not None:
            cond = (x_cond if x_cond.shape[1] == 1 else x_cond.index_select(1, t)).to(dtype)  # (N, 1, width)
            h = h + cond
        h = self.transformer.step_static(h, cache, t)  # (N, 1, width)
        if cond is not None and self.config.add_cond_after_transformer:
            h = h + cond
        return F.linear(h[:, 0].float(), self.x_out.weight.float())  # (N, bins)
