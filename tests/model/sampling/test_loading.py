from pathlib import Path

import pytest
import torch

from common.errors import CheckpointError
from model.checkpoint.model_dir import save_component
from model.prior import presets
from model.sampling.loading import load_sampling_model, save_prior
from tests.helpers.factories import build, tiny_model_dir, tiny_vqvae


def test_model_dir_round_trip(tmp_path: Path) -> None:
    tiny_model_dir(tmp_path)
    model = load_sampling_model(tmp_path)
    assert sorted(model.priors) == [0, 1, 2]
    assert model.geometry.hops == (8, 32, 128) and model.geometry.n_ctx == (32, 32, 32)
    again = build(presets.tiny_prior(), seed=2)
    assert torch.equal(model.priors[2].prior.x_emb.weight, again.prior.x_emb.weight)


def test_priors_must_fit_the_vqvae(tmp_path: Path) -> None:
    vq = tiny_vqvae()
    save_component(tmp_path, "vqvae", "vqvae", vq.config.to_dict(), vq.state_dict())
    with pytest.raises(CheckpointError, match="has no priors"):
        load_sampling_model(tmp_path)
    save_prior(tmp_path, build(presets.with_changes(presets.tiny_prior(), n_bins=32)))
    with pytest.raises(CheckpointError, match="does not fit the model.s VQ-VAE: the prior models 32 codes"):
        load_sampling_model(tmp_path)


