"""A whole Hugging Face ``JukeboxModel`` (transformers 4.57.6, test-only oracle) with tiny priors of each top
family: converted priors must reproduce the port's logits, configs must come back exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from common.errors import CheckpointError
from model.checkpoint.convert import convert_hf
from model.checkpoint.priors import available_levels, load_prior
from model.prior import presets
from model.prior.prior_config import PriorConfig
from tests.helpers.factories import TOP_FAMILIES, hf_vqvae_config, randomise
from tests.model.checkpoint.prior_files import logits, window

modeling = pytest.importorskip("transformers.models.deprecated.jukebox.modeling_jukebox")
configuration = pytest.importorskip("transformers.models.deprecated.jukebox.configuration_jukebox")
from tests.model.prior.test_hf_conformance import hf_prior_config, work_around_port  # noqa: E402  (needs transformers)

pytestmark = pytest.mark.oracle

VQVAE = hf_vqvae_config(nb_discrete_codes=64)


def ours_configs(family: str) -> list[PriorConfig]:
    """Our configs in HF order (top first)."""
    return [TOP_FAMILIES[family](), presets.tiny_upsampler(1), presets.tiny_upsampler(0)]


def save_hf_model(family: str, directory: Path) -> object:
    configs = ours_configs(family)
    top = configs[0]
    config = configuration.JukeboxConfig(
        vqvae_config=VQVAE,
        prior_config_list=[hf_prior_config(c).to_dict() for c in configs],
        sampling_rate=top.labels.sample_rate, timing_dims=top.labels.t_bins, min_duration=top.labels.min_duration,
        max_duration=top.labels.max_duration, max_nb_genres=top.labels.max_bow_genre_size, metadata_conditioning=True,
    )  # fmt: skip
    torch.manual_seed(0)
    model = modeling.JukeboxModel(config).eval()
    randomise(model.priors, seed=7)
    # Tied x_emb/x_out (upsamplers, 1b_lyrics) make safetensors refuse; the hub files are pytorch_model.bin too.
    model.save_pretrained(directory, safe_serialization=False)
    return model


def hf_logits(model: object, index: int, c: PriorConfig) -> torch.Tensor:
    theirs = model.priors[index]  # type: ignore[attr-defined]
    work_around_port(theirs, c)
    codes, labels, upper = window(c)
    with torch.no_grad():
        _, metrics = theirs.forward_tokens(codes, [upper] if upper is not None else [], labels, get_preds=True)
    return metrics["preds"]


@pytest.mark.parametrize("family", sorted(TOP_FAMILIES))
def test_hf_jukebox_model_priors_match_the_port(tmp_path: Path, family: str) -> None:
    model = save_hf_model(family, tmp_path / "hf")
    result = convert_hf(tmp_path / "hf", tmp_path / "ours")
    assert result.skipped == ()
    assert available_levels(tmp_path / "ours") == (0, 1, 2)
    for index, expected_config in enumerate(ours_configs(family)):
        level = 2 - index  # HF numbers priors top first
        prior = load_prior(tmp_path / "ours", level)
        assert prior.config == expected_config
        ours = logits(prior)
        assert float(ours.std()) > 0.1
        torch.testing.assert_close(ours, hf_logits(model, index, expected_config), rtol=1e-4, atol=1e-4)


def test_hf_shared_fields_win_and_vocab_mismatch_is_explained(tmp_path: Path) -> None:
    save_hf_model("merged_lyrics", tmp_path / "hf")
    path = tmp_path / "hf" / "config.json"
    config = json.loads(path.read_text())
    for prior in config["prior_config_list"]:  # JukeboxModel replaces these with the top-level values
        prior.update(timing_dims=99, max_nb_genres=7, min_duration=0.0, sampling_rate=22050)
    path.write_text(json.dumps(config))
    convert_hf(tmp_path / "hf", tmp_path / "ours")
    assert load_prior(tmp_path / "ours", 2).config == presets.tiny_prior_merged()

    config["prior_config_list"][0]["lyric_vocab_size"] = 80  # HF's default; the weights have 64 + 79 rows
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"priors\.0 \(prior_level_2\).*143 rows.*= 144.*2128.*to 79"):
        convert_hf(tmp_path / "hf", tmp_path / "other")
