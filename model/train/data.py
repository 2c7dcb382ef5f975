"""Training audio: whole files read once, served as random fixed-length chunks.

Pure in-memory sampling so that a training step never waits on disk; files are read with
``model.audio.read_audio`` (resampled to the model rate, mixed to mono) and validated there.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from common.errors import InputError
from model.audio import read_audio
from model.vqvae.losses import SPECTRAL_STFT, Bandwidth, magnitude_stft

AUDIO_SUFFIXES = {".wav", ".flac", ".aiff", ".aif", ".ogg", ".mp3"}


def find_audio_files(root: str | os.PathLike[str]) -> list[Path]:
    """All audio files under ``root`` (a file or a folder), sorted for reproducibility."""
    path = Path(root)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(f"training audio '{path}' is neither a file nor a folder")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
    if not files:
        raise InputError(f"no audio files ({', '.join(sorted(AUDIO_SUFFIXES))}) found under '{path}'")
    return files


def load_clips(paths: Sequence[str | os.PathLike[str]], sample_rate: int) -> list[np.ndarray]:
    """Read each file as mono float32 at ``sample_rate``."""
    return [read_audio(p, sample_rate=sample_rate, channels=1).samples[:, 0] for p in paths]


class AudioChunks:
    """Random chunks of ``sample_length`` samples drawn uniformly over all clips' positions."""

    def __init__(self, clips: Sequence[np.ndarray], sample_length: int, seed: int = 0):
        usable = [c.astype(np.float32, copy=False) for c in clips if c.shape[0] >= sample_length]
        if not usable:
            longest = max((c.shape[0] for c in clips), default=0)
            raise InputError(
                f"training needs clips of at least {sample_length} samples; the longest has {longest}"
            )
        self.clips = usable
        self.sample_length = sample_length
        starts = np.array([c.shape[0] - sample_length + 1 for c in usable], dtype=np.float64)
        self._weights = starts / starts.sum()
        self._rng = np.random.default_rng(seed)

    def batch(self, batch_size: int) -> torch.Tensor:
        """(batch_size, sample_length, 1) float32."""
        picks = self._rng.choice(len(self.clips), size=batch_size, p=self._weights)
        out = np.empty((batch_size, self.sample_length), dtype=np.float32)
        for row, i in enumerate(picks):
            clip = self.clips[int(i)]
            start = int(self._rng.integers(0, clip.shape[0] - self.sample_length + 1))
            out[row] = clip[start : start + self.sample_length]
        return torch.from_numpy(out).unsqueeze(-1)  # (N, T, 1)


def bandwidth(clips: Sequence[np.ndarray], max_seconds: float = 600.0, sample_rate: int = 44100) -> Bandwidth:
    """Loss normalisers from up to ``max_seconds`` of audio (Jukebox uses 600 s for the VQ-VAE)."""
    budget = int(max_seconds * sample_rate)
    pieces, taken = [], 0
    for clip in clips:
        if taken >= budget:
            break
        piece = clip[: budget - taken]
        pieces.append(piece)
        taken += piece.shape[0]
    x = torch.from_numpy(np.concatenate(pieces).astype(np.float32))
    specs = []
    for part in torch.split(x, 10 * sample_rate):  # per 10 s example, as Jukebox's per-item norms
        if part.shape[0] < SPECTRAL_STFT[0]:
            continue
        mag = magnitude_stft(part[None, :, None], *SPECTRAL_STFT)  # (1, F, S), the losses' own STFT
        specs.append(float(torch.linalg.vector_norm(mag)))
    return Bandwidth(
        l1=float(x.abs().mean()),
        l2=float(x.var()),
        spec=float(np.mean(specs)) if specs else 1.0,
    )
