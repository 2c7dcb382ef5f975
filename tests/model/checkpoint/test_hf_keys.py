import json
import re
from pathlib import Path

import pytest

from model.checkpoint.hf_keys import (
    hf_prior_index,
    prior_hf_to_openai,
    prior_openai_to_hf,
    split_hf_model_key,
    vqvae_hf_to_openai,
    vqvae_keys_hf_to_openai,
    vqvae_openai_to_hf,
)
from tests.helpers.factories import HF_TINY_LYRICS_ENCODER, hf_tiny_top_prior, hf_tiny_upsampler

PARTS = ["vqvae", "upsampler_level_0", "upsampler_level_1", "prior_5b", "prior_5b_lyrics", "prior_1b_lyrics"]


def _official(reference_dir: Path, part: str) -> dict[str, dict]:
    return json.loads((reference_dir / "jukebox-official-shapes.json").read_text())["parts"][part]


@pytest.mark.parametrize("part", PARTS)
def test_every_official_key_round_trips_without_collisions(reference_dir: Path, part: str) -> None:
    keys = list(_official(reference_dir, part))
    if part == "vqvae":
        to_hf = {k: vqvae_openai_to_hf(k) for k in keys}
        back = vqvae_keys_hf_to_openai(to_hf.values())
    else:
        to_hf = {k: prior_openai_to_hf(k) for k in keys}
        back = {hf: prior_hf_to_openai(hf) for hf in to_hf.values()}
    assert len(set(to_hf.values())) == len(keys)  # no two OpenAI keys land on one HF key
    for key, hf in to_hf.items():
        assert back[hf] == key


def test_vqvae_examples() -> None:
    cases = {
        "encoders.0.level_blocks.0.model.0.0.weight": "encoders.0.level_blocks.0.downsample_block.0.weight",
        "encoders.0.level_blocks.0.model.2.1.model.7.model.3.bias": (
            "encoders.0.level_blocks.0.downsample_block.5.resnet_block.7.conv1d_2.bias"
        ),
        "encoders.0.level_blocks.0.model.3.weight": "encoders.0.level_blocks.0.proj_out.weight",
        "decoders.1.level_blocks.0.model.0.weight": "decoders.1.level_blocks.0.proj_in.weight",
        "decoders.1.level_blocks.1.model.1.0.model.2.model.1.weight": (
            "decoders.1.level_blocks.1.upsample_block.0.resnet_block.2.conv1d_1.weight"
        ),
        "decoders.1.level_blocks.1.model.2.1.bias": "decoders.1.level_blocks.1.upsample_block.3.bias",
        "decoders.2.out.weight": "decoders.2.out.weight",
        "bottleneck.level_blocks.2.k": "bottleneck.level_blocks.2.codebook",
    }
    for oa, hf in cases.items():
        assert vqvae_openai_to_hf(oa) == hf
    assert vqvae_hf_to_openai("encoders.1.level_blocks.1.proj_out.bias", downs_t=2) == (
        "encoders.1.level_blocks.1.model.2.bias"
    )


def test_prior_examples() -> None:
    cases = {
        "prior.transformer._attn_mods.3.attn.c_attn.w": "prior.transformer._attn_mods.3.attn.c_attn.weight",
        "prior.transformer._attn_mods.18.attn.c_enc_kv.b": "prior.transformer._attn_mods.18.attn.c_enc_kv.bias",
        "prior.transformer._attn_mods.0.ln_1.weight": "prior.transformer._attn_mods.0.layer_norm_1.weight",
        "prior.x_out.weight": "prior.fc_proj_out.weight",
        "prior.x_emb.weight": "prior.embed_tokens.weight",
        "prior.pos_emb.pos_emb": "prior.pos_emb.pos_emb",
        "y_emb.artist_emb.emb.weight": "metadata_embedding.artist_emb.weight",
        "y_emb.total_length_emb.emb.weight": "metadata_embedding.total_length_emb.emb.weight",
        "prime_prior.start_token": "encoder.start_token",
        "prime_prior.transformer._attn_mods.17.mlp.c_fc.w": "encoder.transformer._attn_mods.17.mlp.c_fc.weight",
        "prime_state_proj.w": "encoder.proj_in.weight",
        "prime_state_ln.bias": "encoder.final_layer_norm.bias",
        "prime_x_out.weight": "encoder.lm_head.weight",
        "conditioner_blocks.0.x_emb.weight": "conditioner_blocks.embed_tokens.weight",
        "conditioner_blocks.0.ln.bias": "conditioner_blocks.layer_norm.bias",
        "conditioner_blocks.0.cond.model.0.weight": "conditioner_blocks.upsampler.proj_in.weight",
        "conditioner_blocks.0.cond.model.2.0.blocks.15.model.3.weight": (
            "conditioner_blocks.upsampler.upsample_block.2.resnet_block.15.conv1d_2.weight"
        ),
        "conditioner_blocks.0.cond.model.2.1.bias": "conditioner_blocks.upsampler.upsample_block.3.bias",
    }
    for oa, hf in cases.items():
        assert prior_openai_to_hf(oa) == hf
        assert prior_hf_to_openai(hf) == oa


