"""The model's tasks on a tiny real model (VQ-VAE and three priors): what each keeps, samples and returns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from common.errors import CodesError, InputError
from model import tasks
from model.codes import CodesFile, CodesMeta
from model.sampling.hooks import Hooks
from model.sampling.loading import SamplingModel, load_sampling_model
from model.sampling.params import SamplingParams
from model.tasks.song import Labelling, Song
from tests.helpers.factories import SR, tiny_model_dir

P = SamplingParams(precision="fp32", n_candidates=2, seeds=(1, 2))
SONG = Song("ada", "jazz", total_length=2 * SR)
MIN = 2304  # the tiny upsamplers' one-window minimum: 18 top tokens of 128 samples


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def model(folder: Path) -> SamplingModel:
    return load_sampling_model(folder)


@pytest.fixture(scope="module")
def ids(folder: Path) -> Labelling:
    return Labelling(folder / "ids")


def _codes_file(model: SamplingModel, codes: tuple[torch.Tensor, ...], identity: str | None = None) -> CodesFile:
    vq = model.vqvae.config
    meta = CodesMeta(SR, tuple(vq.hop_lengths), vq.codebook_size, identity or model.identity, 0)
    return CodesFile(tuple(c.numpy() for c in codes), meta)


def test_generate_samples_whole_tokens_and_cuts_the_take(model: SamplingModel, ids: Labelling) -> None:
    seen: list[tuple[str, object]] = []
    hooks = Hooks(level_done=lambda lv: seen.append(("done", lv)), preview=lambda lv, a: seen.append(("preview", a.shape)))
    result = tasks.generate(model, 3000, SONG, P, ids, hooks=hooks)
    assert (result.task, result.start, result.frames, result.level, result.audio.shape) == ("generate", 0, 3000, 0, (2, 3000, 1))
    assert result.sample.sample_length == 24 * 128 and [c.shape[1] for c in result.sample.codes] == [384, 96, 24]
    assert seen == [("done", 2), ("preview", (2, 3000, 1)), ("done", 1), ("done", 0)]
    sketch = tasks.generate(model, 3000, SONG, P, ids, lowest_level=2)  # the top level alone: a quick sketch
    assert sketch.level == 2 and torch.equal(sketch.sample.codes[2], result.sample.codes[2][:, : sketch.sample.codes[2].shape[1]])
    assert result.labels[2].total_length == 2 * SR and result.warnings == ()


def test_continue_keeps_the_prime_and_starts_at_the_region_end(model: SamplingModel, ids: Labelling) -> None:
    region = (0.5 * np.sin(np.arange(1000) / 7.0, dtype=np.float32))[:, None]  # 7 top tokens + 104 samples
    result = tasks.continue_region(model, region, 500, SONG, P, ids)
    prime = model.vqvae.encode(torch.from_numpy(region[: 7 * 128])[None])
    for lv in range(3):
        assert torch.equal(result.sample.codes[lv][:, : prime[lv].shape[1]], prime[lv].expand(2, -1))
    assert result.start == 1000 and result.frames == 500 and result.audio.shape == (2, 500, 1)
    with pytest.raises(InputError, match="at least one top-level token"):
        tasks.continue_region(model, region[:100], 500, SONG, P, ids)
    with pytest.raises(InputError, match="mono audio shaped"):
        tasks.continue_region(model, np.zeros((1000, 2), np.float32), 500, SONG, P, ids)
    with pytest.raises(InputError, match="NaN"):
        tasks.continue_region(model, np.full((1000, 1), np.nan, np.float32), 500, SONG, P, ids)


def test_extend_keeps_every_level_and_the_take_follows_the_codes(model: SamplingModel, ids: Labelling) -> None:
    first = tasks.generate(model, MIN, SONG, P, ids)
    more = tasks.extend(model, _codes_file(model, first.sample.codes), 1000, SONG, P, ids)
    for lv in range(3):
        n = first.sample.codes[lv].shape[1]
        assert torch.equal(more.sample.codes[lv][:, :n], first.sample.codes[lv])
    assert more.start == MIN and more.frames == 1000 and more.audio.shape == (2, 1000, 1)


def test_upsample_renders_the_given_top_level(model: SamplingModel, ids: Labelling) -> None:
    top = torch.randint(0, 64, (1, 20))
    empty = (torch.zeros(1, 0, dtype=torch.long),) * 2
    result = tasks.upsample(model, _codes_file(model, (*empty, top)), SONG, P, ids)
    assert [tuple(c.shape) for c in result.sample.codes] == [(2, 320), (2, 80), (2, 20)]
    assert torch.equal(result.sample.codes[2], top.expand(2, -1)) and result.frames == 20 * 128
    assert tasks.upsample(model, _codes_file(model, (*empty, top)), SONG, P, ids, length=100).audio.shape == (2, 100, 1)
    with pytest.raises(CodesError, match="too short to upsample"):
        tasks.upsample(model, _codes_file(model, (*empty, top[:, :3])), SONG, P, ids)
    with pytest.raises(CodesError, match="3 rows of codes for 2 candidates"):
        tasks.upsample(model, _codes_file(model, (*empty, top.expand(3, -1))), SONG, P, ids)
    other = _codes_file(model, (*empty, top), identity="other@0123abcd")
    with pytest.raises(CodesError, match="made by model other@0123abcd"):
        tasks.upsample(model, other, SONG, P, ids)
    assert tasks.upsample(model, other, SONG, P, ids, allow_other_model=True).frames == 20 * 128


def test_encode_region_gives_the_codes_of_every_level(model: SamplingModel) -> None:
    region = (0.3 * np.sin(np.arange(2000) / 5.0, dtype=np.float32))[:, None]
    result = tasks.encode_region(model, region, source_name="riff.wav")
    expected = model.vqvae.encode(torch.from_numpy(region)[None])
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(result.codes, expected))
    assert (result.meta.model, result.meta.source_samples, result.meta.source_name) == (model.identity, 2000, "riff.wav")
    with pytest.raises(InputError, match="encoding needs at least one top-level token"):
        tasks.encode_region(model, region[:100])


@pytest.mark.parametrize(
    "call,words",
    [
        (lambda m, i: tasks.generate(m, 0, SONG, P, i), "not positive"),
        (lambda m, i: tasks.generate(m, 25 * SR, SONG, P, i), "too long for this model"),
        (lambda m, i: tasks.generate(m, 1000, SONG, P, i, lowest_level=3), "lowest level 3 is out of range"),
        (lambda m, i: tasks.generate(m, 1000, Song("ada", "jazz", total_length=SR // 2), P, i), "outside the range"),
        (lambda m, i: tasks.generate(m, 1000, Song("nobody at all", "jazz"), P, i), "artist"),
        (lambda m, i: tasks.generate(m, 1000, SONG, SamplingParams(precision="fp32", temperature=(0.9, 0.9)), i), "2 temperature values"),
    ],
)  # fmt: skip
def test_bad_requests_are_refused_before_any_sampling(model: SamplingModel, ids: Labelling, call, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InputError, match=words):
        call(model, ids)


def test_a_long_song_is_clamped_into_the_model_range(model: SamplingModel, ids: Labelling) -> None:
    result = tasks.generate(model, 1000, Song("ada", "jazz", offset=30 * SR), P, ids)  # past the 20 s maximum
    labels = result.labels[2]
    assert labels.total_length == 20 * SR - 1 and labels.offset + result.sample.sample_length <= labels.total_length
