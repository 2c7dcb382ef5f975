import pytest
import torch

from model.vqvae import VQVAE, VQVAETraining
from model.vqvae.losses import (
    Bandwidth,
    bandwidth_from_audio,
    commit_loss,
    l1_loss,
    l2_loss,
    linf_loss,
    multispectral_loss,
    reconstruction_loss,
    spectral_loss,
    vqvae_loss,
)

from .conftest import tiny_config

UNIT = Bandwidth()


def test_pointwise_losses() -> None:
    target = torch.zeros(2, 4, 1)
    pred = torch.tensor([[1.0, -2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0]]).unsqueeze(-1)
    assert float(l1_loss(target, pred, UNIT)) == pytest.approx(6 / 8)
    assert float(l2_loss(target, pred, Bandwidth(l2=2.0))) == pytest.approx(14 / 8 / 2)
    # top-2 squared residuals per example: (4, 1) and (9, 0)
    assert float(linf_loss(target, pred, UNIT, k=2)) == pytest.approx(14 / 4)
    weights = VQVAETraining(loss_fn="lmix", lmix_l1=1.0, lmix_l2=2.0, lmix_linf=0.5, linf_k=2)
    expected = 6 / 8 + 2 * 14 / 8 + 0.5 * 14 / 4
    assert float(reconstruction_loss(weights, target, pred, UNIT)) == pytest.approx(expected)


def test_spectral_losses_are_zero_for_equal_signals_and_grow_with_error() -> None:
    x = torch.randn(2, 4096, 1)
    assert float(spectral_loss(x, x, UNIT)) == 0.0
    assert float(multispectral_loss(x, x, UNIT)) == 0.0
    small = multispectral_loss(x, x + 0.01 * torch.randn_like(x), UNIT)
    large = multispectral_loss(x, x + 0.1 * torch.randn_like(x), UNIT)
    assert 0 < float(small) < float(large)
    assert float(spectral_loss(x, 2 * x, Bandwidth(spec=2.0))) == pytest.approx(
        float(spectral_loss(x, 2 * x, UNIT)) / 2
    )


def test_bandwidth_from_audio() -> None:
    x = torch.randn(3, 8192, 1) * 0.5
    bw = bandwidth_from_audio(x)
    assert bw.l2 == pytest.approx(float(x.var(correction=0)), rel=1e-5)
    assert bw.l1 == pytest.approx(float(x.abs().mean()), rel=1e-5)
    assert bw.spec > 0


def test_vqvae_loss_weights_and_gradients() -> None:
    weights = VQVAETraining(commit=0.5, spectral=0.25, multispectral=1.0, loss_fn="l2")
    vq = VQVAE(tiny_config()).train()
    audio = torch.randn(2, 2048, 1) * 0.3
    out = vq(audio)
    loss = vqvae_loss(weights, audio, out, UNIT)
    expected = (
        sum(loss.recons) + 0.25 * sum(loss.spectral) + 1.0 * sum(loss.multispectral) + 0.5 * sum(loss.commit)
    )
    torch.testing.assert_close(loss.total, expected)
    torch.testing.assert_close(commit_loss(out), sum(loss.commit))
    assert [r.shape for r in out.recons] == [(2, 2048, 1)] * 3
    loss.total.backward()
    # straight-through: the encoders receive gradients from reconstruction, the codebook buffer none
    assert all(e.level_blocks[0].model[0][0].weight.grad is not None for e in vq.encoders)
    for level in out.levels:
        codes, latent_check = level.codes, level.quantised
        assert codes.dtype == torch.int64 and latent_check.requires_grad


def test_commit_loss_is_mean_squared_distance_to_codes() -> None:
    vq = VQVAE(tiny_config()).eval()
    audio = torch.randn(1, 512, 1) * 0.3
    out = vq(audio)
    latent = vq.encoders[2](audio.permute(0, 2, 1))
    chosen = vq.bottleneck.level_blocks[2].dequantise(out.levels[2].codes)
    torch.testing.assert_close(out.levels[2].commit_loss, ((chosen - latent) ** 2).mean())
    torch.testing.assert_close(out.levels[2].fit, ((chosen - latent) ** 2).sum(1).mean(), rtol=1e-4, atol=1e-6)
