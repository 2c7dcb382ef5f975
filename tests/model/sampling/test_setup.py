from pathlib import Path

import pytest

from common.errors import InputError
from conditioning.labels import JUKEBOX_LABEL_SETS, Metadata
from model.prior import presets
from model.sampling.setup import geometry_for, label_set_for, labels_for_priors


def test_label_sets_match_the_released_priors() -> None:
    assert label_set_for(presets.prior_1b_lyrics()) == JUKEBOX_LABEL_SETS["1b_lyrics"]
    assert label_set_for(presets.prior_5b_lyrics()) == JUKEBOX_LABEL_SETS["5b_lyrics"]
    assert label_set_for(presets.upsampler_level_0()) == JUKEBOX_LABEL_SETS["upsampler_level_0"]


def test_geometry_of_jukebox() -> None:
    configs = {0: presets.upsampler_level_0(), 1: presets.upsampler_level_1(), 2: presets.prior_1b_lyrics()}
    g = geometry_for((8, 32, 128), 44100, configs)
    assert g.n_ctx == (8192, 8192, 6144) and g.min_duration == 17.84 and g.max_duration == 600.0


def test_labels_for_every_prior(reference_dir: Path) -> None:
    configs = {0: presets.upsampler_level_0(), 2: presets.prior_1b_lyrics()}
    meta = Metadata("Zac Brown Band", "Country", "hello", total_length=1_058_304)
    labels = labels_for_priors(configs, meta, reference_dir / "jukebox-ids")
    assert labels[2].artist_id == 7169 and labels[2].genre_ids == (507,)
    assert labels[0].artist_id == 1069 and labels[0].genre_ids[0] == 11
    y = labels[2].for_window(1024, 128, 6144).y
    assert y[:5].tolist() == [1_058_304, 1024 * 128, 786_432, 7169, 507]
    with pytest.raises(InputError, match="not found"):
        labels_for_priors(configs, meta, reference_dir / "nowhere")
