"""PriorConfig presets (spec 3.1), serialisation and Jukebox hyper-parameter names."""

from __future__ import annotations

import json

import pytest

from common.errors import ConfigError
from model.checkpoint.jukebox_hps import hps_from_prior_config, prior_config_from_hps
from model.prior import presets
from model.prior.prior_config import PriorConfig

TINY = [presets.tiny_upsampler, presets.tiny_prior, presets.tiny_prior_separate, presets.tiny_prior_merged]


def test_official_geometry() -> None:
    u0, u1 = presets.upsampler_level_0(), presets.upsampler_level_1()
    p5, p5l, p1 = presets.prior_5b(), presets.prior_5b_lyrics(), presets.prior_1b_lyrics()
    assert [c.hop_length for c in (u0, u1, p5)] == [8, 32, 128]
    assert [c.sample_length for c in (u0, u1, p5, p1)] == [65536, 262144, 1048576, 786432]
    assert u0.cond_downsample == u1.cond_downsample == 4 and p5.cond_downsample == 0
    assert not u0.upsampler.res_scale and u1.upsampler.res_scale
    assert (p1.seq_len, p1.transformer.blocks, p1.vocab_size, p1.n_labels) == (6528, 64, 2127, 5)  # 102 per block
    assert (p5l.seq_len, p5l.vocab_size, p5l.n_labels, p5l.lyrics.kind, p5l.lyrics.n_tokens) == (8192, 2048, 9, "separate", 512)
    assert (p5.merged_decoder, p5l.merged_decoder, p1.merged_decoder, u0.merged_decoder) == (True, True, False, False)
    assert p1.labels.v3 and p1.labels.y_bins == (604, 7898) and p5.labels.y_bins == (120, 4111)
    assert (p5.labels.min_duration, p5l.labels.min_duration, p1.labels.min_duration) == (60.0, 23.8, 17.84)
    assert (p5l.lyrics.alignment_layer, p5l.lyrics.alignment_head, p1.lyrics.alignment_layer, p1.lyrics.alignment_head) == (68, 2, 63, 0)
    assert p5.fp16_params and p5l.fp16_params and not p1.fp16_params and not u0.fp16_params


@pytest.mark.parametrize("make", [*presets.OFFICIAL.values(), *TINY])
def test_dict_and_jukebox_hps_round_trip(make) -> None:
    c = make()
    assert PriorConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    hps = hps_from_prior_config(c)
    assert prior_config_from_hps(hps, hps) == c