def test_unknown_keys_are_named() -> None:
    with pytest.raises(KeyError, match="decoders.0.something"):
        vqvae_openai_to_hf("decoders.0.something")
    with pytest.raises(KeyError, match="prior.mystery"):
        prior_openai_to_hf("prior.mystery")
    with pytest.raises(KeyError, match="lm_head.bias"):
        prior_hf_to_openai("encoder.lm_head.bias")
    with pytest.raises(KeyError, match="even"):
        vqvae_hf_to_openai("decoders.0.level_blocks.0.upsample_block.2.weight", downs_t=3)


def test_model_level_prefixes() -> None:
    assert [hf_prior_index(level) for level in (0, 1, 2)] == [2, 1, 0]
    assert split_hf_model_key("vqvae.bottleneck.level_blocks.0.codebook") == (
        "vqvae",
        None,
        "bottleneck.level_blocks.0.codebook",
    )
    assert split_hf_model_key("priors.0.prior.x_emb.weight") == ("prior", 2, "prior.x_emb.weight")
    assert split_hf_model_key("priors.2.prior.x_emb.weight") == ("prior", 0, "prior.x_emb.weight")
    with pytest.raises(KeyError):
        split_hf_model_key("priors.3.prior.x_emb.weight")
    with pytest.raises(KeyError):
        split_hf_model_key("lm_head.weight")


@pytest.mark.oracle
def test_vqvae_matches_hf_module_names_and_shapes(reference_dir: Path) -> None:
    """The HF JukeboxVQVAE with default config is the official VQ-VAE: names and shapes must agree."""
    modeling = pytest.importorskip("transformers.models.deprecated.jukebox.modeling_jukebox")
    configuration = pytest.importorskip("transformers.models.deprecated.jukebox.configuration_jukebox")
    hf = modeling.JukeboxVQVAE(configuration.JukeboxVQVAEConfig()).state_dict()
    official = _official(reference_dir, "vqvae")
    mapped = {vqvae_openai_to_hf(k): tuple(v["shape"]) for k, v in official.items()}
    assert mapped == {k: tuple(t.shape) for k, t in hf.items()}


def _pattern(key: str) -> str:
    return re.sub(r"\.\d+", ".#", key)


@pytest.mark.oracle
def test_prior_names_match_hf_modules(reference_dir: Path) -> None:
    """Every mapped official prior key names a module path that HF's JukeboxPrior really has."""
    import torch

    modeling = pytest.importorskip("transformers.models.deprecated.jukebox.modeling_jukebox")
    configuration = pytest.importorskip("transformers.models.deprecated.jukebox.configuration_jukebox")
    encoder = configuration.JukeboxPriorConfig(**HF_TINY_LYRICS_ENCODER)
    top = configuration.JukeboxPriorConfig(**hf_tiny_top_prior(level=2, encoder_config=encoder.to_dict()))
    upsampler = configuration.JukeboxPriorConfig(**hf_tiny_upsampler(level=1, res_conv_depth=16, res_conv_width=16))
    with torch.device("meta"):
        hf_top = {_pattern(k) for k in modeling.JukeboxPrior(top, level=0).state_dict()}
        hf_up = {_pattern(k) for k in modeling.JukeboxPrior(upsampler, level=1).state_dict()}
    for part, hf in [("prior_5b_lyrics", hf_top), ("upsampler_level_1", hf_up)]:
        mapped = {_pattern(prior_openai_to_hf(k)) for k in _official(reference_dir, part)}
        assert mapped == hf, part
