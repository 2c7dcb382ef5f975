"""``segue convert`` with priors: --prior-level-N, keyed --hps, adding to an existing directory, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model.checkpoint.jukebox_hps import hps_from_prior_config
from model.checkpoint.priors import available_levels, load_prior
from model.prior import presets
from segue.cli import main
from tests.helpers.factories import randomised_prior
from tests.model.checkpoint.prior_files import logits, save_prior, save_vqvae


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("official")
    save_vqvae(d / "vqvae.pth.tar")
    configs = {0: presets.tiny_upsampler(0), 1: presets.tiny_upsampler(1), 2: presets.tiny_prior_separate()}
    for level, config in configs.items():  # no hps inside: they come from --hps
        save_prior(d / f"prior_level_{level}.pth.tar", randomised_prior(config, seed=level), hps=False)
    keyed = {f"prior_level_{level}": hps_from_prior_config(c) for level, c in configs.items()}
    (d / "hps.json").write_text(json.dumps(keyed))
    return d


def test_convert_all_priors_with_keyed_hps(files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model"
    argv = ["convert", "--format", "openai", "--vqvae", str(files / "vqvae.pth.tar"), "--hps", str(files / "hps.json")]
    for level in range(3):
        argv += [f"--prior-level-{level}", str(files / f"prior_level_{level}.pth.tar")]
    assert main([*argv, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "prior_level_2: prior, prior_level_2.safetensors" in printed and f"wrote {out}" in printed
    assert available_levels(out) == (0, 1, 2)
    top = randomised_prior(presets.tiny_prior_separate(), seed=2)
    torch.testing.assert_close(logits(load_prior(out, 2)), logits(top), rtol=0, atol=0)


def test_add_a_prior_to_an_existing_dir(files: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "model"
    assert main(["convert", "--format", "openai", "--vqvae", str(files / "vqvae.pth.tar"), "-o", str(out)]) == 0
    single = tmp_path / "level0.json"
    single.write_text(json.dumps(hps_from_prior_config(presets.tiny_upsampler(0))))
    add = ["convert", "--format", "openai", "--prior-level-0", str(files / "prior_level_0.pth.tar"), "-o", str(out)]
    assert main([*add, "--hps", str(single)]) == 0
    assert available_levels(out) == (0,)
    capsys.readouterr()
    assert main([*add, "--hps", str(single)]) == 2
    assert "already has prior_level_0; pass --force" in capsys.readouterr().err
    assert main([*add, "--hps", str(single), "--force"]) == 0
    assert main([*add, "--force"]) == 2  # no hps in the file and none given
    assert "--preset 5b|5b_lyrics|1b_lyrics" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "openai", "--preset", "5b"], "needs --vqvae vqvae.pth.tar and/or --prior-level-N"),
        (["--format", "openai", "--vqvae", "v.pth.tar", "--preset", "5b"], "--preset describes priors"),
        (["--format", "hf", "hf_dir", "--prior-level-2", "p.pth.tar"], "belong to --format openai"),
    ],
)
def test_option_mistakes(args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", *args, "-o", str(tmp_path / "m")]) == 2
    assert message in capsys.readouterr().err
