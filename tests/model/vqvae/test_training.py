"""``VQVAETraining``: the loss weights and codebook EMA split out of ``VQVAEConfig``, and the old VQ-VAE
config dicts that still carry them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.errors import ConfigError
from model.checkpoint.builders import load_vqvae
from model.checkpoint.priors import read_vqvae_config
from model.vqvae import VQVAEConfig, VQVAETraining, official_vqvae_config
from model.vqvae.training import JUKEBOX_TRAINING_DEFAULTS, JUKEBOX_TRAINING_NAMES, TRAINING_KEYS

DEMO_MODEL = Path(__file__).resolve().parents[3] / "model" / "assets" / "demo_model"
OLD_KEYS = {"commit", "spectral", "multispectral", "loss_fn", "lmix_l1", "lmix_l2", "lmix_linf", "linf_k",
            "codebook_decay", "revival_threshold"}  # fmt: skip


def test_the_vqvae_config_holds_no_training_keys_any_more() -> None:
    assert TRAINING_KEYS == OLD_KEYS
    assert not OLD_KEYS & set(official_vqvae_config().to_dict())
    assert not {JUKEBOX_TRAINING_NAMES[k] for k in OLD_KEYS} & set(official_vqvae_config().to_jukebox_hps())


def test_an_old_vqvae_dict_loads_and_its_training_keys_read_back() -> None:
    old = {
        **official_vqvae_config().to_dict(),
        "commit": 0.5,
        "loss_fn": "l1",
        "codebook_decay": 0.9,
        "linf_k": 7,
    }
    assert VQVAEConfig.from_dict(old) == official_vqvae_config()
    training = VQVAETraining.from_vqvae_dict(old)
    assert (training.commit, training.loss_fn, training.codebook_decay, training.linf_k) == (
        0.5,
        "l1",
        0.9,
        7,
    )
    assert training.multispectral == VQVAETraining().multispectral  # absent: the default


def test_the_shipped_demo_model_written_before_the_split_still_loads() -> None:
    stored = json.loads((DEMO_MODEL / "vqvae.config.json").read_text())["config"]
    assert set(stored) >= OLD_KEYS
    assert read_vqvae_config(DEMO_MODEL).codebook_size == 256
    assert load_vqvae(DEMO_MODEL).config == read_vqvae_config(DEMO_MODEL)
    assert VQVAETraining.from_vqvae_dict(stored) == VQVAETraining()  # it was trained with the released recipe


def test_round_trips_and_jukebox_names() -> None:
    t = VQVAETraining(commit=0.1, loss_fn="linf", linf_k=5, revival_threshold=0.5)
    assert VQVAETraining.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    assert VQVAETraining.from_jukebox_hps(t.to_jukebox_hps()) == t
    defaults = VQVAETraining.from_jukebox_hps({"n_ctx": 8192})  # other keys ignored
    assert defaults.to_jukebox_hps() == JUKEBOX_TRAINING_DEFAULTS


@pytest.mark.parametrize(
    ("hps", "message"),
    [
        ({"l_mu": 1.5}, "l_mu"),
        ({"loss_fn": "l3"}, "loss_fn"),
        ({"commit": -1}, "commit"),
        ({"linf_k": 0}, "linf_k"),
    ],
)
def test_invalid_training_hps_name_the_jukebox_key(hps: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        VQVAETraining.from_jukebox_hps(hps)


def test_from_dict_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['width'\]"):
        VQVAETraining.from_dict({"width": 3})
