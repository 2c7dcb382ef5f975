"""Jukebox's two primitive layers: ``Conv1D`` (an affine map with (in, out) weights) and an fp32 LayerNorm.

Both follow the caller's precision: weights are cast to the input dtype on the fly (so fp16/bf16 weights
and fp32 activations, or the reverse, both work) and LayerNorm always normalises in float32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Conv1D(nn.Module):
    """``y = x @ w + b`` with ``w`` stored (n_in, n_out) as ``.w`` and bias ``.b`` (Jukebox key names).

    Init: ``w ~ N(0, 0.02 * init_scale)`` (zeros when ``zero_out``), ``b = 0``.
    """

    def __init__(self, n_in: int, n_out: int, zero_out: bool = False, init_scale: float = 1.0) -> None:
        super().__init__()
        self.n_in, self.n_out = n_in, n_out
        w = torch.zeros(n_in, n_out) if zero_out else torch.empty(n_in, n_out).normal_(std=0.02 * init_scale)
        self.w = nn.Parameter(w)
        self.b = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: Tensor) -> Tensor:  # (..., n_in) -> (..., n_out)
        w: Tensor = self.w
        b: Tensor = self.b
        if w.dtype != x.dtype:  # skip no-op casts: this runs 4x per layer per sampled token
            w, b = w.to(x.dtype), b.to(x.dtype)
        y = torch.addmm(b, x.reshape(-1, self.n_in), w)  # (prod(lead), n_out)
        return y.view(*x.shape[:-1], self.n_out)


class LayerNorm(nn.LayerNorm):
    """LayerNorm (eps 1e-5) computed in float32 and cast back to the input dtype."""

    def __init__(self, n: int, eps: float = 1e-5) -> None:
        super().__init__(n, eps=eps)

    def forward(self, x: Tensor) -> Tensor:
        if x.dtype == torch.float32 and self.weight.dtype == torch.float32:
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        y = F.layer_norm(x.float(), self.normalized_shape, self.weight.float(), self.bias.float(), self.eps)
        return y.to(x.dtype)
