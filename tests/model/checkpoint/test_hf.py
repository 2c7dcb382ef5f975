import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from common.errors import CheckpointError
from model.checkpoint.hf import hf_vqvae_config_to_hps, hf_vqvae_hps, read_hf_dir, split_hf_state_dict
from model.checkpoint.hf_keys import prior_openai_to_hf, vqvae_openai_to_hf
from tests.helpers.factories import hf_vqvae_config

HF_VQVAE_CONFIG = hf_vqvae_config(
    nb_discrete_codes=64,
    embed_dim=16,
    res_conv_width=8,
    init_scale=0.2,
    sample_length=1058304,
    conv_input_shape=1,
)


def _official(reference_dir: Path, part: str) -> list[str]:
    return list(json.loads((reference_dir / "jukebox-official-shapes.json").read_text())["parts"][part])


def _write(directory: Path, config: dict, state: dict[str, torch.Tensor]) -> Path:
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(config))
    save_file(state, str(directory / "model.safetensors"))
    return directory


def test_config_names() -> None:
    hps = hf_vqvae_config_to_hps(HF_VQVAE_CONFIG, sample_rate=22050)
    assert hps["sr"] == 22050 and hps["l_bins"] == 64 and hps["emb_width"] == 16
    assert hps["downs_t"] == (3, 2, 2) and hps["hvqvae_multipliers"] == (2, 1, 1)
    assert hps["width"] == 8 and hps["depth"] == 2 and hps["m_conv"] == 1 and hps["l_mu"] == 0.99
    assert hps["dilation_growth_rate"] == 3 and hps["dilation_cycle"] is None and hps["res_scale"] is False
    assert hps["vqvae_reverse_decoder_dilation"] is True
    with pytest.raises(CheckpointError, match="act_fn 'gelu'"):
        hf_vqvae_config_to_hps({**HF_VQVAE_CONFIG, "act_fn": "gelu"})
    with pytest.raises(CheckpointError, match="mono only"):
        hf_vqvae_config_to_hps({**HF_VQVAE_CONFIG, "conv_input_shape": 2})


def test_standalone_vqvae_dir(tmp_path: Path, reference_dir: Path) -> None:
    official = _official(reference_dir, "vqvae")
    state = {vqvae_openai_to_hf(k): torch.full((1,), float(i)) for i, k in enumerate(official)}
    ckpt = read_hf_dir(_write(tmp_path / "hf", HF_VQVAE_CONFIG, state))
    assert not ckpt.is_full_model
    parts = split_hf_state_dict(ckpt)
    assert list(parts) == ["vqvae"]
    assert {k: float(v) for k, v in parts["vqvae"].items()} == {k: float(i) for i, k in enumerate(official)}
    assert hf_vqvae_hps(ckpt)["sr"] == 44100


def test_full_model_dir_reverses_prior_order(tmp_path: Path, reference_dir: Path) -> None:
    state = {f"vqvae.{vqvae_openai_to_hf(k)}": torch.zeros(1) for k in _official(reference_dir, "vqvae")}
    sources = {0: "upsampler_level_0", 1: "upsampler_level_1", 2: "prior_5b_lyrics"}
    for level, part in sources.items():
        for key in _official(reference_dir, part):
            state[f"priors.{2 - level}.{prior_openai_to_hf(key)}"] = torch.full((1,), float(level))
    config = {
        "model_type": "jukebox",
        "vqvae_config": HF_VQVAE_CONFIG,
        "sampling_rate": 44100,
        "nb_priors": 3,
    }
    ckpt = read_hf_dir(_write(tmp_path / "hf", config, state))
    parts = split_hf_state_dict(ckpt)
    assert sorted(parts) == ["prior_level_0", "prior_level_1", "prior_level_2", "vqvae"]
    for level, part in sources.items():
        assert set(parts[f"prior_level_{level}"]) == set(_official(reference_dir, part))
        assert all(float(v) == level for v in parts[f"prior_level_{level}"].values())
    assert hf_vqvae_hps(ckpt)["l_bins"] == 64


def test_pytorch_model_bin(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text(json.dumps(HF_VQVAE_CONFIG))
    torch.save(
        {"bottleneck.level_blocks.0.codebook": torch.zeros(2, 2)}, tmp_path / "hf" / "pytorch_model.bin"
    )
    parts = split_hf_state_dict(read_hf_dir(tmp_path / "hf"))
    assert list(parts["vqvae"]) == ["bottleneck.level_blocks.0.k"]


def test_sharded_safetensors(tmp_path: Path) -> None:
    directory = tmp_path / "hf"
    directory.mkdir()
    (directory / "config.json").write_text(json.dumps(HF_VQVAE_CONFIG))
    save_file({"bottleneck.level_blocks.0.codebook": torch.zeros(1)}, str(directory / "a.safetensors"))
    save_file({"bottleneck.level_blocks.1.codebook": torch.ones(1)}, str(directory / "b.safetensors"))
    index = {
        "weight_map": {
            "bottleneck.level_blocks.0.codebook": "a.safetensors",
            "bottleneck.level_blocks.1.codebook": "b.safetensors",
        }
    }
    (directory / "model.safetensors.index.json").write_text(json.dumps(index))
    assert len(read_hf_dir(directory).state_dict) == 2


def test_bad_dirs(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not a directory"):
        read_hf_dir(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no config.json"):
        read_hf_dir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="model_type 'bert' is not a Jukebox model"):
        read_hf_dir(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(HF_VQVAE_CONFIG))
    with pytest.raises(CheckpointError, match="no weights"):
        read_hf_dir(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        read_hf_dir(tmp_path)
    save_file({"encoders.0.mystery.weight": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="mystery"):
        split_hf_state_dict(read_hf_dir(tmp_path))
