"""Official-style prior checkpoints -> segue model directory -> load_prior: same logits, strict errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from common.errors import CheckpointError, ConfigError
from model.checkpoint.builders import load_vqvae
from model.checkpoint.convert import convert_openai
from model.checkpoint.jukebox_hps import hps_from_prior_config
from model.checkpoint.model_dir import MANIFEST, read_manifest
from model.checkpoint.priors import available_levels, load_prior
from model.prior import presets
from model.prior.conv1d import Conv1D
from tests.helpers.factories import PRIOR_VQVAE, TOP_FAMILIES, randomised_prior
from tests.model.checkpoint.prior_files import logits, save_prior, save_vqvae


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("official")
    save_vqvae(d / "vqvae.pth.tar")
    for level in (0, 1):
        save_prior(d / f"prior_level_{level}.pth.tar", randomised_prior(presets.tiny_upsampler(level), seed=10 + level))
    return d


def test_saved_hps_convert_all_levels_to_identical_logits(files: Path, tmp_path: Path) -> None:
    top = randomised_prior(presets.tiny_prior(), seed=3)
    save_prior(tmp_path / "top.pth.tar", top)
    priors = {0: files / "prior_level_0.pth.tar", 1: files / "prior_level_1.pth.tar", 2: tmp_path / "top.pth.tar"}
    result = convert_openai(files / "vqvae.pth.tar", tmp_path / "model", priors=priors)
    assert [e.name for e in result.components] == ["vqvae", "prior_level_0", "prior_level_1", "prior_level_2"]
    assert available_levels(tmp_path / "model") == (0, 1, 2)
    for level in (0, 1):
        original = randomised_prior(presets.tiny_upsampler(level), seed=10 + level)
        upsampler = load_prior(tmp_path / "model", level)
        assert upsampler.config == original.config
        assert upsampler.prior.x_out.weight is upsampler.prior.x_emb.weight  # still tied after loading
        torch.testing.assert_close(logits(upsampler), logits(original), rtol=0, atol=0)
    loaded = load_prior(tmp_path / "model", 2)
    assert loaded.config == top.config
    torch.testing.assert_close(logits(loaded), logits(top), rtol=0, atol=0)


@pytest.mark.parametrize("family", ["separate_lyrics", "merged_lyrics"])
def test_lyrics_top_priors_convert_to_identical_logits(files: Path, tmp_path: Path, family: str) -> None:
    top = randomised_prior(TOP_FAMILIES[family](), seed=3)
    save_prior(tmp_path / "top.pth.tar", top, module_prefix=False)
    convert_openai(files / "vqvae.pth.tar", tmp_path / "model", priors={2: tmp_path / "top.pth.tar"})
    loaded = load_prior(tmp_path / "model", 2)
    assert loaded.config == top.config
    assert (loaded.prior.x_out.weight is loaded.prior.x_emb.weight) == (family == "merged_lyrics")
    torch.testing.assert_close(logits(loaded), logits(top), rtol=0, atol=0)


@pytest.mark.parametrize("disk_dtype", [torch.float16, torch.float32])
def test_fp16_conv_weights_load_from_either_dtype_and_stay_fp16(tmp_path: Path, disk_dtype: torch.dtype) -> None:
    c = dataclasses.replace(presets.tiny_prior(), fp16_params=True)  # the 5b storage format
    original = randomised_prior(c, seed=5)
    assert original.prior.transformer._attn_mods[0].attn.c_attn.w.dtype == torch.float16
    state = {k: (v.to(disk_dtype) if v.is_floating_point() else v) for k, v in original.state_dict().items()}
    torch.save({"model": state, "hps": hps_from_prior_config(c)}, tmp_path / "top.pth.tar")
    save_vqvae(tmp_path / "vqvae.pth.tar")
    convert_openai(tmp_path / "vqvae.pth.tar", tmp_path / "model", priors={2: tmp_path / "top.pth.tar"})
    loaded = load_prior(tmp_path / "model", 2)
    for module in loaded.modules():
        if isinstance(module, Conv1D):
            assert module.w.dtype == torch.float16 and module.b.dtype == torch.float32
    if disk_dtype == torch.float16:  # fp32 parameters stored as fp16 on disk lose precision, the rest is exact
        torch.testing.assert_close(logits(loaded), logits(original), rtol=2e-2, atol=2e-2)
    else:
        torch.testing.assert_close(logits(loaded), logits(original), rtol=0, atol=0)


def test_add_priors_to_existing_dir(files: Path, tmp_path: Path) -> None:
    out = tmp_path / "model"
    convert_openai(files / "vqvae.pth.tar", out, name="mine")
    assert available_levels(out) == ()
    with pytest.raises(CheckpointError, match="no prior for level 0.*levels it has: none"):
        load_prior(out, 0)
    vqvae_sha = read_manifest(out).component("vqvae", out).sha256
    convert_openai(None, out, priors={0: files / "prior_level_0.pth.tar"})
    assert available_levels(out) == (0,)
    manifest = read_manifest(out)
    assert manifest.name == "mine" and manifest.component("vqvae", out).sha256 == vqvae_sha
    with pytest.raises(CheckpointError, match="already has prior_level_0; pass --force"):
        convert_openai(None, out, priors={0: files / "prior_level_0.pth.tar"})
    convert_openai(None, out, priors={0: files / "prior_level_0.pth.tar", 1: files / "prior_level_1.pth.tar"}, force=True)
    assert available_levels(out) == (0, 1)
    load_vqvae(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging directories left behind
    with pytest.raises(CheckpointError, match="also needs --vqvae"):
        convert_openai(None, tmp_path / "new", priors={0: files / "prior_level_0.pth.tar"})


def test_missing_hps_says_what_to_pass(files: Path, tmp_path: Path) -> None:
    save_prior(tmp_path / "bare.pth.tar", randomised_prior(presets.tiny_upsampler(0)), hps=False)
    with pytest.raises(ConfigError, match="no hyper-parameters for prior level 0.*--preset.*--hps"):
        convert_openai(files / "vqvae.pth.tar", tmp_path / "model", priors={0: tmp_path / "bare.pth.tar"})
    assert not (tmp_path / "model").exists()
    # a single --hps object applies to the one prior given
    hps = tmp_path / "hps.json"
    hps.write_text(json.dumps(hps_from_prior_config(presets.tiny_upsampler(0))))
    convert_openai(files / "vqvae.pth.tar", tmp_path / "model", priors={0: tmp_path / "bare.pth.tar"}, hps_path=hps)
    assert available_levels(tmp_path / "model") == (0,)


def test_hps_for_another_level_or_several_priors_refused(files: Path, tmp_path: Path) -> None:
    hps = tmp_path / "hps.json"
    hps.write_text(json.dumps(hps_from_prior_config(presets.tiny_upsampler(1))))
    with pytest.raises(ConfigError, match="for level 1, but the file was given as prior level 0"):
        convert_openai(files / "vqvae.pth.tar", tmp_path / "m", priors={0: files / "prior_level_0.pth.tar"}, hps_path=hps)
    two = {0: files / "prior_level_0.pth.tar", 1: files / "prior_level_1.pth.tar"}
    with pytest.raises(ConfigError, match="one set of hyper-parameters but 2 priors.*prior_level_0"):
        convert_openai(files / "vqvae.pth.tar", tmp_path / "m", priors=two, hps_path=hps)


def test_prior_that_does_not_fit_the_vqvae(files: Path, tmp_path: Path) -> None:
    save_vqvae(tmp_path / "vqvae32.pth.tar", config=dataclasses.replace(PRIOR_VQVAE, codebook_size=32))
    # the count of codes comes from the VQ-VAE (32), so the 64-row weights are what disagree
    with pytest.raises(CheckpointError, match=r"does not fit the model's VQ-VAE: its weights model 64 codes.*has 32"):
        convert_openai(tmp_path / "vqvae32.pth.tar", tmp_path / "m", priors={0: files / "prior_level_0.pth.tar"})
    # a converted directory whose VQ-VAE was later swapped: load_prior explains instead of loading
    convert_openai(files / "vqvae.pth.tar", tmp_path / "m", priors={0: files / "prior_level_0.pth.tar"})
    convert_openai(tmp_path / "vqvae32.pth.tar", tmp_path / "other")
    for name in ("vqvae.config.json", "vqvae.safetensors"):
        (tmp_path / "m" / name).write_bytes((tmp_path / "other" / name).read_bytes())
    manifest = json.loads((tmp_path / "m" / MANIFEST).read_text())
    manifest["components"][0] = json.loads((tmp_path / "other" / MANIFEST).read_text())["components"][0]
    (tmp_path / "m" / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="level-0 prior does not fit.*64 codes"):
        load_prior(tmp_path / "m", 0)


def test_wrong_keys_and_wrong_files_are_listed(files: Path, tmp_path: Path) -> None:
    prior = randomised_prior(presets.tiny_upsampler(0))
    state = prior.state_dict()
    state["prior.extra.w"] = torch.zeros(1)
    del state["prior.x_out.weight"]
    state["prior.pos_emb.pos_emb"] = torch.zeros(3, 3)
    torch.save({"model": state, "hps": hps_from_prior_config(prior.config)}, tmp_path / "bad.pth.tar")
    with pytest.raises(CheckpointError, match=r"1 missing: prior\.x_out\.weight; 1 unexpected: prior\.extra\.w; "
                       r"1 wrong shape: prior\.pos_emb\.pos_emb \(3, 3\) vs model \(32, 32\)"):  # fmt: skip
        convert_openai(files / "vqvae.pth.tar", tmp_path / "m", priors={0: tmp_path / "bad.pth.tar"})
    with pytest.raises(CheckpointError, match="is a VQ-VAE checkpoint"):
        convert_openai(files / "vqvae.pth.tar", tmp_path / "m", priors={0: files / "vqvae.pth.tar"})
    with pytest.raises(CheckpointError, match="is a prior checkpoint"):
        convert_openai(files / "prior_level_0.pth.tar", tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_lyric_vocabulary_mismatch_is_explained(files: Path, tmp_path: Path) -> None:
    merged = randomised_prior(presets.tiny_prior_merged())  # 64 codes + 79 characters = 143 tokens
    hps = dict(hps_from_prior_config(merged.config), n_vocab=80)
    save_prior(tmp_path / "top.pth.tar", merged, hps=False)
    (tmp_path / "hps.json").write_text(json.dumps(hps))
    with pytest.raises(CheckpointError, match=r"143 rows.*64 music codes \+ 80 lyric characters = 144.*to 79"):
        convert_openai(files / "vqvae.pth.tar", tmp_path / "m", priors={2: tmp_path / "top.pth.tar"},
                       hps_path=tmp_path / "hps.json")  # fmt: skip


def test_tampered_level_in_stored_config(files: Path, tmp_path: Path) -> None:
    convert_openai(files / "vqvae.pth.tar", tmp_path / "m", priors={1: files / "prior_level_1.pth.tar"})
    path = tmp_path / "m" / "prior_level_1.config.json"
    document = json.loads(path.read_text())
    document["config"]["level"] = 0
    path.write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="stored as prior_level_1 but its config says level 0"):
        load_prior(tmp_path / "m", 1)


@pytest.mark.parametrize("level", [0, 2])
def test_the_number_of_codes_comes_from_the_vqvae_not_the_saved_hps(files: Path, tmp_path: Path, level: int) -> None:
    # Jukebox's make_prior takes bins=vqvae.l_bins: a prior's saved hps often keep the library default
    # l_bins=512 beside the real codebook (64 here); the original loads such a file, so must convert
    original = randomised_prior(presets.tiny_upsampler(0) if level == 0 else presets.tiny_prior(), seed=4)
    save_prior(tmp_path / "p.pth.tar", original, hps=False, hps_override={"l_bins": 512})
    convert_openai(files / "vqvae.pth.tar", tmp_path / "m", priors={level: tmp_path / "p.pth.tar"})
    loaded = load_prior(tmp_path / "m", level)
    assert loaded.config == original.config and loaded.config.n_bins == 64
    torch.testing.assert_close(logits(loaded), logits(original), rtol=0, atol=0)


def test_weights_for_another_number_of_codes_are_refused_by_name(files: Path, tmp_path: Path) -> None:
    # the saved hps say 64 codes like the VQ-VAE, but the weights were trained on a 32-code one
    small = randomised_prior(dataclasses.replace(presets.tiny_upsampler(0), n_bins=32))
    save_prior(tmp_path / "p.pth.tar", small, hps=False, hps_override={"l_bins": 64})
    with pytest.raises(CheckpointError, match=r"p\.pth\.tar: this level-0 prior does not fit the model's VQ-VAE: "
                       r"its weights model 32 codes \(prior\.x_emb\.weight has 32 rows\), the VQ-VAE's codebook has 64"):  # fmt: skip
        convert_openai(files / "vqvae.pth.tar", tmp_path / "m", priors={0: tmp_path / "p.pth.tar"})
