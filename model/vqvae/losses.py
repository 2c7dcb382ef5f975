"""VQ-VAE training losses (spec 1.4), computed outside ``forward`` from a ``VQVAEOutput``.

``loss = sum_levels recons + spectral * sum spec + multispectral * sum multispec + commit * sum commit``.
Reconstruction and spectral terms are divided by the dataset ``Bandwidth`` as in Jukebox.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from model.vqvae.training import VQVAETraining
from model.vqvae.vqvae import VQVAEOutput

SPECTRAL_STFT = (2048, 256, 1536)  # n_fft, hop, window of the single-resolution loss and bandwidth
MULTISPECTRAL_STFTS = ((2048, 240, 1200), (1024, 120, 600), (512, 50, 240))


@dataclass(frozen=True)
class Bandwidth:
    """Dataset statistics that normalise the losses: l1 = mean |x|, l2 = var(x), spec = mean ||STFT||."""

    l1: float = 1.0
    l2: float = 1.0
    spec: float = 1.0


@dataclass(frozen=True)
class VQVAELoss:
    """Weighted total and its parts (per-level lists are bottom first)."""

    total: torch.Tensor  # ()
    recons: list[torch.Tensor]  # per level, after bandwidth normalisation
    spectral: list[torch.Tensor]  # per level, unweighted
    multispectral: list[torch.Tensor]  # per level, unweighted
    commit: list[torch.Tensor]  # per level, unweighted


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).float()  # (N, T*C)


def l1_loss(target: torch.Tensor, pred: torch.Tensor, bandwidth: Bandwidth) -> torch.Tensor:
    return (_flat(target) - _flat(pred)).abs().mean() / bandwidth.l1


def l2_loss(target: torch.Tensor, pred: torch.Tensor, bandwidth: Bandwidth) -> torch.Tensor:
    return (_flat(target) - _flat(pred)).pow(2).mean() / bandwidth.l2


def linf_loss(target: torch.Tensor, pred: torch.Tensor, bandwidth: Bandwidth, k: int) -> torch.Tensor:
    """Mean of the ``k`` largest squared residuals of each example (k capped at the length)."""
    residual = (_flat(target) - _flat(pred)).pow(2)  # (N, T)
    return residual.topk(min(k, residual.shape[1]), dim=1).values.mean() / bandwidth.l2


def reconstruction_loss(config: VQVAETraining, target: torch.Tensor, pred: torch.Tensor, bandwidth: Bandwidth) -> torch.Tensor:
    if config.loss_fn == "l1":
        return l1_loss(target, pred, bandwidth)
    if config.loss_fn == "l2":
        return l2_loss(target, pred, bandwidth)
    if config.loss_fn == "linf":
        return linf_loss(target, pred, bandwidth, config.linf_k)
    # lmix
    return (
        config.lmix_l1 * l1_loss(target, pred, bandwidth)
        + config.lmix_l2 * l2_loss(target, pred, bandwidth)
        + config.lmix_linf * linf_loss(target, pred, bandwidth, config.linf_k)
    )


def magnitude_stft(audio: torch.Tensor, n_fft: int, hop: int, window: int) -> torch.Tensor:
    """audio (N, T, C) -> |STFT| (N, freq, frames) of the channel mean (Hann window)."""
    mono = audio.float().mean(dim=2)  # (N, T)
    hann = torch.hann_window(window, device=audio.device)
    spec = torch.stft(mono, n_fft, hop, win_length=window, window=hann, return_complex=True)  # (N, F, S)
    return spec.abs()


def spectral_loss(target: torch.Tensor, pred: torch.Tensor, bandwidth: Bandwidth) -> torch.Tensor:
    """Mean over examples of ||(|STFT(target)| - |STFT(pred)|)||_F, n_fft 2048 / hop 256 / window 1536."""
    diff = magnitude_stft(target, *SPECTRAL_STFT) - magnitude_stft(pred, *SPECTRAL_STFT)  # (N, F, S)
    return torch.linalg.vector_norm(diff.reshape(diff.shape[0], -1), dim=1).mean() / bandwidth.spec


def multispectral_loss(
    target: torch.Tensor,
    pred: torch.Tensor,
    bandwidth: Bandwidth,
    stfts: Sequence[tuple[int, int, int]] = MULTISPECTRAL_STFTS,
) -> torch.Tensor:
    """Average over the three STFT resolutions of the per-example spectral distance."""
    total = target.new_zeros((), dtype=torch.float32)
    for n_fft, hop, window in stfts:
        diff = magnitude_stft(target, n_fft, hop, window) - magnitude_stft(pred, n_fft, hop, window)
        total = total + torch.linalg.vector_norm(diff.reshape(diff.shape[0], -1), dim=1).mean()
    return total / len(stfts) / bandwidth.spec


def commit_loss(output: VQVAEOutput) -> torch.Tensor:
    """Sum over levels of ||x_d.detach() - x||^2 / numel (before the ``commit`` weight)."""
    return torch.stack([level.commit_loss for level in output.levels]).sum()


def vqvae_loss(config: VQVAETraining, audio: torch.Tensor, output: VQVAEOutput, bandwidth: Bandwidth) -> VQVAELoss:
    """Jukebox's VQ-VAE training objective for ``output = vqvae(audio)``, weighted by ``config``; audio (N, T, 1)."""
    recons = [reconstruction_loss(config, audio, r, bandwidth) for r in output.recons]
    zero = audio.new_zeros((), dtype=torch.float32)
    spec = [spectral_loss(audio, r, bandwidth) if config.spectral else zero for r in output.recons]
    multispec = [multispectral_loss(audio, r, bandwidth) if config.multispectral else zero for r in output.recons]
    commits = [level.commit_loss for level in output.levels]
    total = (
        torch.stack(recons).sum()
        + config.spectral * torch.stack(spec).sum()
        + config.multispectral * torch.stack(multispec).sum()
        + config.commit * torch.stack(commits).sum()
    )
    return VQVAELoss(total, recons, spec, multispec, commits)


def bandwidth_from_audio(audio: torch.Tensor) -> Bandwidth:
    """Normalisers from a stretch of training audio (N, T, C); Jukebox uses ~600 s for the VQ-VAE."""
    flat = audio.float().reshape(-1)
    spec = magnitude_stft(audio, *SPECTRAL_STFT)  # (N, F, S)
    return Bandwidth(
        l1=float(flat.abs().mean()),
        l2=float(flat.var(correction=0)),
        spec=float(torch.linalg.vector_norm(spec.reshape(spec.shape[0], -1), dim=1).mean()),
    )
