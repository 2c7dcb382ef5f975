import numpy as np
import pytest
import torch

from common.errors import Cancelled, InputError
from common.progress import CancelToken
from model.train.data import AudioChunks, bandwidth
from model.train.vqvae_trainer import VQVAETrainConfig, train_vqvae
from model.vqvae import VQVAE
from model.vqvae.ema import make_codebook_emas
from tests.helpers.factories import two_level_config


def _tiny() -> VQVAE:
    return VQVAE(two_level_config())


def _clips() -> list[np.ndarray]:
    t = np.arange(44100) / 44100
    return [(0.5 * np.sin(2 * np.pi * f * t)).astype(np.float32) for f in (220.0, 330.0, 440.0)]


def test_training_reduces_the_loss_and_fills_the_codebook() -> None:
    torch.manual_seed(0)
    vqvae = _tiny()
    clips = _clips()
    config = VQVAETrainConfig(steps=40, batch_size=4, sample_length=4096, lr=3e-3, warmup_steps=5, log_every=10)
    emas = make_codebook_emas(vqvae.config)
    logs = train_vqvae(vqvae, AudioChunks(clips, 4096, seed=0), bandwidth(clips), config, emas=emas)
    assert [line.step for line in logs] == [10, 20, 30, 40]
    assert logs[-1].loss < 0.7 * logs[0].loss
    assert all(ema.is_initialised for ema in emas)
    assert all(u > 1 for u in logs[-1].codebook_usage)
    assert not vqvae.training  # left in eval mode
    state = emas.state_dict()
    assert {"0.k_sum", "0.k_elem", "1.initialised"} <= set(state)


def test_cancel_stops_between_steps() -> None:
    vqvae = _tiny()
    token = CancelToken()
    token.cancel("user stop")
    config = VQVAETrainConfig(steps=5, batch_size=1, sample_length=1024)
    with pytest.raises(Cancelled, match="user stop"):
        train_vqvae(vqvae, AudioChunks(_clips(), 1024), bandwidth(_clips()), config, cancel=token)


def test_sample_length_must_fit_the_hops() -> None:
    vqvae = _tiny()
    with pytest.raises(InputError, match="multiple of the top hop 8"):
        train_vqvae(vqvae, AudioChunks(_clips(), 1001), bandwidth(_clips()), VQVAETrainConfig(sample_length=1001))
