"""Numerical conformance with the Hugging Face port (transformers 4.57.6, test-only oracle), one tiny
random model per prior family: weights are carried over with the spec-8 key mapping and logits, losses and
the alignment head's attention must agree."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from model.checkpoint.hf_keys import prior_openai_to_hf
from model.prior.prior import JukeboxPrior
from model.prior.prior_config import PriorConfig
from tests.helpers.factories import TINY_PRIORS, randomise

hf = pytest.importorskip("transformers.models.deprecated.jukebox.modeling_jukebox")
hf_config = pytest.importorskip("transformers.models.deprecated.jukebox.configuration_jukebox")
pytestmark = pytest.mark.oracle

PATTERNS = {2: "raw_column_previous_row_attention", 10: "large_separated_enc_dec_w_lyrics", 12: "enc_dec_with_lyrics"}


def hf_prior_config(c: PriorConfig):  # -> JukeboxPriorConfig
    t, labels, lyrics, up, geo = c.transformer, c.labels, c.lyrics, c.upsampler, c.geometry
    encoder = None
    if lyrics.kind == "separate":
        e = lyrics.encoder
        encoder = dict(
            hidden_size=e.width, num_layers=e.depth, n_heads=e.heads,
            attention_pattern=PATTERNS[e.attn_order], blocks=e.blocks, init_scale=e.init_scale,
            attention_multiplier=e.m_attn, mlp_multiplier=e.m_mlp, mask=True,
            nb_relevant_lyric_tokens=lyrics.n_tokens, lyric_vocab_size=lyrics.n_vocab, n_ctx=lyrics.n_tokens,
            is_encoder_decoder=False, merged_decoder=False,
        )  # fmt: skip
    return hf_config.JukeboxPriorConfig(
        level=c.levels - 1 - c.level, alignment_head=lyrics.alignment_head, alignment_layer=lyrics.alignment_layer,
        attention_multiplier=t.m_attn, attention_pattern=PATTERNS[t.attn_order], blocks=t.blocks,
        conv_res_scale=up.res_scale, num_layers=t.depth, encoder_config=encoder,
        encoder_loss_fraction=lyrics.loss_fraction, hidden_size=t.width, init_scale=t.init_scale,
        is_encoder_decoder=lyrics.kind == "merged", lyric_vocab_size=lyrics.n_vocab, mask=True,
        max_duration=labels.max_duration, min_duration=labels.min_duration, max_nb_genres=labels.max_bow_genre_size,
        merged_decoder=c.merged_decoder, metadata_conditioning=labels.enabled, metadata_dims=list(labels.y_bins),
        mlp_multiplier=t.m_mlp, music_vocab_size=c.n_bins, n_ctx=c.n_ctx, n_heads=t.heads,
        nb_relevant_lyric_tokens=lyrics.n_tokens, res_conv_depth=up.depth, res_conv_width=up.width,
        res_convolution_multiplier=int(up.m_conv), res_dilation_cycle=up.dilation_cycle,
        res_dilation_growth_rate=up.dilation_growth_rate, res_downs_t=list(geo.downs_t),
        res_strides_t=list(geo.strides_t), sampling_rate=labels.sample_rate, timing_dims=labels.t_bins,
    )  # fmt: skip


def port(ours: JukeboxPrior):  # -> hf JukeboxPrior with the same weights
    c = ours.config
    theirs = hf.JukeboxPrior(hf_prior_config(c)).eval()
    mapped = {prior_openai_to_hf(k): v.float() for k, v in ours.state_dict().items()}
    theirs.load_state_dict(mapped, strict=True)
    work_around_port(theirs, c)
    return theirs


def work_around_port(theirs, c: PriorConfig) -> None:  # type: ignore[no-untyped-def]
    """Two bugs of the port that are not in OpenAI's code, patched on the instance ``theirs`` (an HF prior)."""
    get_cond = theirs.get_cond

    def contiguous_lyrics(*args):  # the port's encoder loss .view()s a sliced (non-contiguous) lyric tensor
        audio, metadata, lyrics = get_cond(*args)
        return audio, metadata, None if lyrics is None else lyrics.contiguous()

    theirs.get_cond = contiguous_lyrics
    if c.lyrics.kind == "none":  # the port's zero encoder loss reads .device off a None
        theirs.get_encoder_loss = lambda states, target: torch.tensor(0.0)


