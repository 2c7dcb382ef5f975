"""Numerical conformance with the Hugging Face port (transformers==4.57.6, used only here as an oracle).

A small random ``JukeboxVQVAE`` is saved HF-style, converted through our HF importer and, with its keys
renamed to OpenAI names, through the .pth.tar importer; both must give the same codes and the same
decoded audio as HF on the same input. HF's VQ-VAE keeps OpenAI level order (level 0 = hop 8).
"""

import json
import re
from pathlib import Path

import pytest
import torch

from model.checkpoint.builders import load_vqvae
from model.checkpoint.convert import convert_hf, convert_openai
from model.checkpoint.hf import read_hf_dir, split_hf_state_dict
from model.checkpoint.hf_keys import vqvae_keys_hf_to_openai
from model.checkpoint.priors import available_levels
from tests.helpers.factories import (
    ARCHITECTURE_HPS,
    hf_tiny_top_prior,
    hf_tiny_upsampler,
    hf_vqvae_config,
    jukebox_hps,
    jukebox_shaped_config,
)

modeling = pytest.importorskip("transformers.models.deprecated.jukebox.modeling_jukebox")
configuration = pytest.importorskip("transformers.models.deprecated.jukebox.configuration_jukebox")
pytestmark = pytest.mark.oracle

SMALL = hf_vqvae_config()
JUKEBOX_HPS = jukebox_hps(jukebox_shaped_config(), (*ARCHITECTURE_HPS, "dilation_growth_rate", "m_conv"))


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    torch.manual_seed(1234)
    model = modeling.JukeboxVQVAE(configuration.JukeboxVQVAEConfig(**SMALL)).eval()
    state = model.state_dict()
    with torch.no_grad():
        for tensor in state.values():
            tensor.copy_(torch.randn_like(tensor) * 0.2)  # every weight matters, not HF's near-zero init
        # Codebooks drawn from real encoder outputs, so the inputs below use many different codes.
        audio = torch.rand(1, 1, 8192) * 2 - 1  # (N, 1, T)
        for level in range(3):
            latents = model.encoders[level](audio)[-1]  # (N, emb, T // hop)
            latents = latents.permute(0, 2, 1).reshape(-1, latents.shape[1])  # (N * L, emb)
            picks = torch.randperm(latents.shape[0])[:32]
            state[f"bottleneck.level_blocks.{level}.codebook"].copy_(latents[picks])
    directory = tmp_path_factory.mktemp("hf") / "jukebox-vqvae"
    model.save_pretrained(directory)
    return model, directory


def _check_same(ours: torch.nn.Module, hf: object) -> None:
    x = torch.rand(2, 4096, 1, generator=torch.Generator().manual_seed(0)) * 2 - 1  # (N, T, 1)
    with torch.no_grad():
        theirs = hf.encode(x)  # type: ignore[attr-defined]
        codes = ours.encode(x, chunk_samples=0)  # type: ignore[operator]
        assert len(codes) == 3
        for level, (a, b) in enumerate(zip(codes, theirs)):
            assert a.shape == (2, 4096 // (8, 32, 128)[level])
            assert len(torch.unique(b)) > 4  # a meaningful comparison, not all one code
            torch.testing.assert_close(a, b, rtol=0, atol=0)
        for level in range(3):
            audio = ours.decode(codes[level], level, chunk_tokens=0)  # type: ignore[operator]
            expected = hf.decode([theirs[level]], start_level=level, end_level=level + 1)  # type: ignore[attr-defined]
            assert audio.shape == expected.shape == (2, 4096, 1)
            assert float(expected.std()) > 1e-3  # not silence
            torch.testing.assert_close(audio, expected, rtol=1e-4, atol=1e-5)


def test_hf_folder_conforms(hf_model: tuple[object, Path], tmp_path: Path) -> None:
    model, directory = hf_model
    assert (directory / "config.json").is_file() and (directory / "model.safetensors").is_file()
    convert_hf(directory, tmp_path / "ours")
    _check_same(load_vqvae(tmp_path / "ours"), model)


def test_openai_checkpoint_conforms(hf_model: tuple[object, Path], tmp_path: Path) -> None:
    model, _ = hf_model
    state = model.state_dict()  # type: ignore[attr-defined]
    names = vqvae_keys_hf_to_openai(state)
    torch.save(
        {"model": {names[k]: v for k, v in state.items()}, "hps": JUKEBOX_HPS}, tmp_path / "vqvae.pth.tar"
    )
    convert_openai(tmp_path / "vqvae.pth.tar", tmp_path / "ours")
    _check_same(load_vqvae(tmp_path / "ours"), model)


def _pattern(key: str) -> str:
    return re.sub(r"\.\d+", ".#", key)


def test_whole_hf_jukebox_model(tmp_path: Path, reference_dir: Path) -> None:
    """A saved HF JukeboxModel: the VQ-VAE converts exactly, every prior key maps to an official name pattern,
    and every prior converts (numerics: tests/model/checkpoint/test_prior_hf.py)."""
    vqvae = configuration.JukeboxVQVAEConfig(**SMALL)
    layers = dict(music_vocab_size=32, res_conv_width=16, res_conv_depth=2)
    top = configuration.JukeboxPriorConfig(**hf_tiny_top_prior(level=0, **layers))
    upsamplers = [  # HF defaults describe a lyrics prior; upsamplers have no lyrics
        configuration.JukeboxPriorConfig(
            **hf_tiny_upsampler(level=hf_level, is_encoder_decoder=False, nb_relevant_lyric_tokens=0, **layers)
        )
        for hf_level in (1, 2)
    ]
    config = configuration.JukeboxConfig(
        vqvae_config=vqvae.to_dict(), prior_config_list=[top.to_dict()] + [u.to_dict() for u in upsamplers]
    )
    model = modeling.JukeboxModel(config).eval()
    model.save_pretrained(tmp_path / "hf")

    parts = split_hf_state_dict(read_hf_dir(tmp_path / "hf"))
    official = json.loads((reference_dir / "jukebox-official-shapes.json").read_text())["parts"]
    expected = {
        "prior_level_2": "prior_5b_lyrics",
        "prior_level_1": "upsampler_level_1",
        "prior_level_0": "upsampler_level_0",
    }
    for ours, theirs in expected.items():
        assert {_pattern(k) for k in parts[ours]} == {_pattern(k) for k in official[theirs]}, ours

    result = convert_hf(tmp_path / "hf", tmp_path / "ours")
    assert result.skipped == ()
    assert available_levels(tmp_path / "ours") == (0, 1, 2)
    ours = load_vqvae(tmp_path / "ours").state_dict()
    hf_vqvae = model.vqvae.state_dict()
    names = vqvae_keys_hf_to_openai(hf_vqvae)
    for key, tensor in hf_vqvae.items():
        torch.testing.assert_close(ours[names[key]], tensor, rtol=0, atol=0)
