"""FactoredAttention: masks vs. the spec's table, cached/chunked steps vs. the full pass, HF oracle."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from common.errors import InputError
from model.prior.attention import FactoredAttention
from model.prior.cache import new_layer_cache
from model.prior.config import AttnFunc, TransformerConfig

L, BLOCKS, BC, SPREAD, ENC, PRIME_LEN = 24, 6, 4, 2, 5, 7  # prime_keys = (7 // 6 + 1) * 6 = 12
SELF_TYPES = [AttnFunc.DENSE, AttnFunc.BLOCK, AttnFunc.TRANSPOSE_BLOCK, AttnFunc.PREV_BLOCK, AttnFunc.SUMMARY, AttnFunc.PRIME]
CACHED_TYPES = [*SELF_TYPES, AttnFunc.CROSS]
CHUNKINGS = [[1] * L, [3] * 8, [8] * 3, [BC] * 6, [5, 5, 5, 5, 4], [1, 3, 8, 4, 2, 6], [2, 22], [L]]


def config(width: int = 16, heads: int = 2, m_attn: float = 0.5) -> TransformerConfig:
    return TransformerConfig(
        n_ctx=L, width=width, depth=1, heads=heads, attn_order=0, blocks=BLOCKS, spread=SPREAD,
        m_attn=m_attn, encoder_dims=ENC, prime_len=PRIME_LEN,
    )  # fmt: skip


def reference_mask(f: AttnFunc) -> torch.Tensor:
    """(L, L) bool, built position by position from the table of spec 3.3 (keys are sequence positions)."""
    cfg = config()
    m = torch.zeros(L, L, dtype=torch.bool)
    for t in range(L):
        for j in range(L):
            if f == AttnFunc.DENSE:
                m[t, j] = j <= t
            elif f == AttnFunc.BLOCK:
                m[t, j] = j <= t and j // BC == t // BC
            elif f == AttnFunc.TRANSPOSE_BLOCK:
                m[t, j] = j <= t and j % BC == t % BC
            elif f == AttnFunc.PREV_BLOCK:
                m[t, j] = j // BC == t // BC - 1
            elif f == AttnFunc.SUMMARY:
                m[t, j] = j <= t and j % BC == BC - 1 and j // BC <= BLOCKS - 2
            elif f == AttnFunc.SUMMARY_SPREAD:
                m[t, j] = j <= t and j % BC >= BC - SPREAD and j // BC <= BLOCKS - 2
            elif f == AttnFunc.PRIME:
                m[t, j] = j <= t and j < cfg.prime_keys
    return m


def probe(f: AttnFunc) -> FactoredAttention:
    """Queries and keys zero, values = the one-hot position: row t of the output = mean of visible one-hots."""
    cfg = config(width=L, heads=1, m_attn=1.0)
    attn = FactoredAttention(cfg, f)
    with torch.no_grad():
        eye = torch.eye(L)
        for p in attn.parameters():
            p.zero_()
        if f == AttnFunc.CROSS:
            attn.c_enc_kv.w[:, L:] = eye
        else:
            attn.c_attn.w[:, 2 * L :] = eye
        attn.c_proj.w.copy_(eye)
    return attn


def run(
    attn: FactoredAttention, x: torch.Tensor, chunks: list[int] | None, enc: torch.Tensor | None = None
) -> torch.Tensor:
    """Full pass (chunks None) or cached pass over the given chunk sizes."""
    if chunks is None:
        return attn(x, encoder_kv=enc)
    cfg = config(width=x.shape[2], heads=attn.heads, m_attn=attn.n_state / x.shape[2])
    cache = new_layer_cache(cfg, attn.attn_func, x.shape[0], x.dtype)
    outs, s = [], 0
    for n in chunks:
        outs.append(attn(x[:, s : s + n], cache, s, enc))
        s += n
    return torch.cat(outs, dim=1)


MASK_CASES = [(f, c) for f in SELF_TYPES for c in (None, [1] * L, [3] * 8, [5, 5, 5, 5, 4], [2, 22])]


@pytest.mark.parametrize(("f", "chunks"), [*MASK_CASES, (AttnFunc.SUMMARY_SPREAD, None)])
def test_visible_keys_match_the_spec_table(f: AttnFunc, chunks: list[int] | None) -> None:
    with torch.no_grad():
        out = run(probe(f), torch.eye(L)[None], chunks)[0]  # (L, L)
    assert torch.equal(out > 1e-6, reference_mask(f))


def test_cross_attention_sees_every_encoder_state() -> None:
    enc = torch.eye(ENC, L)[None]  # (1, ENC, L)
    for chunks in (None, [1] * L, [3] * 8):
        with torch.no_grad():
            out = run(probe(AttnFunc.CROSS), torch.eye(L)[None], chunks, enc)[0]
        assert torch.allclose(out[:, :ENC], torch.full((L, ENC), 1 / ENC), atol=1e-6)
        assert out[:, ENC:].abs().max() == 0


@pytest.mark.parametrize("chunks", CHUNKINGS)
@pytest.mark.parametrize("f", CACHED_TYPES)
def test_cached_chunks_equal_full_pass(f: AttnFunc, chunks: list[int]) -> None:
    attn = FactoredAttention(config(), f, zero_out=False)
    x, enc = torch.randn(3, L, 16), torch.randn(3, ENC, 16)
    with torch.no_grad():
        full = run(attn, x, None, enc)
        cached = run(attn, x, chunks, enc)
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("f", [*SELF_TYPES, AttnFunc.SUMMARY_SPREAD])
def test_no_causal_leak(f: AttnFunc) -> None:
    attn = FactoredAttention(config(), f)
    x = torch.randn(2, L, 16)
    t = 13
    y = x.clone()
    y[:, t] += 1.0
    with torch.no_grad():
        a, b = attn(x), attn(y)
    assert torch.equal(a[:, :t], b[:, :t])
    assert not torch.equal(a[:, t:], b[:, t:])  # the change is visible somewhere at or after t


def test_summary_spread_refuses_to_cache() -> None:
    with pytest.raises(InputError, match="no sampling support"):
        new_layer_cache(config(), AttnFunc.SUMMARY_SPREAD, 1, torch.float32)


def test_prime_attention_keeps_448_keys_for_1b_lyrics_sizes() -> None:
    cfg = TransformerConfig(n_ctx=6528, width=64, depth=72, heads=2, attn_order=12, blocks=64, prime_len=384)
    assert cfg.prime_keys == 448 and cfg.block_ctx == 102


HF_NAMES = {
    AttnFunc.DENSE: "dense_attn",
    AttnFunc.BLOCK: "block_attn",
    AttnFunc.TRANSPOSE_BLOCK: "transpose_block_attn",
    AttnFunc.PREV_BLOCK: "prev_block_attn",
    AttnFunc.SUMMARY: "summary_attn",
    AttnFunc.SUMMARY_SPREAD: "summary_spread_attn",
    AttnFunc.CROSS: "cross_attention",
    AttnFunc.PRIME: "prime_attn",
}


@pytest.mark.oracle
@pytest.mark.parametrize("f", list(HF_NAMES))
def test_full_pass_matches_transformers_oracle(f: AttnFunc) -> None:
    jb = pytest.importorskip("transformers.models.deprecated.jukebox.modeling_jukebox")
    hf_cfg = pytest.importorskip("transformers.models.deprecated.jukebox.configuration_jukebox")
    pc = hf_cfg.JukeboxPriorConfig(
        hidden_size=16, n_heads=2, attention_multiplier=0.5, blocks=BLOCKS, spread=SPREAD, mask=True,
        nb_relevant_lyric_tokens=PRIME_LEN,
    )  # fmt: skip
    ours = FactoredAttention(config(), f)
    theirs = jb.JukeboxAttention(pc, L, attn_func=HF_NAMES[f]).eval()
    state = {k.replace(".w", ".weight").replace(".b", ".bias"): v for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)
    x, enc = torch.randn(2, L, 16), torch.randn(2, ENC, 16)
    expected = theirs(x, enc if f == AttnFunc.CROSS else None)
    got = ours(x, encoder_kv=enc)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    grad = torch.randn_like(got)  # training: same gradients for every weight
    expected.backward(grad)
    got.backward(grad)
    torch.testing.assert_close(ours.c_attn.w.grad, theirs.c_attn.weight.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(ours.c_proj.b.grad, theirs.c_proj.bias.grad, atol=1e-5, rtol=1e-4)


@settings(max_examples=30, deadline=None)
@given(f=st.sampled_from(CACHED_TYPES), cuts=st.sets(st.integers(1, L - 1), max_size=10), batch=st.integers(1, 3))
def test_any_chunking_equals_full_pass(f: AttnFunc, cuts: set[int], batch: int) -> None:
    torch.manual_seed(len(cuts))
    attn = FactoredAttention(config(), f)
    bounds = [0, *sorted(cuts), L]
    chunks = [b - a for a, b in zip(bounds, bounds[1:])]
    x, enc = torch.randn(batch, L, 16), torch.randn(batch, ENC, 16)
    with torch.no_grad():
        torch.testing.assert_close(run(attn, x, chunks, enc), run(attn, x, None, enc), atol=1e-5, rtol=1e-5)
