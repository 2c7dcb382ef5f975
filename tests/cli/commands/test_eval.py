import math
from pathlib import Path

import numpy as np
import pytest
import torch

from model.codes import CodesMeta, save_codes
from model.prior import presets
from model.sampling.jukebox import JukeboxLevel
from model.sampling.nll import code_nll
from segue.cli import main
from tests.helpers.factories import build, tiny_labels, tiny_model_dir


def test_eval_nll_prints_bits_and_saves_per_token(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_model_dir(tmp_path / "model")
    g = torch.Generator().manual_seed(0)
    codes = [torch.randint(0, 64, (1, n), generator=g) for n in (256, 64, 16)]
    path = tmp_path / "c.npz"
    save_codes(path, codes, CodesMeta(44100, (8, 32, 128), 64, "tiny@x", 2048))
    out = tmp_path / "bits.npy"
    args = ["eval", "nll", str(path), "--model", str(model), "--artist", "ada", "--genre", "jazz"]
    assert main([*args, "--level", "1", "--per-token", str(out)]) == 0
    text = capsys.readouterr().out
    bits = np.load(out)
    assert bits.shape == (1, 64)
    assert f"{bits.mean():.4f} bits per token" in text
    # the same number from the Python API
    config = presets.tiny_upsampler(1)
    expect = code_nll(JukeboxLevel(build(config, seed=1)), codes[1], tiny_labels({1: config})[1], codes[2])
    assert math.isclose(float(bits.mean()), expect.bits_per_token, rel_tol=1e-5)
    assert main([*args, "--level", "2", "--total-length", "1.5"]) == 0
    assert "level 2:" in capsys.readouterr().out
    assert main([*args, "--level", "3"]) == 2
    assert "levels [0, 1, 2]" in capsys.readouterr().err


def test_eval_nll_names_a_missing_lyrics_file_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # this printed "internal error: FileNotFoundError" (segue sample said it plainly)
    model = tiny_model_dir(tmp_path / "model")
    codes = [torch.zeros((1, n), dtype=torch.long) for n in (256, 64, 16)]
    save_codes(tmp_path / "c.npz", codes, CodesMeta(44100, (8, 32, 128), 64, "tiny@x", 2048))
    missing = tmp_path / "missing.txt"
    argv = ["eval", "nll", str(tmp_path / "c.npz"), "--model", str(model), "--level", "2", "--lyrics-file", str(missing)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == f"segue eval: error: --lyrics-file {missing}: no such file\n"


def test_eval_nll_names_a_missing_per_token_folder_before_scoring(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # np.save into a missing folder printed "internal error", after all the scoring
    model = tiny_model_dir(tmp_path / "model")
    codes = [torch.zeros((1, n), dtype=torch.long) for n in (256, 64, 16)]
    save_codes(tmp_path / "c.npz", codes, CodesMeta(44100, (8, 32, 128), 64, "tiny@x", 2048))
    argv = ["eval", "nll", str(tmp_path / "c.npz"), "--model", str(model), "--level", "2"]
    out = tmp_path / "no" / "bits.npy"
    assert main([*argv, "--per-token", str(out)]) == 2
    assert capsys.readouterr().err == f"segue eval: error: --per-token {out}: folder {out.parent} does not exist\n"
    assert main([*argv, "--per-token", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"segue eval: error: --per-token {tmp_path}: is a folder; give a file name\n"
    (tmp_path / "notes").write_text("mine")
    assert main([*argv, "--per-token", str(tmp_path / "notes" / "bits.npy")]) == 2
    assert f"{tmp_path / 'notes'} is not a folder" in capsys.readouterr().err
