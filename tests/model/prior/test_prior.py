"""JukeboxPrior behaviour beyond conformance: the sampler-facing cached path, input errors, fp16 storage."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from common.errors import InputError
from model.prior import presets
from model.prior.prior import JukeboxPrior, fold_merged_logits
from model.prior.prior_config import PriorConfig

FAMILIES = {
    "upsampler": presets.tiny_upsampler,
    "top_prior": presets.tiny_prior,
    "separate_lyrics": presets.tiny_prior_separate,
    "merged_lyrics": presets.tiny_prior_merged,
}


def inputs(c: PriorConfig, batch: int = 2) -> tuple[Tensor, Tensor, Tensor | None]:
    codes = torch.randint(0, c.n_bins, (batch, c.n_ctx))
    labels = torch.zeros(batch, c.n_labels + c.lyrics.n_tokens, dtype=torch.long)
    labels[:, 0], labels[:, 2], labels[:, 3] = int(3 * c.labels.sample_rate), c.sample_length, 1
    labels[:, 4:6] = torch.tensor([2, -1])
    labels[:, c.n_labels :] = torch.randint(0, c.lyrics.n_vocab, (batch, c.lyrics.n_tokens))
    upper = torch.randint(0, c.n_bins, (batch, c.n_ctx // 4)) if c.is_upsampler else None
    return codes, labels, upper


def randomised(c: PriorConfig) -> JukeboxPrior:
    prior = JukeboxPrior(c).eval()
    with torch.no_grad():
        for p in prior.parameters():  # wake up zero-initialised cross-attention projections
            p.add_(torch.randn_like(p) * 0.05)
    return prior


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_cached_steps_in_chunks_equal_the_full_pass(family: str) -> None:
    c = FAMILIES[family]()
    prior = randomised(c)
    codes, labels, upper = inputs(c)
    with torch.no_grad():
        cond = prior.conditioning(labels, upper)
        full = prior(codes, cond, return_logits=True).logits
        assert full is not None
        full = full[:, c.prime_len :]  # music positions
        if c.lyrics.kind == "merged":
            full = fold_merged_logits(full, c.lyrics.n_vocab)
        cache = prior.new_cache(2, torch.float32)
        rows = [prior.logits_step(codes[:, :0], cond, cache)]  # unprimed start: predicts code 0
        assert prior.music_position(cache) == 0
        stops = [5, 6, 17, *range(18, c.n_ctx)]  # chunks, then single codes
        for start, stop in zip([0, *stops], stops):
            rows.append(prior.logits_step(codes[:, start:stop], cond, cache))  # predicts code ``stop``
            assert prior.music_position(cache) == stop
    stepped = torch.stack(rows, dim=1)  # (N, 1 + len(stops), step_vocab): one row per call
    assert stepped.shape == (2, 1 + len(stops), prior.step_vocab) and stepped.dtype == torch.float32
    assert prior.step_vocab == (c.lyrics.n_vocab + c.n_bins if c.lyrics.kind == "merged" else c.n_bins)
    assert prior.step_fold == (c.lyrics.n_vocab if c.lyrics.kind == "merged" else 0)
    if c.lyrics.kind == "merged":  # the merged ids, unfolded: fold them as the full pass's reference is folded
        stepped = fold_merged_logits(stepped, prior.step_fold)
    torch.testing.assert_close(stepped, full[:, [0, *stops]], rtol=1e-4, atol=1e-5)
    with pytest.raises(InputError):
        prior.logits_step(codes[:, :1], cond, cache)  # the window is full


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_single_codes_through_a_fast_step_equal_the_eager_step(family: str) -> None:
    from model.prior.fast_step import FastStep

    c = FAMILIES[family]()
    prior = randomised(c)
    codes, labels, upper = inputs(c)
    outs = []
    with torch.no_grad():
        cond = prior.conditioning(labels, upper)
        for fast in (False, True):
            cache = prior.new_cache(2, torch.float32)
            step = FastStep(prior.prior, cache, compile=False) if fast else None
            rows = [prior.logits_step(codes[:, :3], cond, cache, step)]  # the first call is always eager
            rows += [prior.logits_step(codes[:, t : t + 1], cond, cache, step) for t in range(3, c.n_ctx - 1)]
            outs.append(torch.stack(rows, 1))  # (N, n_ctx - 3, step_vocab)
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-5, atol=1e-5)


def test_fold_keeps_the_probability_jukebox_gives_code_zero() -> None:
    logits = torch.randn(3, 79 + 64)
    folded = fold_merged_logits(logits, 79)
    p, q = logits.softmax(-1), folded.softmax(-1)
    torch.testing.assert_close(q[:, 0], p[:, :80].sum(-1))  # lyric ids clamp to code 0 after the -79 shift
    torch.testing.assert_close(q[:, 1:], p[:, 80:])


def test_separate_lyrics_loss_trains_the_lyrics_encoder() -> None:
    c = presets.tiny_prior_separate()
    prior = randomised(c).train()
    codes, labels, _ = inputs(c)
    out = prior(codes, prior.conditioning(labels))
    expected = 0.4 * out.prime_loss * c.lyrics.n_tokens / (c.lyrics.n_tokens + c.n_ctx) + out.gen_loss * c.n_ctx / (c.lyrics.n_tokens + c.n_ctx)
    torch.testing.assert_close(out.loss, expected)
    out.loss.backward()
    for name in ("prime_prior.x_emb.weight", "prime_state_proj.w", "prime_x_out.weight", "y_emb.artist_emb.emb.weight"):
        grad = dict(prior.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_fp16_params_store_half_weights_and_still_run_in_float32() -> None:
    c = presets.with_changes(presets.tiny_prior(), fp16_params=True)
    prior = JukeboxPrior(c).eval()
    assert prior.prior.transformer._attn_mods[0].attn.c_attn.w.dtype == torch.float16
    assert prior.prior.x_emb.weight.dtype == torch.float32
    ref = JukeboxPrior(presets.tiny_prior()).eval()
    ref.load_state_dict({k: v.float() for k, v in prior.state_dict().items()})
    codes, labels, _ = inputs(c)
    with torch.no_grad():
        a, b = prior(codes, prior.conditioning(labels)), ref(codes, ref.conditioning(labels))
    torch.testing.assert_close(a.loss, b.loss)


def test_conditioning_rejects_wrong_inputs() -> None:
    up = JukeboxPrior(presets.tiny_upsampler())
    top = JukeboxPrior(presets.tiny_prior())
    codes, labels, upper = inputs(up.config)
    with pytest.raises(InputError, match="needs the codes of level 2"):
        up.conditioning(labels, None)
    with pytest.raises(InputError, match=r"shape \(batch, 8\)"):
        up.conditioning(labels, upper[:, :5])  # type: ignore[index]
    with pytest.raises(InputError, match="no upper-level codes"):
        top.conditioning(labels, upper)
    with pytest.raises(InputError, match=r"labels must have shape \(batch, 6\)"):
        top.conditioning(labels[:, :4], None)
    with pytest.raises(InputError, match=r"must lie in \[0, 63\]"):
        top(codes + 64, top.conditioning(labels))
    short = presets.with_changes(presets.tiny_prior(), labels={"min_duration": 10.0})
    with pytest.raises(InputError, match="outside the embedding range"):  # total length below min_duration
        JukeboxPrior(short).conditioning(labels)


def test_alignment_needs_a_lyrics_layer() -> None:
    prior = JukeboxPrior(presets.tiny_prior())
    codes, labels, _ = inputs(prior.config)
    with pytest.raises(InputError, match="no lyrics alignment layer"):
        prior.alignment_attention(codes, prior.conditioning(labels))
    c = presets.with_changes(presets.tiny_prior_merged(), lyrics={"alignment_layer": 3})  # a block-attention layer
    merged = JukeboxPrior(c)
    codes, labels, _ = inputs(c)
    with pytest.raises(InputError, match="lyrics-reading layer"):
        merged.alignment_attention(codes, merged.conditioning(labels))


@pytest.mark.parametrize("make", [presets.tiny_prior, presets.tiny_upsampler])
def test_unlabelled_prior_starts_from_a_learned_token(make) -> None:
    c = presets.with_changes(make(), labels={"enabled": False})
    prior = JukeboxPrior(c).eval()
    keys = set(prior.state_dict())
    assert "prior.start_token" in keys and not any(k.startswith("y_emb.") for k in keys)
    codes, _, upper = inputs(c)
    with pytest.raises(InputError, match="without labels"):
        prior.conditioning(torch.zeros(2, 6, dtype=torch.long), upper)
    cond = prior.conditioning(None, upper)
    assert cond.y_cond is None and (cond.x_cond is None) == (upper is None)
    assert torch.isfinite(prior(codes, cond).loss)
