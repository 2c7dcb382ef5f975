"""The stored prior config: the nested version 2 that ``to_dict`` writes, and the flat version 1 that
model directories converted before it hold (``from_dict`` must keep reading those)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from common.errors import ConfigError
from model.checkpoint.priors import load_prior, prior_component
from model.prior import presets
from model.prior.prior_config import FORMAT_VERSION, PriorConfig
from model.prior.prior_config_v1 import FLAT_NAMES, from_flat, to_flat
from tests.helpers.factories import tiny_model_dir

ALL = [*presets.OFFICIAL.values(), presets.tiny_upsampler, presets.tiny_prior, presets.tiny_prior_separate,
       presets.tiny_prior_merged]  # fmt: skip

# presets.tiny_prior_separate().to_dict() as the flat PriorConfig (version 1) wrote it, verbatim
OLD_TINY_SEPARATE = json.loads("""{"level": 2, "n_ctx": 32, "width": 32, "depth": 19, "heads": 2, "attn_order": 10,
 "blocks": 4, "init_scale": 1.0, "m_attn": 0.25, "m_mlp": 1.0, "n_bins": 64, "merged_decoder": true,
 "fp16_params": false, "labels": true, "labels_v3": false, "y_bins": [7, 11], "t_bins": 8, "max_bow_genre_size": 2,
 "min_duration": 1.0, "max_duration": 20.0, "sample_rate": 44100, "lyrics": "separate", "n_tokens": 8, "n_vocab": 80,
 "prime_loss_fraction": 0.4, "prime_width": 16, "prime_depth": 2, "prime_heads": 2, "prime_attn_order": 2,
 "prime_blocks": 2, "prime_init_scale": 1.0, "prime_m_attn": 0.25, "prime_m_mlp": 1.0, "alignment_layer": 18,
 "alignment_head": 1, "cond_width": 128, "cond_depth": 3, "cond_m_conv": 1.0, "cond_dilation_growth_rate": 1,
 "cond_dilation_cycle": null, "cond_res_scale": false, "downs_t": [3, 2, 2], "strides_t": [2, 2, 2]}""")


def test_old_flat_dict_reads_back_to_the_same_config() -> None:
    assert len(OLD_TINY_SEPARATE) == len(FLAT_NAMES) == 43
    c = PriorConfig.from_dict(OLD_TINY_SEPARATE)
    assert c == presets.tiny_prior_separate()
    assert (c.transformer.depth, c.lyrics.encoder.width, c.lyrics.loss_fraction) == (19, 16, 0.4)
    assert PriorConfig.from_dict({**OLD_TINY_SEPARATE, "version": 1}) == c


def test_old_flat_dict_with_only_the_required_names_takes_the_old_defaults() -> None:
    minimal = {
        "level": 2,
        "n_ctx": 32,
        "width": 32,
        "depth": 3,
        "heads": 2,
        "attn_order": 2,
        "blocks": 4,
        "init_scale": 1.0,
    }
    c = PriorConfig.from_dict(minimal)
    assert (c.n_bins, c.labels.y_bins, c.lyrics.kind, c.lyrics.encoder.width, c.upsampler.width) == (
        2048, (120, 4111), "none", 128, 128,
    )  # fmt: skip
    assert (
        PriorConfig.from_dict({**minimal, "prime_width": 64}).lyrics.encoder.depth == 3
    )  # the rest: defaults


@pytest.mark.parametrize("make", ALL)
def test_every_preset_reads_back_from_flat_and_round_trips_nested(make) -> None:
    c = make()
    flat = json.loads(json.dumps(to_flat(c)))
    assert PriorConfig.from_dict(flat) == c
    nested = json.loads(json.dumps(c.to_dict()))
    assert nested["version"] == FORMAT_VERSION == 2
    assert set(nested) == {"version", "level", "n_ctx", "n_bins", "merged_decoder", "fp16_params", "transformer",
                           "labels", "lyrics", "upsampler", "geometry"}  # fmt: skip
    assert PriorConfig.from_dict(nested) == c


def test_unknown_or_missing_flat_names_and_unknown_versions_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"flat, version 1\): unknown keys \['widht'\]"):
        from_flat({**OLD_TINY_SEPARATE, "widht": 3})
    with pytest.raises(ConfigError, match=r"missing required keys \['width'\]"):
        from_flat({k: v for k, v in OLD_TINY_SEPARATE.items() if k != "width"})
    with pytest.raises(ConfigError, match="version 3 is not supported"):
        PriorConfig.from_dict({**presets.tiny_prior().to_dict(), "version": 3})
    with pytest.raises(ConfigError, match="labels must be a mapping"):
        PriorConfig.from_dict({**presets.tiny_prior().to_dict(), "labels": True})


def test_a_model_directory_with_flat_prior_configs_still_loads(tmp_path: Path) -> None:
    model = tiny_model_dir(tmp_path / "model", top=presets.tiny_prior_separate())
    path = model / f"{prior_component(2)}.config.json"
    document = json.loads(path.read_text())
    assert document["config"]["version"] == 2  # what this segue writes
    document["config"] = OLD_TINY_SEPARATE  # what an older segue wrote
    path.write_text(json.dumps(document))
    assert load_prior(model, 2).config == presets.tiny_prior_separate()
