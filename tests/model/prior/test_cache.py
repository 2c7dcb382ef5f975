"""KV cache: per-pattern sizes, preallocation (no growth), reuse across windows, batches."""

from __future__ import annotations

import pytest
import torch

from common.errors import InputError
from model.prior.autoregressive import ConditionalAutoregressive
from model.prior.cache import cache_capacity
from model.prior.config import AttnFunc, AutoregressiveConfig, TransformerConfig


def test_capacities_follow_the_trimming_rules() -> None:
    cfg = TransformerConfig(n_ctx=6528, width=64, depth=72, heads=2, attn_order=12, blocks=64, prime_len=384)
    caps = {f: cache_capacity(cfg, f) for f in (0, 1, 2, 3, 7)}
    assert caps == {0: 6528, 1: 102, 2: 6528, 3: 204, 7: 448}
    cfg5 = TransformerConfig(n_ctx=8192, width=64, depth=79, heads=8, attn_order=10, blocks=128, encoder_dims=512)
    assert cache_capacity(cfg5, AttnFunc.CROSS) == 512 and cache_capacity(cfg5, AttnFunc.SUMMARY) == 128
    with pytest.raises(InputError, match="summary_spread"):
        cache_capacity(cfg5, AttnFunc.SUMMARY_SPREAD)


def model_5b_lyrics() -> ConditionalAutoregressive:
    tc = TransformerConfig(n_ctx=40, width=16, depth=20, heads=2, attn_order=10, blocks=5, encoder_dims=6)
    model = ConditionalAutoregressive(AutoregressiveConfig(tc, bins=11, merged_decoder=True)).eval()
    with torch.no_grad():
        for block in model.transformer._attn_mods:
            torch.nn.init.normal_(block.attn.c_proj.w, std=0.1)
    return model


def test_cache_is_preallocated_and_reused_across_windows() -> None:
    model = model_5b_lyrics()
    cache = model.new_cache(3, torch.float32)
    pointers = [(c.key.data_ptr(), c.value.data_ptr()) for c in cache.layers]
    y = torch.randn(3, 1, 16)
    with torch.no_grad():
        for _window in range(3):  # a new song window each time: new tokens, new lyrics
            x = torch.randint(0, 11, (3, 40))
            enc = torch.randn(3, 6, 16)
            cache.reset()
            outs = [model.step(x[:, :5], cache, y_cond=y, encoder_kv=enc)]
            outs += [model.step(x[:, t : t + 1], cache, y_cond=y, encoder_kv=enc) for t in range(5, 39)]
            torch.testing.assert_close(torch.cat(outs, 1), model(x, y_cond=y, encoder_kv=enc), atol=1e-5, rtol=1e-5)
    assert pointers == [(c.key.data_ptr(), c.value.data_ptr()) for c in cache.layers]


def test_batch_rows_are_independent() -> None:
    model = model_5b_lyrics()
    x, y, enc = torch.randint(0, 11, (4, 40)), torch.randn(4, 1, 16), torch.randn(4, 6, 16)
    cache, single = model.new_cache(4, torch.float32), model.new_cache(1, torch.float32)
    with torch.no_grad():
        both = [model.step(x[:, :0], cache, y_cond=y, encoder_kv=enc)]
        both += [model.step(x[:, t : t + 1], cache) for t in range(12)]
        one = [model.step(x[2:3, :0], single, y_cond=y[2:3], encoder_kv=enc[2:3])]
        one += [model.step(x[2:3, t : t + 1], single) for t in range(12)]
    torch.testing.assert_close(torch.cat(both, 1)[2:3], torch.cat(one, 1), atol=1e-5, rtol=1e-5)


def test_cross_attention_needs_encoder_states_once_per_window() -> None:
    model = model_5b_lyrics()
    cache = model.new_cache(1, torch.float32)
    with torch.no_grad():
        model.step(torch.zeros(1, 2, dtype=torch.long), cache, y_cond=torch.randn(1, 1, 16), encoder_kv=torch.randn(1, 6, 16))
        model.step(torch.zeros(1, 1, dtype=torch.long), cache)  # encoder k/v already cached
        cache.reset()
        with pytest.raises(InputError, match="encoder_kv"):
            model.step(torch.zeros(1, 2, dtype=torch.long), cache, y_cond=torch.randn(1, 1, 16))
        with pytest.raises(InputError, match="6 states"):
            model.step(torch.zeros(1, 2, dtype=torch.long), cache, y_cond=torch.randn(1, 1, 16),
                       encoder_kv=torch.randn(1, 5, 16))  # fmt: skip


def test_trimmed_cache_is_smaller_than_full_context() -> None:
    tc = TransformerConfig(n_ctx=6528, width=64, depth=72, heads=2, attn_order=12, blocks=64, prime_len=384)
    model = ConditionalAutoregressive(AutoregressiveConfig(tc, bins=8))
    cache = model.new_cache(1, torch.bfloat16)
    full = 72 * 2 * 6528 * 16 * 2
    assert cache.nbytes < 0.4 * full  # only dense and transpose layers keep the whole window
