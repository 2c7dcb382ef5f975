"""Each released prior, built on the meta device, has the official state dict: keys, shapes and dtypes."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest
import torch

from model.prior import presets
from model.prior.prior import JukeboxPrior

# spec 3.1, parameters in millions (tied x_out/x_emb counted once)
PARAMS_M = {
    "upsampler_level_0": 981.3,
    "upsampler_level_1": 981.3,
    "prior_5b": 5060.5,
    "prior_5b_lyrics": 5640.5,
    "prior_1b_lyrics": 942.6,
}


@functools.cache
def _build_meta(name: str) -> JukeboxPrior:
    with torch.device("meta"):
        return JukeboxPrior(presets.official(name))


@pytest.mark.parametrize("name", sorted(PARAMS_M))
def test_official_state_dict_matches_key_shape_dtype(name: str, reference_dir: Path) -> None:
    official = json.loads((reference_dir / "jukebox-official-shapes.json").read_text())["parts"][name]
    ours = {k: (list(v.shape), str(v.dtype).removeprefix("torch.")) for k, v in _build_meta(name).state_dict().items()}
    theirs = {k: (v["shape"], v["dtype"]) for k, v in official.items()}
    assert sorted(set(theirs) - set(ours)) == [], "keys missing from our prior"
    assert sorted(set(ours) - set(theirs)) == [], "keys our prior has but the checkpoint lacks"
    wrong = {k: (ours[k], theirs[k]) for k in theirs if ours[k] != theirs[k]}
    assert wrong == {}


@pytest.mark.parametrize("name", sorted(PARAMS_M))
def test_official_parameter_count(name: str) -> None:
    n = sum(p.numel() for p in _build_meta(name).parameters())
    assert round(n / 1e6, 1) == PARAMS_M[name]


def test_fp16_params_only_on_transformer_conv_weights() -> None:
    prior = _build_meta("prior_5b_lyrics")
    half = {k for k, v in prior.state_dict().items() if v.dtype == torch.float16}
    assert half and all(k.endswith(".w") for k in half)
    assert "prime_state_proj.w" in half and "prior.x_emb.weight" not in half


def test_x_out_tied_only_without_merged_decoder() -> None:
    tied = _build_meta("prior_1b_lyrics").prior
    untied = _build_meta("prior_5b").prior
    assert tied.x_out.weight is tied.x_emb.weight
    assert untied.x_out.weight is not untied.x_emb.weight
