"""Style blending (issue 9): weighted artists and genres mix the prior's label embeddings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.errors import InputError
from conditioning.labels import Metadata, parse_blend
from model import tasks
from model.prior import presets
from model.sampling.loading import load_sampling_model
from model.sampling.params import SamplingParams
from model.sampling.setup import labels_for_priors
from model.tasks.song import Labelling, Song
from tests.helpers.factories import SR, randomised_prior, tiny_model_dir


def test_a_blend_is_parsed_and_its_weights_sum_to_one() -> None:
    assert parse_blend("the beatles") == (("the beatles", 1.0),)
    assert parse_blend("ada=3; bo=1") == (("ada", 0.75), ("bo", 0.25))
    for bad, message in (("ada=0; bo=1", "positive weight"), ("ada=x", "NAME=WEIGHT"), ("=1", "NAME=WEIGHT"),
                         ("ada=1; ADA=2", "names one artist twice"), ("; ".join(f"a{i}=1" for i in range(9)), "1 to 8"),
                         ("ada=inf", "positive weight"), ("ada=nan", "positive weight")):  # fmt: skip
        with pytest.raises(InputError, match=message):
            parse_blend(bad)


def _labels(tmp_path: Path, artist: str, genre: str):  # type: ignore[no-untyped-def]
    folder = tiny_model_dir(tmp_path / artist.replace(";", "_").replace("=", "-").replace(" ", ""))
    configs = {2: presets.tiny_prior()}
    return labels_for_priors(configs, Metadata(artist, genre, total_length=2 * SR), folder / "ids")[2]


def test_blended_labels_carry_one_row_per_artist_and_genre_pair(tmp_path: Path) -> None:
    plain = _labels(tmp_path, "ada", "jazz")
    assert plain.blend == () and plain.for_window(0).variants is None
    mixed = _labels(tmp_path, "ada=0.75; bo=0.25", "jazz=0.5; pop=0.5")
    window = mixed.for_window(0)
    assert window.variants is not None and window.weights is not None
    assert window.variants[:, 3].tolist() == [1, 1, 2, 2] and window.variants[:, 4].tolist() == [1, 2, 1, 2]
    assert torch.allclose(window.weights, torch.tensor([0.375, 0.375, 0.125, 0.125]))
    assert torch.equal(window.y, plain.for_window(0).y)  # y is the first pair: what unblended readers see
    assert torch.equal(window.variants[:, :3], window.y[:3].expand(4, -1))  # same lengths and offset in each row


def test_the_prior_mixes_the_label_embeddings_by_weight() -> None:
    prior = randomised_prior(presets.tiny_prior())
    pad = [-1] * (prior.config.n_labels - 5)  # empty genre slots
    y = torch.tensor([[2 * SR, 0, 32 * 128, 1, 1, *pad], [2 * SR, 0, 32 * 128, 2, 2, *pad]])  # (2, n_y)
    a, b = prior.conditioning(y[:1]), prior.conditioning(y[1:])
    both = y[None]  # (1, 2, n_y)
    one = prior.conditioning(both, label_weights=torch.tensor([1.0, 0.0]))
    assert one.y_cond is not None and a.y_cond is not None and b.y_cond is not None
    assert torch.equal(one.y_cond, a.y_cond)  # weight 1 on the first row: exactly that artist
    half = prior.conditioning(both, label_weights=torch.tensor([0.5, 0.5]))
    assert half.y_cond is not None
    assert torch.allclose(half.y_cond, 0.5 * (a.y_cond + b.y_cond), atol=1e-6)
    assert not torch.allclose(a.y_cond, b.y_cond)
    with pytest.raises(InputError, match="K weights"):
        prior.conditioning(both, label_weights=torch.tensor([1.0]))


def test_a_blended_song_samples_between_its_artists(tmp_path: Path) -> None:
    folder = tiny_model_dir(tmp_path / "m")
    model, ids = load_sampling_model(folder), Labelling(folder / "ids")
    p = SamplingParams(precision="fp32", n_candidates=2, seeds=(1, 2))

    def codes(artist: str) -> torch.Tensor:
        return tasks.generate(model, 2500, Song(artist, "jazz", total_length=2 * SR), p, ids, lowest_level=1).sample.codes[1]

    ada, blend = codes("ada"), codes("ada=0.5; bo=0.5")
    assert not torch.equal(ada, blend)
    assert torch.equal(codes("ada=1"), ada)  # one name of weight 1 is no blend at all
