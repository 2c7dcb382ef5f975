"""Transformer stack: layouts, key names, init, block arithmetic, fp32 LayerNorm, HF oracle."""

from __future__ import annotations

import json
import re

import pytest
import torch

from common.errors import ConfigError
from model.prior.config import AttnFunc, AutoregressiveConfig, TransformerConfig, attn_func_for_layer
from model.prior.conv1d import Conv1D, LayerNorm
from model.prior.transformer import ResAttnBlock, Transformer, quick_gelu

SPEC_LAYOUTS = {  # spec 3.3, written out independently of the package
    0: lambda d: 0,
    1: lambda d: [1, 2][d % 2],
    2: lambda d: [1, 2, 3][d % 3],
    3: lambda d: [1, 4][d % 2],
    4: lambda d: [1, 5][d % 2],
    5: lambda d: [1, 4, 1, 1][d % 4],
    6: lambda d: [1, 2, 3, 6][d % 4],
    7: lambda d: 6 if d % 16 == 15 else [1, 2, 3][(d % 16) % 3],
    8: lambda d: 6 if d % 10 == 9 else [1, 2, 3][(d % 10) % 3],
    9: lambda d: [1, 2, 3, 0][d % 4],
    10: lambda d: 6 if d % 79 >= 9 and (d % 79 - 9) % 10 == 9 else [1, 2, 3][((d % 79) - (d % 79 >= 9) * 9) % 10 % 3],
    11: lambda d: [6, 6, 0][d % 3] if d % 16 == 15 else [1, 2, 3][d % 3],
    12: lambda d: [7, 7, 0][d % 3] if d % 16 == 15 else [1, 2, 3][d % 3],
}


@pytest.mark.parametrize("order", range(13))
def test_layouts_follow_the_spec(order: int) -> None:
    assert [int(attn_func_for_layer(order, d)) for d in range(160)] == [SPEC_LAYOUTS[order](d) for d in range(160)]


def test_released_layouts() -> None:
    five_b_lyrics = [attn_func_for_layer(10, d) for d in range(79)]
    assert [d for d, f in enumerate(five_b_lyrics) if f == AttnFunc.CROSS] == [18, 28, 38, 48, 58, 68, 78]
    one_b = [attn_func_for_layer(12, d) for d in range(72)]
    assert [d for d, f in enumerate(one_b) if f == AttnFunc.PRIME] == [15, 31, 63]
    assert [d for d, f in enumerate(one_b) if f == AttnFunc.DENSE] == [47]
    assert {attn_func_for_layer(2, d) for d in range(72)} == {1, 2, 3}


@pytest.mark.oracle
@pytest.mark.parametrize(("order", "name"), [(2, "raw_column_previous_row_attention"),
                                             (10, "large_separated_enc_dec_w_lyrics"), (12, "enc_dec_with_lyrics")])  # fmt: skip
def test_layouts_match_transformers_oracle(order: int, name: str) -> None:
    hf = pytest.importorskip("transformers.models.deprecated.jukebox.configuration_jukebox")
    names = {"block_attn": 1, "transpose_block_attn": 2, "prev_block_attn": 3, "cross_attention": 6,
             "prime_attn": 7, "dense_attn": 0}  # fmt: skip
    assert [attn_func_for_layer(order, d) for d in range(79)] == [names[hf.ATTENTION_PATTERNS[name](d)] for d in range(79)]


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ConfigError, match="attn_order 13"):
        TransformerConfig(n_ctx=32, width=16, depth=2, attn_order=13)
    with pytest.raises(ConfigError, match="blocks dividing n_ctx"):
        TransformerConfig(n_ctx=30, width=16, depth=2, attn_order=2, blocks=4)
    with pytest.raises(ConfigError, match="encoder_dims"):
        TransformerConfig(n_ctx=32, width=16, depth=19, attn_order=10, blocks=4)
    with pytest.raises(ConfigError, match="multiple of heads"):
        TransformerConfig(n_ctx=32, width=16, depth=2, heads=3)


def test_configs_round_trip_through_dicts() -> None:
    cfg = AutoregressiveConfig(tiny_5b_lyrics(), bins=80, start_token=True, only_encode=True)
    assert AutoregressiveConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ConfigError, match="unknown transformer config keys"):
        TransformerConfig.from_dict({**tiny_5b_lyrics().to_dict(), "dropout": 0.1})


def tiny_5b_lyrics() -> TransformerConfig:
    return TransformerConfig(n_ctx=32, width=16, depth=20, heads=2, attn_order=10, blocks=4, encoder_dims=6)