# hparams.py DEFAULTS relevant to priors (None = unset), then the released sets on top
DEFAULTS = dict(
    level=0, n_ctx=1024, prior_width=128, prior_depth=3, heads=1, attn_order=0, blocks=None, spread=None,
    attn_dropout=0.0, resid_dropout=0.0, emb_dropout=0.0, zero_out=False, res_scale=False, pos_init=False,
    init_scale=1.0, m_attn=0.25, m_mlp=1.0, c_res=0, max_bow_genre_size=None, y_bins=0, t_bins=64, t_ranges=None,
    merged_decoder=False, single_enc_dec=False, alignment_layer=None, alignment_head=None, min_duration=None,
    max_duration=None, n_tokens=0, n_vocab=0, use_tokens=False, labels=True, labels_v3=False, fp16_params=False,
    cond_depth=3, cond_width=128, cond_m_conv=1.0, cond_zero_out=False, cond_res_scale=False,
    cond_dilation_growth_rate=1, cond_dilation_cycle=None, prime_loss_fraction=0.1, prime_depth=3, prime_width=128,
    prime_heads=1, prime_attn_order=0, prime_blocks=None, prime_init_scale=1.0, prime_m_attn=0.25, prime_m_mlp=1.0,
    sr=44100, levels=3, downs_t=(3, 2, 2), strides_t=(2, 2, 2), l_bins=2048,
)  # fmt: skip
V2 = dict(y_bins=(120, 4111), t_bins=128, max_bow_genre_size=5, n_vocab=80)
RELEASED = {
    "upsampler_level_1": dict(
        level=1, cond_res_scale=True, n_ctx=8192, prior_width=1920, prior_depth=72, heads=1, attn_order=2,
        blocks=128, init_scale=0.4, c_res=1, cond_width=1024, cond_depth=16, cond_dilation_growth_rate=3,
        cond_dilation_cycle=8, cond_c_res=1, use_tokens=False, prime_loss_fraction=0.0, fp16_params=False, **V2,
    ),
    "prior_5b_lyrics": dict(
        level=2, n_ctx=8192, prior_width=4800, prior_depth=79, heads=8, attn_order=10, blocks=128, init_scale=0.1,
        c_res=1, prime_width=1280, prime_depth=18, prime_heads=4, prime_attn_order=2, prime_blocks=32,
        prime_init_scale=0.7, prime_c_res=1, t_ranges=((1049580.0, 26460000.0), (0.0, 26460000.0), (0.0, 1.0)),
        use_tokens=True, n_tokens=512, prime_loss_fraction=0.4, merged_decoder=True, fp16_params=True,
        alignment_layer=68, alignment_head=2, **V2,
    ),
    "prior_1b_lyrics": dict(
        level=2, n_ctx=6144, prior_width=2048, prior_depth=72, heads=2, attn_order=12, blocks=64, init_scale=0.2,
        labels_v3=True, t_ranges=((786744.0, 26460000.0), (0.0, 26460000.0), (0.0, 1.0)), use_tokens=True,
        n_tokens=384, prime_loss_fraction=0.4, single_enc_dec=True, fp16_params=False, alignment_layer=63,
        alignment_head=0, y_bins=(604, 7898), t_bins=64, max_bow_genre_size=1, n_vocab=79,
        restore_prior="1b_lyrics/prior_level_2.pth.tar",
    ),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_from_released_jukebox_hparams(name: str) -> None:
    hps = {**DEFAULTS, **RELEASED[name]}
    assert prior_config_from_hps(hps, hps) == presets.official(name)
    with pytest.raises(ConfigError, match="spread=8"):
        prior_config_from_hps({**hps, "spread": 8}, hps)


def test_small_prior_hparams_without_labels() -> None:
    hps = {**DEFAULTS, "n_ctx": 8192, "prior_width": 1024, "prior_depth": 48, "attn_order": 2, "blocks": 64,
           "init_scale": 0.7, "labels": False, "level": 1}  # fmt: skip
    c = prior_config_from_hps(hps, {**hps, "levels": 2, "downs_t": (5, 3), "strides_t": (2, 2), "l_bins": 1024, "sr": 22050})
    assert (c.labels.enabled, c.lyrics.kind, c.n_bins, c.hop_length, c.is_upsampler) == (False, "none", 1024, 256, False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(lyrics={"kind": "both"}), "lyrics.kind must be one of"),
        (dict(transformer={"blocks": 3}), "divisible by blocks=3"),
        (dict(transformer={"heads": 3}), "divisible by heads=3"),
        (dict(level=3), r"level must be in \[0, 2\]"),
        (dict(lyrics={"alignment_layer": 16}), r"lyrics.alignment_layer must be in \[0, 15\]"),
        (dict(lyrics={"n_tokens": 0}), "needs n_tokens > 0"),
        (dict(transformer={"width": -1}), "transformer.width must be a positive integer"),
        (dict(labels={"min_duration": 30.0}), "labels.max_duration 20.0 must exceed min_duration"),
        (dict(labels={"enabled": False}), "lyrics conditioning needs labels.enabled"),
    ],
)
def test_invalid_configs_raise_config_error(change: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        presets.with_changes(presets.tiny_prior_merged(), **change)


def test_from_dict_rejects_unknown_and_missing_keys() -> None:
    d = presets.tiny_prior().to_dict()
    with pytest.raises(ConfigError, match="unknown keys"):
        PriorConfig.from_dict({**d, "widht": 3})
    with pytest.raises(ConfigError, match=r"transformer has unknown keys \['widht'\]"):
        PriorConfig.from_dict({**d, "transformer": {**d["transformer"], "widht": 3}})
    del d["transformer"]["width"]
    with pytest.raises(ConfigError, match="transformer.*width"):
        PriorConfig.from_dict(d)
    with pytest.raises(ConfigError, match="unknown prior preset"):
        presets.official("prior_7b")
