"""Attention of one (layer, head) from music positions onto lyric tokens, for lyric-to-audio alignment (spec 6).

The layer must read the lyrics: a cross-attention layer (5b_lyrics, type 6: queries from the music, keys from
the lyrics encoder states) or a prime-attention layer (1b_lyrics, type 7: keys are the first ``prime_keys``
positions of the merged sequence, causally). The transformer core does not keep probabilities; this module
captures the layer's input with a forward pre-hook during one full pass and recomputes that head's softmax
exactly as the layer does (scaled q.k in float32, masked keys excluded).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from common.errors import InputError
from model.prior.config import AttnFunc
from model.prior.transformer import ResAttnBlock


def capture_block_input(block: nn.Module, run: Callable[[], object]) -> Tensor:
    """Run ``run()`` and return the input (N, L, width) that ``block`` received."""
    seen: list[Tensor] = []
    handle = block.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    try:
        run()
    finally:
        handle.remove()
    if not seen:
        raise InputError("the alignment layer was not run")
    return seen[0]


def lyric_attention(
    block: ResAttnBlock, x: Tensor, head: int, n_tokens: int, music_start: int, encoder_kv: Tensor | None
) -> Tensor:
    """Softmax weights (N, L - music_start, n_tokens) of ``head`` for the input ``x`` (N, L, width) of ``block``.

    Rows are the music query positions ``music_start..L-1``; columns the lyric tokens.
    """
    attn = block.attn
    hd = attn.head_dim
    h = block.ln_0(x)  # (N, L, W)
    sl = slice(head * hd, (head + 1) * hd)
    if attn.attn_func == AttnFunc.CROSS:
        if encoder_kv is None:
            raise InputError("cross-attention alignment needs the lyrics encoder states (encoder_kv)")
        q = attn.c_attn(h)[..., sl]  # (N, L, hd)
        k = attn.c_enc_kv(encoder_kv.to(h.dtype)).chunk(2, dim=-1)[0][..., sl]  # (N, n_tokens, hd)
        scores = q.float() @ k.float().transpose(1, 2) / hd**0.5  # (N, L, n_tokens)
        return torch.softmax(scores[:, music_start:], dim=-1)  # (N, L - music_start, n_tokens)
    if attn.attn_func == AttnFunc.PRIME:
        q, k, _ = attn.c_attn(h).chunk(3, dim=-1)  # (N, L, n_state) each
        n_keys = attn.prime_keys
        q, k = q[:, music_start:, sl], k[:, :n_keys, sl]  # (N, Lm, hd), (N, n_keys, hd)
        scores = q.float() @ k.float().transpose(1, 2) / hd**0.5  # (N, Lm, n_keys)
        rows = torch.arange(music_start, x.shape[1], device=x.device).view(-1, 1)  # (Lm, 1) query positions
        visible = torch.arange(n_keys, device=x.device).view(1, -1) <= rows  # (Lm, n_keys) causal
        scores = scores.masked_fill(~visible, float("-inf"))
        return torch.softmax(scores, dim=-1)[..., :n_tokens]  # (N, Lm, n_tokens)
    raise InputError(
        f"alignment layer has attention type {int(attn.attn_func)} ({attn.attn_func.name.lower()}); "
        "it must be a lyrics-reading layer (cross-attention or prime attention)"
    )
