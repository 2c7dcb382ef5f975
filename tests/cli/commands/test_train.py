"""``segue train prior CONFIG.toml``: a tiny prior trained on an indexed folder, then sampled from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from model.data.index import index_folder
from model.sampling.loading import load_sampling_model
from model.sampling.params import SamplingParams
from model.tasks import Song, generate
from model.tasks.song import Labelling
from segue.cli import main
from segue.commands.train import split
from tests.helpers.factories import tiny_model_dir
from tests.model.train.test_prior_dataset import make_songs

TOML = """\
model_dir = "model"
data = "{data}"
level = 2
run_dir = "run"
val_fraction = 0.34

[prior]
preset = "tiny_prior"

[[conditioners]]
name = "midi"
kind = "midi"
hidden = 8
kernel = 3
dropout = 0.2

[train]
steps = 10
batch_size = 2
lr = 3e-3
warmup_steps = 2
log_every = 5
checkpoint_every = 5
ema_decay = 0.9
"""


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("base")
    tiny_model_dir(root / "model")
    make_songs(root / "songs")
    (root / "songs" / "index.json").write_text(json.dumps(index_folder(root / "songs").to_dict()))
    return root


@pytest.fixture
def work(base: Path, tmp_path: Path) -> Path:
    shutil.copytree(base, tmp_path / "w")
    return tmp_path / "w"


def write(work: Path, text: str) -> Path:
    path = work / "run.toml"
    path.write_text(text)
    return path


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("segue train: error: "), err
    return err


def test_train_prior_writes_a_model_that_generates_and_resumes(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write(work, TOML.format(data="songs/index.json"))
    assert main(["train", "prior", str(config)]) == 0
    out = capsys.readouterr().out
    assert "on 2 pieces (1 held out)" in out and "prior_level_2" in out and "conditioner" in out
    assert "final train loss" in out and "final validation loss" in out and "bits per token" in out
    assert (work / "run" / "checkpoint.safetensors").is_file() and len(list((work / "run" / "codes").glob("*.npz"))) == 3
    ids = (work / "model" / "ids" / "v2_artist_ids.txt").read_text().split()
    assert ids == ["unknown;0", "ada;1", "zed;2"]
    model = load_sampling_model(work / "model")
    assert model.conditioners[2].names == ("midi",)
    params = SamplingParams(precision="fp32", n_candidates=1, seeds=(1,))
    result = generate(model, 3000, Song("zed", "rock", total_length=44100), params, Labelling(work / "model" / "ids"),
                      lowest_level=2)  # fmt: skip
    assert result.audio.shape == (1, 3000, 1) and result.level == 2 and result.labels[2].artist_id == 2
    assert main(["train", "prior", str(config)]) == 0  # the run is complete: resumed at its last step, no training
    assert "resumed from step 10, 10 steps" in capsys.readouterr().out


def test_a_folder_is_indexed_when_data_is_one(work: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = TOML.format(data="songs").replace("steps = 10", "steps = 2").replace("val_fraction = 0.34", "val_fraction = 0")
    assert main(["train", "prior", str(write(work, text))]) == 0
    out = capsys.readouterr().out
    assert "on 3 pieces (0 held out)" in out and "final validation" not in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("model_dir = [", "not valid TOML"),
        ("epochs = 3\n" + TOML.format(data="songs"), "unknown key(s) epochs"),
        (TOML.format(data="songs").replace("[train]", "[train]\nepochs = 3"), "unknown field(s) ['epochs']"),
        (TOML.format(data="songs").replace("dropout = 0.2", "width = 9"), "unknown key(s) width"),
        (TOML.format(data="songs").replace('preset = "tiny_prior"', 'preset = "tiny_prior"\nn_bins = 32'),
         "n_bins = 32, but the VQ-VAE"),
        (TOML.format(data="songs").replace('"tiny_prior"', '"huge"'), "preset 'huge' is not known"),
        (TOML.format(data="nowhere"), "no such index file or folder"),
        (TOML.format(data="songs").replace("level = 2", "level = 1"), "level-2 prior, but level = 1"),
    ],
)
def test_bad_configs_are_one_line_errors(work: Path, capsys: pytest.CaptureFixture[str], text: str, message: str) -> None:
    assert main(["train", "prior", str(write(work, text))]) == 2
    assert message in one_line_error(capsys)


def test_the_validation_split_is_seeded_and_never_empty_or_everything() -> None:
    assert split(1, 0.5, 0) == ([0], [])
    assert len(split(2, 0.01, 0)[1]) == 1 and len(split(10, 0.9, 0)[0]) == 1
    assert split(20, 0.1, 3) == split(20, 0.1, 3) and len(split(20, 0.1, 3)[1]) == 2
    assert split(5, 0.0, 0) == ([0, 1, 2, 3, 4], [])


INLINE_UPSAMPLER = """\
model_dir = "model"
data = "songs"
level = 1
run_dir = "run1"

[prior]
n_ctx = 32
n_bins = 64
transformer = { width = 32, depth = 2, heads = 2, attn_order = 2, blocks = 4, init_scale = 1.0 }
labels = { y_bins = [7, 11], t_bins = 8, max_bow_genre_size = 2, min_duration = 1.0, max_duration = 20.0 }
upsampler = { width = 16, depth = 2 }

[train]
steps = 3
batch_size = 2
log_every = 3
"""


def test_an_inline_upsampler_trains_on_the_codes_of_its_level_and_the_one_above(
    work: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "prior", str(write(work, INLINE_UPSAMPLER))]) == 0
    assert "wrote prior_level_1 into" in capsys.readouterr().out
    model = load_sampling_model(work / "model")
    assert model.priors[1].config.upsampler.width == 16 and model.priors[1].config.transformer.depth == 2


def test_the_documented_example_config_is_valid() -> None:
    import re
    import tomllib

    from model.prior.prior_config import PriorConfig
    from model.train.prior_train_config import PriorTrainConfig
    from segue.commands.train import TOP_KEYS, conditioner_configs, prior_config

    section = (Path(__file__).parents[3] / "docs" / "training.md").read_text().split("## `segue train prior`")[1]
    example, inline = (tomllib.loads(b) for b in re.findall(r"```toml\n(.*?)```", section, re.S)[:2])
    assert set(example) <= set(TOP_KEYS)
    prior = prior_config(example["prior"], example["level"])
    assert prior.n_ctx == 64 and prior.labels.y_bins == (20, 40) and PriorConfig.from_dict(prior.to_dict()) == prior
    assert [c.n_features for c in conditioner_configs(example["conditioners"], prior, 64)] == [402, 14]
    assert PriorTrainConfig.from_dict(example["train"]).precision == "bf16"
    assert prior_config(inline["prior"], 1).is_upsampler
