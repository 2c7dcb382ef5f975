"""Objective audio quality measures for reconstructions and continuations."""

from __future__ import annotations

import numpy as np
import torch


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Signal-to-noise ratio of ``estimate`` against ``reference`` in dB (same length, any shape)."""
    ref = np.asarray(reference, dtype=np.float64).ravel()
    err = ref - np.asarray(estimate, dtype=np.float64).ravel()
    return float(10 * np.log10(max(np.sum(ref**2), 1e-20) / max(np.sum(err**2), 1e-20)))


def log_spectral_distance_db(
    reference: np.ndarray, estimate: np.ndarray, n_ffts: tuple[int, ...] = (2048, 512)
) -> float:
    """Mean over STFT resolutions of the RMS difference of log-magnitude spectra in dB.

    Bins more than 60 dB below the reference's peak are floored, so inaudible leakage does not
    dominate. Insensitive to phase, so it rates a decoder that gets the sound right with shifted phases fairly
    (SNR would not). Lower is better; 0 means identical magnitude spectra.
    """
    ref = torch.as_tensor(np.asarray(reference, dtype=np.float32).ravel())
    est = torch.as_tensor(np.asarray(estimate, dtype=np.float32).ravel())
    distances = []
    for n_fft in n_ffts:
        window = torch.hann_window(n_fft)
        spec = [torch.stft(x, n_fft, n_fft // 4, window=window, return_complex=True).abs() for x in (ref, est)]
        floor = float(spec[0].max()) * 1e-3 + 1e-8  # bins 60 dB under the reference peak count as silence
        log_ref, log_est = (20 * torch.log10(s.clamp_min(floor)) for s in spec)  # (F, S) dB
        distances.append(float(((log_ref - log_est) ** 2).mean(dim=0).sqrt().mean()))
    return float(np.mean(distances))
