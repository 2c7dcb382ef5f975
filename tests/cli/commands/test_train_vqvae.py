"""``segue train vqvae CONFIG.toml``: a tiny VQ-VAE trained a few steps on two generated WAVs, then loaded back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from model.checkpoint.builders import load_vqvae
from model.data.index import index_folder
from segue.cli import main

SR = 44100

# tests/helpers/factories.two_level_config: 2 levels, hops 4/8, 16 codes, width 8, depth 1
TOML = """\
model_dir = "model"
model_name = "tiny-trained"
data = "{data}"
val_fraction = 0.5
run_dir = "run"

[vqvae]
levels = 2
downs_t = [2, 1]
strides_t = [2, 2]
emb_width = 8
codebook_size = 16
width = 8
depth = 1
multipliers = [1, 1]

[train]
steps = 5
batch_size = 2
sample_length = 2048
lr = 1e-3
warmup_steps = 1
log_every = 2

[train.training]
linf_k = 64
"""


@pytest.fixture
def songs(tmp_path: Path) -> Path:
    folder = tmp_path / "songs"
    folder.mkdir()
    t = np.arange(int(1.2 * SR)) / SR  # 1.2 s: the index takes pieces of 1 s and more
    for i, f in enumerate((220.0, 330.0)):
        x = 0.3 * np.sin(2 * np.pi * f * t) + 0.05 * np.random.default_rng(i).standard_normal(t.shape)
        sf.write(folder / f"song{i}.wav", x.astype(np.float32), SR)
    return folder


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.toml"
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("segue train: error:"), err
    return err


@pytest.mark.parametrize("data", ["songs", "songs/index.json"])
def test_train_vqvae_writes_a_model_dir_that_encodes(
    songs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], data: str
) -> None:
    (songs / "index.json").write_text(json.dumps(index_folder(songs).to_dict()))
    assert main(["train", "vqvae", str(write(tmp_path, TOML.format(data=data)))]) == 0
    out = capsys.readouterr().out
    assert "1 files (1 held out)" in out
    assert "level 0 (hop 4): SNR" in out and "level 1 (hop 8): SNR" in out
    assert f"into {tmp_path / 'model'}" in out
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [2, 4, 5] and len(lines[0]["recons"]) == 2
    assert json.loads((tmp_path / "model" / "manifest.json").read_text())["name"] == "tiny-trained"
    vqvae = load_vqvae(tmp_path / "model")
    assert vqvae.config.hop_lengths == (4, 8)
    codes = vqvae.encode(torch.zeros(1, 800, 1))
    assert [c.shape for c in codes] == [(1, 200), (1, 100)]
    # a fresh run (another run_dir) into the same model directory would replace a VQ-VAE priors may depend on
    other = TOML.format(data=data).replace('run_dir = "run"', 'run_dir = "run2"')
    assert main(["train", "vqvae", str(write(tmp_path, other))]) == 2
    assert "already holds a VQ-VAE" in one_line_error(capsys)


def test_a_stopped_run_resumes_bit_identically(
    songs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from safetensors.torch import load_file

    # bf16 autocast and codebook revival (torch RNG) included: the state saved must be all there is
    text = TOML.format(data=str(songs)).replace(
        "steps = 5", 'steps = 6\ncheckpoint_every = 2\nprecision = "bf16"'
    )
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert main(["train", "vqvae", str(write(tmp_path / "a", text))]) == 0
    assert main(["train", "vqvae", str(write(tmp_path / "b", text.replace("steps = 6", "steps = 3")))]) == 0
    assert main(["train", "vqvae", str(write(tmp_path / "b", text))]) == 0
    assert "resuming from" in capsys.readouterr().out
    a = load_file(tmp_path / "a" / "model" / "vqvae.safetensors")
    b = load_file(tmp_path / "b" / "model" / "vqvae.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "b" / "run" / "metrics.jsonl").read_text().splitlines()
    ]
    assert steps == [2, 3, 4, 6]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_dir = [", "not valid TOML"),
        ("bogus = 1\n" + TOML.format(data="songs"), "unknown key(s) bogus"),
        (
            TOML.format(data="songs").replace("levels = 2", "levels = 2\ncommit = 0.1"),
            "[vqvae]: unknown key(s) commit",
        ),
        (
            TOML.format(data="songs").replace("steps = 5", "steps = 5\nepochs = 3"),
            "[train]: unknown key(s) epochs",
        ),
        (TOML.format(data="songs").replace("linf_k = 64", "linf = 64"), "[train.training]"),
        (TOML.format(data="songs").replace("steps = 5", 'steps = "5"'), "steps = '5' must be"),
        (TOML.format(data="songs").replace("levels = 2", 'preset = "demo"'), "no VQ-VAE presets"),
        (TOML.format(data="songs").replace("val_fraction = 0.5", "val_fraction = 1.5"), "val_fraction"),
        (TOML.format(data="nowhere"), "no such index file or folder"),
        ('data = "songs"\n[vqvae]\nlevels = 2\n', "'model_dir' is missing"),
    ],
)
def test_bad_configs_are_one_line_errors(
    songs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    assert main(["train", "vqvae", str(write(tmp_path, text))]) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "model").exists()


def test_the_docs_example_parses(tmp_path: Path) -> None:
    import re

    from segue.commands._train_vqvae import read_toml, train_config, vqvae_config

    docs = Path(__file__).resolve().parents[3] / "docs" / "training.md"
    section = docs.read_text(encoding="utf-8").split("## `segue train vqvae`")[1]
    match = re.search(r"```toml\n(.*?)```", section, re.S)
    assert match is not None
    data = read_toml(write(tmp_path, match.group(1)))
    assert vqvae_config(data["vqvae"]).hop_lengths == (8, 32, 128)
    assert train_config(data["train"]).precision == "bf16"
