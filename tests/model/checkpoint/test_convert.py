import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from common.errors import CheckpointError, ConfigError
from model.checkpoint.builders import load_vqvae, model_identity
from model.checkpoint.convert import convert_hf, convert_openai
from model.checkpoint.hf_keys import vqvae_openai_to_hf
from model.checkpoint.model_dir import MANIFEST, read_manifest
from model.vqvae import VQVAE
from tests.helpers.factories import hf_vqvae_config, jukebox_hps, jukebox_shaped_config

# Small but Jukebox-shaped: hops 8/32/128, multipliers like the released model.
TINY = jukebox_shaped_config(dilation_growth_rate=3)
TINY_HPS = jukebox_hps(TINY)


def _tiny_vqvae() -> VQVAE:
    model = VQVAE(TINY).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))  # distinct from a freshly built model
    return model


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0)


def test_openai_with_hps_file(tmp_path: Path) -> None:
    model = _tiny_vqvae()
    sd = {f"module.{k}": v for k, v in model.state_dict().items()}
    torch.save({"model": sd, "hps": None, "step": 3}, tmp_path / "vqvae.pth.tar")
    (tmp_path / "hps.json").write_text(json.dumps(TINY_HPS))
    result = convert_openai(tmp_path / "vqvae.pth.tar", tmp_path / "out", hps_path=tmp_path / "hps.json")
    assert [e.name for e in result.components] == ["vqvae"]
    assert result.identity == model_identity(tmp_path / "out") and result.identity.startswith("out@")
    loaded = load_vqvae(tmp_path / "out")
    assert loaded.config == TINY
    _same_weights(loaded, model)


def test_openai_uses_saved_hps(tmp_path: Path) -> None:
    model = _tiny_vqvae()
    torch.save({"model": model.state_dict(), "hps": {**TINY_HPS, "unrelated": "x"}}, tmp_path / "v.pth.tar")
    convert_openai(tmp_path / "v.pth.tar", tmp_path / "out", name="mine")
    assert load_vqvae(tmp_path / "out").config == TINY
    assert model_identity(tmp_path / "out").startswith("mine@")


def test_openai_mismatch_is_reported(tmp_path: Path) -> None:
    torch.save({"model": _tiny_vqvae().state_dict()}, tmp_path / "v.pth.tar")
    # no hps anywhere: the released config is assumed, which does not fit these weights
    with pytest.raises(CheckpointError, match=r"v\.pth\.tar: weights do not fit the model \(.*wrong shape"):
        convert_openai(tmp_path / "v.pth.tar", tmp_path / "out")
    assert not (tmp_path / "out").exists()
    (tmp_path / "bad.json").write_text(json.dumps({"levels": "three"}))
    with pytest.raises(ConfigError, match=r"bad\.json: .*levels"):
        convert_openai(tmp_path / "v.pth.tar", tmp_path / "out", hps_path=tmp_path / "bad.json")


def test_prior_file_given_as_vqvae(tmp_path: Path) -> None:
    torch.save({"model": {"prior.x_emb.weight": torch.zeros(2, 2)}}, tmp_path / "prior_level_2.pth.tar")
    with pytest.raises(CheckpointError, match="is a prior checkpoint"):
        convert_openai(tmp_path / "prior_level_2.pth.tar", tmp_path / "out")


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    model = _tiny_vqvae()
    torch.save({"model": model.state_dict(), "hps": TINY_HPS}, tmp_path / "v.pth.tar")
    convert_openai(tmp_path / "v.pth.tar", tmp_path / "out")
    first = read_manifest(tmp_path / "out").components[0].sha256
    with pytest.raises(CheckpointError, match="not empty.*--force"):
        convert_openai(tmp_path / "v.pth.tar", tmp_path / "out")
    other = _tiny_vqvae()
    torch.save({"model": other.state_dict(), "hps": TINY_HPS}, tmp_path / "v2.pth.tar")
    convert_openai(tmp_path / "v2.pth.tar", tmp_path / "out", force=True)
    assert read_manifest(tmp_path / "out").components[0].sha256 != first
    _same_weights(load_vqvae(tmp_path / "out"), other)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "v.pth.tar", "v2.pth.tar"]  # no leftovers
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.txt").write_text("precious")
    with pytest.raises(CheckpointError, match="not a segue model directory; refusing"):
        convert_openai(tmp_path / "v.pth.tar", tmp_path / "docs", force=True)
    assert (tmp_path / "docs" / "notes.txt").read_text() == "precious"


def test_hf_standalone_vqvae(tmp_path: Path) -> None:
    model = _tiny_vqvae()
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    (hf_dir / "config.json").write_text(json.dumps(hf_vqvae_config()))
    save_file(
        {vqvae_openai_to_hf(k): v for k, v in model.state_dict().items()}, str(hf_dir / "model.safetensors")
    )
    result = convert_hf(hf_dir, tmp_path / "out")
    assert result.skipped == ()
    loaded = load_vqvae(tmp_path / "out")
    assert loaded.config.hop_lengths == (8, 32, 128) and loaded.config.codebook_size == 32
    _same_weights(loaded, model)


def test_hf_full_model_checks_prior_weights(tmp_path: Path) -> None:
    model = _tiny_vqvae()
    hf_dir = tmp_path / "hf"
    hf_dir.mkdir()
    config = {"model_type": "jukebox", "vqvae_config": hf_vqvae_config(), "sampling_rate": 44100, "nb_priors": 3}
    (hf_dir / "config.json").write_text(json.dumps(config))
    state = {f"vqvae.{vqvae_openai_to_hf(k)}": v for k, v in model.state_dict().items()}
    state["priors.0.prior.x_emb.weight"] = torch.zeros(2, 2)  # wrong name on purpose: HF uses embed_tokens
    save_file(state, str(hf_dir / "model.safetensors"))
    with pytest.raises(CheckpointError, match="x_emb"):
        convert_hf(hf_dir, tmp_path / "out")
    del state["priors.0.prior.x_emb.weight"]
    state["priors.0.prior.embed_tokens.weight"] = torch.zeros(2, 2)
    save_file(state, str(hf_dir / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"priors\.0 \(prior_level_2\).*missing"):
        convert_hf(hf_dir, tmp_path / "out")  # priors are converted now, and strictly
    del state["priors.0.prior.embed_tokens.weight"]
    save_file(state, str(hf_dir / "model.safetensors"))
    result = convert_hf(hf_dir, tmp_path / "out")  # no prior weights at all: VQ-VAE only, priors reported
    assert result.skipped == ("prior_level_2", "prior_level_1", "prior_level_0")
    assert (tmp_path / "out" / MANIFEST).is_file()
    _same_weights(load_vqvae(tmp_path / "out"), model)
