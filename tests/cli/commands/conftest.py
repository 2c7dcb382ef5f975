"""A tiny converted model directory (hops 8/32/128 like Jukebox, 32 codes) for CLI tests."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from model.vqvae import VQVAE
from segue.cli import main
from tests.helpers.factories import jukebox_shaped_config

TINY = jukebox_shaped_config()


@pytest.fixture(scope="module")
def openai_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp_path = tmp_path_factory.mktemp("checkpoint")
    torch.manual_seed(0)
    model = VQVAE(TINY).eval()
    torch.save({"model": model.state_dict()}, tmp_path / "vqvae.pth.tar")
    (tmp_path / "hps.json").write_text(json.dumps(TINY.to_jukebox_hps()))
    return tmp_path / "vqvae.pth.tar", tmp_path / "hps.json"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, openai_checkpoint: tuple[Path, Path]) -> Path:
    """Shared by a module's tests: they must not modify it (convert tests that replace it build their own)."""
    vqvae, hps = openai_checkpoint
    out = tmp_path_factory.mktemp("converted") / "model"
    assert (
        main(["convert", "--format", "openai", "--vqvae", str(vqvae), "--hps", str(hps), "-o", str(out)]) == 0
    )
    return out


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp_path = tmp_path_factory.mktemp("audio")
    t = np.arange(48000 // 4) / 48000  # 0.25 s at 48 kHz, stereo: encode must resample and mix down
    x = np.stack([0.3 * np.sin(2 * np.pi * 220 * t), 0.2 * np.sin(2 * np.pi * 330 * t)], axis=1)
    sf.write(tmp_path / "song.flac", x, 48000, subtype="PCM_24")
    return tmp_path / "song.flac"