def window_inputs(c: PriorConfig, batch: int = 2, seed: int = 0) -> tuple[Tensor, Tensor, Tensor | None]:
    """(codes (N, n_ctx), labels (N, 4 + G + n_tokens), upper codes (N, n_ctx // 4) or None)."""
    g = torch.Generator().manual_seed(seed)
    codes = torch.randint(0, c.n_bins, (batch, c.n_ctx), generator=g)
    labels = torch.zeros(batch, c.n_labels + c.lyrics.n_tokens, dtype=torch.long)
    total = int(5 * c.labels.sample_rate)
    labels[:, 0] = total
    labels[:, 1] = torch.tensor([0, total - c.sample_length // 2])[:batch]  # 2nd window runs past the end
    labels[:, 2] = c.sample_length
    labels[:, 3] = torch.randint(0, c.labels.y_bins[1], (batch,), generator=g)
    labels[:, 4 : c.n_labels] = torch.randint(-1, c.labels.y_bins[0], (batch, c.labels.max_bow_genre_size), generator=g)
    labels[:, 4] = labels[:, 4].clamp(min=0)
    labels[:, c.n_labels :] = torch.randint(0, c.lyrics.n_vocab, (batch, c.lyrics.n_tokens), generator=g)
    upper = torch.randint(0, c.n_bins, (batch, c.n_ctx // c.cond_downsample), generator=g) if c.is_upsampler else None
    return codes, labels, upper


def both(family: str) -> tuple[JukeboxPrior, object, PriorConfig]:
    c = TINY_PRIORS[family]()
    ours = JukeboxPrior(c).eval()
    randomise(ours)
    return ours, port(ours), c


@pytest.mark.parametrize("family", sorted(TINY_PRIORS))
def test_logits_and_losses_match_hf(family: str) -> None:
    ours, theirs, c = both(family)
    codes, labels, upper = window_inputs(c)
    with torch.no_grad():
        out = ours(codes, ours.conditioning(labels, upper), return_logits=True)
        loss, metrics = theirs.forward_tokens(codes, [upper] if upper is not None else [], labels, get_preds=True)
    assert out.logits is not None
    torch.testing.assert_close(out.logits, metrics["preds"], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(out.gen_loss, metrics["next_token_prediction_loss"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.prime_loss, metrics["encoder_loss"].float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out.loss, loss.float(), rtol=1e-5, atol=1e-5)
    if c.lyrics.kind != "none":
        assert out.prime_loss > 0 and not torch.isclose(out.loss, out.gen_loss)


@pytest.mark.parametrize("family", ["separate_lyrics", "merged_lyrics"])
def test_alignment_attention_matches_hf_attention_probs(family: str) -> None:
    ours, theirs, c = both(family)
    codes, labels, _ = window_inputs(c)
    layer, head = c.lyrics.alignment_layer, c.lyrics.alignment_head
    assert layer is not None and head is not None
    with torch.no_grad():
        weights = ours.alignment_attention(codes, ours.conditioning(labels))  # (N, n_ctx, n_tokens)
        theirs.prior.transformer.set_record_attn({layer})
        theirs.forward_tokens(codes, [], labels)
    probs = theirs.prior.transformer._attn_mods[layer].attn.attention_prob  # (N, H, n_ctx, n_tokens)
    assert weights.shape == (2, c.n_ctx, c.lyrics.n_tokens)
    torch.testing.assert_close(weights, probs[:, head].float(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("family", sorted(TINY_PRIORS))
def test_hf_state_dict_loads_strictly_into_our_prior(family: str) -> None:
    from model.checkpoint.hf_keys import prior_hf_to_openai

    ours, theirs, c = both(family)
    back = {prior_hf_to_openai(k): v for k, v in theirs.state_dict().items()}
    fresh = JukeboxPrior(c).eval()
    fresh.load_state_dict(back, strict=True)
    codes, labels, upper = window_inputs(c, seed=3)
    with torch.no_grad():
        a = ours(codes, ours.conditioning(labels, upper))
        b = fresh(codes, fresh.conditioning(labels, upper))
    torch.testing.assert_close(a.loss, b.loss, rtol=0, atol=0)
