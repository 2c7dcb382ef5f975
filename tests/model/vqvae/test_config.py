import json

import pytest

from common.errors import ConfigError
from model.vqvae import VQVAEConfig, official_vqvae_config
from model.vqvae.config import JUKEBOX_DEFAULTS, JUKEBOX_NAMES

OFFICIAL_HPS = dict(
    sr=44100, levels=3, downs_t=(3, 2, 2), strides_t=(2, 2, 2), emb_width=64, l_bins=2048, l_mu=0.99,
    commit=0.02, spectral=0.0, multispectral=1.0, hvqvae_multipliers=(2, 1, 1), loss_fn="lmix",
    lmix_l2=1.0, lmix_linf=0.02, width=32, depth=4, m_conv=1.0, dilation_growth_rate=3,
    restore_vqvae="https://openaipublic.azureedge.net/jukebox/models/5b/vqvae.pth.tar",  # ignored
    n_ctx=8192,  # ignored: prior key
)


def test_official_config_values() -> None:
    cfg = official_vqvae_config()
    assert cfg.hop_lengths == (8, 32, 128)
    assert cfg.downsamples == (8, 4, 4)
    assert [cfg.level_width(lv) for lv in range(3)] == [64, 32, 32]
    assert [cfg.level_depth(lv) for lv in range(3)] == [8, 4, 4]


def test_from_jukebox_hps_of_the_released_model() -> None:
    assert VQVAEConfig.from_jukebox_hps(OFFICIAL_HPS) == official_vqvae_config()


def test_missing_hps_take_jukebox_defaults() -> None:
    cfg = VQVAEConfig.from_jukebox_hps({})
    assert cfg.levels == 2 and cfg.downs_t == (1, 1) and cfg.width == 128 and cfg.depth == 3
    assert cfg.codebook_size == 512 and cfg.multipliers is None
    assert cfg.to_jukebox_hps() == {k: (list(v) if isinstance(v, list) else v) for k, v in JUKEBOX_DEFAULTS.items()}


def test_hps_round_trip_and_mapping_table_is_complete() -> None:
    cfg = official_vqvae_config()
    assert set(JUKEBOX_NAMES.values()) == set(JUKEBOX_DEFAULTS)
    assert VQVAEConfig.from_jukebox_hps(cfg.to_jukebox_hps()) == cfg


def test_dict_round_trip_through_json() -> None:
    cfg = VQVAEConfig(levels=2, downs_t=(5, 3), strides_t=(2, 2), codebook_size=1024, multipliers=None, dilation_cycle=4)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert VQVAEConfig.from_dict(d) == cfg
    assert cfg.hop_lengths == (32, 256)


@pytest.mark.parametrize(
    ("hps", "key"),
    [
        ({"l_bins": 0}, "l_bins"),
        ({"levels": 3}, "downs_t"),
        ({"strides_t": (3, 2)}, "strides_t"),
        ({"width": "wide"}, "width"),
        ({"hvqvae_multipliers": (1,)}, "hvqvae_multipliers"),
        ({"vqvae_reverse_decoder_dilation": 1}, "vqvae_reverse_decoder_dilation"),
    ],
)
def test_invalid_hps_name_the_jukebox_key(hps: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        VQVAEConfig.from_jukebox_hps(hps)


def test_from_dict_rejects_unknown_keys_and_bad_types() -> None:
    d = official_vqvae_config().to_dict()
    with pytest.raises(ConfigError, match="l_bins"):
        VQVAEConfig.from_dict({**d, "l_bins": 4})
    with pytest.raises(ConfigError, match="depth"):
        VQVAEConfig.from_dict({**d, "depth": 2.5})
    with pytest.raises(ConfigError, match="downs_t"):
        VQVAEConfig.from_dict({**d, "downs_t": "3,2,2"})
