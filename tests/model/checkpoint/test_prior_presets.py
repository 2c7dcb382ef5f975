"""``--preset``: the released configs accept the official files' key names, shapes and dtypes (checked on the
meta device from jukebox-official-shapes.json, so nothing of the 5B size is allocated or downloaded)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from common.errors import CheckpointError, ConfigError
from model.checkpoint.builders import check_state_dict
from model.checkpoint.priors import PRESETS, check_prior_fits_vqvae, preset_prior_config
from model.prior.prior import JukeboxPrior
from model.vqvae import official_vqvae_config

OFFICIAL_PART = {0: "upsampler_level_0", 1: "upsampler_level_1"}


def official_state(reference_dir: Path, part: str) -> dict[str, torch.Tensor]:
    shapes = json.loads((reference_dir / "jukebox-official-shapes.json").read_text())["parts"][part]
    return {
        k: torch.empty(v["shape"], dtype=getattr(torch, v["dtype"]), device="meta") for k, v in shapes.items()
    }


def test_presets_share_the_upsamplers() -> None:
    for level in (0, 1):
        assert len({preset_prior_config(p, level) for p in PRESETS}) == 1


@pytest.mark.parametrize(
    ("preset", "level"), [("5b", 0), ("5b", 1), ("5b", 2), ("5b_lyrics", 2), ("1b_lyrics", 2)]
)
def test_preset_accepts_the_official_file(reference_dir: Path, preset: str, level: int) -> None:
    config = preset_prior_config(preset, level)
    assert config.level == level
    check_prior_fits_vqvae(config, official_vqvae_config(), preset)
    with torch.device("meta"):
        module = JukeboxPrior(config)
    state = official_state(reference_dir, OFFICIAL_PART.get(level, f"prior_{preset}"))
    check_state_dict(module, state, preset)  # raises on any missing/unexpected/mis-shaped key
    dtypes = {k: v.dtype for k, v in module.state_dict().items()}
    assert dtypes == {k: v.dtype for k, v in state.items()}  # 5B Conv1D weights fp16, as stored in our format


def test_preset_for_the_wrong_file_is_refused(reference_dir: Path) -> None:
    with torch.device("meta"):
        module = JukeboxPrior(preset_prior_config("1b_lyrics", 2))
    with pytest.raises(CheckpointError, match=r"872 wrong shape: y_emb\.bow_genre_emb\.emb\.weight \(120, 4800\) vs model \(604, 2048\)"):
        check_state_dict(module, official_state(reference_dir, "prior_5b"), "prior_level_2.pth.tar")
    with pytest.raises(ConfigError, match="unknown preset '7b'"):
        preset_prior_config("7b", 2)
    with pytest.raises(ConfigError, match="not level 3"):
        preset_prior_config("5b", 3)
