"""The engine's cached window sampling gives exactly the tokens of a slow full-forward reference."""

import pytest
import torch

from model.prior.autoregressive import ConditionalAutoregressive
from model.prior.config import AutoregressiveConfig, TransformerConfig
from model.sampling.ar_session import CachedSession
from model.sampling.logits import draw_uniforms, make_generators, sample_from_logits
from model.sampling.session import Draw, sample_window


def tiny_core(attn_order: int = 2, bins: int = 16) -> ConditionalAutoregressive:
    torch.manual_seed(0)
    tc = TransformerConfig(n_ctx=32, width=32, depth=4, heads=2, attn_order=attn_order, blocks=4, init_scale=3.0)
    return ConditionalAutoregressive(AutoregressiveConfig(transformer=tc, bins=bins)).eval()


def reference(model: ConditionalAutoregressive, context: torch.Tensor, uniforms: torch.Tensor, temp: float,
              y_cond: torch.Tensor, x_cond: torch.Tensor) -> torch.Tensor:  # fmt: skip
    """Full forward over the whole prefix for every new token (no cache)."""
    seq = context.clone()
    for i in range(uniforms.shape[1]):
        padded = torch.cat([seq, seq.new_zeros(seq.shape[0], 1)], dim=1)  # (B, t + 1); last entry unused
        logits = model(padded, x_cond=x_cond[:, : padded.shape[1]], y_cond=y_cond)[:, -1]  # (B, V)
        seq = torch.cat([seq, sample_from_logits(logits, uniforms[:, i], temp)[:, None]], dim=1)
    return seq[:, context.shape[1] :]


@pytest.mark.parametrize("context_len,chunk", [(0, 4), (5, 3), (13, 8), (12, 32)])
def test_cached_sampling_matches_full_forward(context_len: int, chunk: int) -> None:
    model = tiny_core()
    b, n_new = 3, 32 - context_len
    y_cond = torch.randn(b, 1, 32)
    x_cond = torch.randn(b, 32, 32) * 0.1
    context = torch.randint(0, 16, (b, context_len))
    uniforms = draw_uniforms(make_generators([1, 2, 3]), n_new)
    with torch.inference_mode():
        cache = model.new_cache(b, torch.float32)
        session = CachedSession(lambda t: model.step(t, cache, x_cond=x_cond, y_cond=y_cond)[:, -1], cache)
        fast = sample_window(session, context, uniforms, Draw(chunk_size=chunk))
        slow = reference(model, context, uniforms, 1.0, y_cond, x_cond)
    assert torch.equal(fast, slow)
    assert len(set(fast.flatten().tolist())) > 3  # the draw is not degenerate


def test_session_reuses_one_cache_across_windows() -> None:
    model = tiny_core()
    cache = model.new_cache(2, torch.float32)
    y = torch.randn(2, 1, 32)
    u = draw_uniforms(make_generators([4, 5]), 10)
    with torch.inference_mode():
        ctx = torch.zeros(2, 6, dtype=torch.long)
        a = sample_window(CachedSession(lambda t: model.step(t, cache, y_cond=y)[:, -1], cache), ctx, u, Draw(chunk_size=4))
        b = sample_window(CachedSession(lambda t: model.step(t, cache, y_cond=y)[:, -1], cache), ctx, u, Draw(chunk_size=4))
    assert torch.equal(a, b)