def test_key_names_and_shapes_match_jukebox() -> None:
    cfg = tiny_5b_lyrics()
    shapes = {k: tuple(v.shape) for k, v in Transformer(cfg).state_dict().items()}
    assert shapes["_attn_mods.0.attn.c_attn.w"] == (16, 12)
    assert shapes["_attn_mods.0.attn.c_proj.w"] == (4, 16)
    assert shapes["_attn_mods.18.attn.c_attn.w"] == (16, 4)
    assert shapes["_attn_mods.18.attn.c_enc_kv.w"] == (16, 8)
    assert shapes["_attn_mods.3.mlp.c_fc.w"] == (16, 16) and shapes["_attn_mods.3.mlp.c_proj.b"] == (16,)
    suffixes = {re.sub(r"^_attn_mods\.\d+\.", "", k) for k in shapes}
    assert suffixes == {
        "ln_0.weight", "ln_0.bias", "ln_1.weight", "ln_1.bias", "attn.c_attn.w", "attn.c_attn.b", "attn.c_proj.w",
        "attn.c_proj.b", "attn.c_enc_kv.w", "attn.c_enc_kv.b", "mlp.c_fc.w", "mlp.c_fc.b", "mlp.c_proj.w", "mlp.c_proj.b",
    }  # fmt: skip
    assert "_attn_mods.17.attn.c_enc_kv.w" not in shapes


def test_init_scale_and_zero_out() -> None:
    t = Transformer(tiny_5b_lyrics())
    assert torch.count_nonzero(t._attn_mods[18].attn.c_proj.w) == 0  # cross-attention starts silent
    assert torch.count_nonzero(t._attn_mods[18].mlp.c_proj.w) == 0
    assert torch.count_nonzero(t._attn_mods[17].attn.c_proj.w) > 0
    conv = Conv1D(256, 512, init_scale=0.5)
    assert abs(conv.w.std().item() - 0.01) < 5e-4 and torch.count_nonzero(conv.b) == 0
    zeroed = Transformer(TransformerConfig(n_ctx=8, width=16, depth=2, zero_out=True))
    assert all(torch.count_nonzero(b.attn.c_proj.w) == 0 for b in zeroed._attn_mods)


@pytest.mark.parametrize("res_scale", [False, True])
def test_block_arithmetic(res_scale: bool) -> None:
    cfg = TransformerConfig(n_ctx=8, width=16, depth=4, heads=2, res_scale=res_scale)
    block = ResAttnBlock(cfg, AttnFunc.DENSE)
    x = torch.randn(2, 8, 16)
    with torch.no_grad():
        a = block.attn(block.ln_0(x))
        mlp = block.mlp.c_proj(quick_gelu(block.mlp.c_fc(block.ln_1(x + a))))
        expected = x + (a + mlp) / (4 if res_scale else 1)
        torch.testing.assert_close(block(x), expected)
    assert torch.allclose(quick_gelu(torch.tensor([1.0])), torch.sigmoid(torch.tensor([1.702])))


def test_conv1d_and_layernorm_follow_input_dtype() -> None:
    conv = Conv1D(8, 4).to(torch.bfloat16)
    x = torch.randn(3, 5, 8)
    y = conv(x)
    assert y.dtype == torch.float32 and y.shape == (3, 5, 4)
    torch.testing.assert_close(y, x @ conv.w.float() + conv.b.float())
    ln = LayerNorm(8).to(torch.bfloat16)
    xb = (torch.randn(2, 8) * 100 + 1000).to(torch.bfloat16)
    ref = torch.nn.functional.layer_norm(xb.float(), (8,), eps=1e-5).to(torch.bfloat16)
    assert ln(xb).dtype == torch.bfloat16 and torch.equal(ln(xb), ref)


@pytest.mark.oracle
@pytest.mark.parametrize(("cfg", "pattern"), [
    (TransformerConfig(n_ctx=36, width=16, depth=16, heads=2, attn_order=12, blocks=6, prime_len=7), "enc_dec_with_lyrics"),
    (tiny_5b_lyrics(), "large_separated_enc_dec_w_lyrics"),
])  # fmt: skip
def test_stack_matches_transformers_oracle(cfg: TransformerConfig, pattern: str) -> None:
    jb = pytest.importorskip("transformers.models.deprecated.jukebox.modeling_jukebox")
    hf_cfg = pytest.importorskip("transformers.models.deprecated.jukebox.configuration_jukebox")
    pc = hf_cfg.JukeboxPriorConfig(
        hidden_size=cfg.width, n_heads=cfg.heads, num_layers=cfg.depth, attention_pattern=pattern, blocks=cfg.blocks,
        mask=True, nb_relevant_lyric_tokens=cfg.prime_len,
    )  # fmt: skip
    ours = Transformer(cfg)
    for p in ours.parameters():  # no zero c_proj: every layer must matter
        torch.nn.init.normal_(p, std=0.2)
    theirs = jb.JukeboxLayerStack(pc, cfg.n_ctx).eval()
    rename = {"ln_0": "layer_norm_0", "ln_1": "layer_norm_1"}
    state = {}
    for k, v in ours.state_dict().items():
        k = re.sub(r"\.w$", ".weight", re.sub(r"\.b$", ".bias", k))
        state[re.sub(r"ln_[01]", lambda m: rename[m.group(0)], k)] = v
    theirs.load_state_dict(state)
    x, enc = torch.randn(2, cfg.n_ctx, cfg.width), torch.randn(2, cfg.encoder_dims or 1, cfg.width)
    with torch.no_grad():
        expected = theirs(x, enc if cfg.encoder_dims else None)
        got = ours(x, encoder_kv=enc if cfg.encoder_dims else None)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
