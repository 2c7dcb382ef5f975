from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from common.errors import ConfigError, InputError
from conditioning.ids import load_id_table
from conditioning.labels import JUKEBOX_LABEL_SETS, Metadata, song_labels
from model.prior.label_conditioner import (
    JUKEBOX_LABEL_CONDITIONERS,
    LabelConditioner,
    LabelConditionerConfig,
    RangeEmbedding,
)

SR = 1000  # tiny sample rate keeps the numbers readable
TINY = LabelConditionerConfig(
    y_bins=(7, 11), t_bins=16, max_bow_genre_size=3, include_time_signal=True, width=8, n_ctx=32, hop=4,
    sr=SR, min_duration=2.0, max_duration=60.0, init_scale=1.0,
)


def _y(rows: list[list[int]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.int64)  # (N, 4 + G)


def test_keys_match_the_official_checkpoints(reference_dir: Path) -> None:
    parts = json.loads((reference_dir / "jukebox-official-shapes.json").read_text())["parts"]
    for name, config in JUKEBOX_LABEL_CONDITIONERS.items():
        official = {k: v["shape"] for k, v in parts[f"prior_{name}" if "upsampler" not in name else name].items()
                    if k.startswith("y_emb.")}
        with torch.device("meta"):
            ours = LabelConditioner(config)
        shapes = {f"y_emb.{k}": list(v.shape) for k, v in ours.state_dict().items()}
        assert shapes == official, name


def test_conditioner_presets_agree_with_the_label_sets() -> None:
    """From the prior presets (model/) and conditioning's label sets: the same genre slots, windows, durations."""
    assert JUKEBOX_LABEL_CONDITIONERS.keys() == JUKEBOX_LABEL_SETS.keys()
    for name, config in JUKEBOX_LABEL_CONDITIONERS.items():
        ls = JUKEBOX_LABEL_SETS[name]
        ours = (config.max_bow_genre_size, config.n_ctx, config.hop, config.sr, config.min_duration, config.max_duration)
        assert ours == (ls.max_bow_genre_size, ls.n_ctx, ls.hop, ls.sr, ls.min_duration, ls.max_duration), name


def test_range_embedding_bins() -> None:
    emb = RangeEmbedding(1, 4, 10.0, 50.0, width=3)
    table = emb.emb.weight
    # bin = floor(4 · (v − 10) / 40): 10 → 0, 19.9 → 0, 20 → 1, 49.9 → 3
    out = emb(torch.tensor([[10.0], [19.9], [20.0], [49.9]]))
    assert out.shape == (4, 1, 3)
    assert torch.equal(out[:, 0], table[[0, 0, 1, 3]])
    with pytest.raises(InputError, match=r"\[10, 50\)"):
        emb(torch.tensor([[50.0]]))
    over = RangeEmbedding(4, 4, 0.0, 1.0, width=3)
    # 4 positions from 0 to 1: 0, .25, .5, .75 → bins 0, 1, 2, 3
    assert torch.equal(over(torch.tensor([[0.0]]), torch.tensor([[1.0]]))[0], over.emb.weight[[0, 1, 2, 3]])
    with pytest.raises(InputError, match="end"):
        over(torch.tensor([[0.0]]), torch.tensor([[1.5]]))
    clamped = RangeEmbedding(4, 4, 0.0, 1.0, width=3, clamp=True)
    assert torch.equal(clamped(torch.tensor([[0.5]]), torch.tensor([[3.0]]))[0], clamped.emb.weight[[2, 2, 3, 3]])


def test_start_embedding_masks_empty_genres() -> None:
    cond = LabelConditioner(TINY)
    artist, genre = cond.artist_emb.emb.weight, cond.bow_genre_emb.emb.weight
    out = cond(_y([[10_000, 0, 128, 5, 2, 3, -1], [10_000, 0, 128, 0, -1, -1, -1]]))
    assert out.start.shape == (2, 1, 8)
    torch.testing.assert_close(out.start[0, 0], artist[5] + genre[2] + genre[3])
    torch.testing.assert_close(out.start[1, 0], artist[0])
    assert out.positions is not None and out.positions.shape == (2, 32, 8)
    with pytest.raises(InputError, match="0..10"):
        cond(_y([[10_000, 0, 128, 11, 0, -1, -1]]))
    with pytest.raises(InputError, match=r"\(N, >= 7\)"):
        cond(_y([[10_000, 0, 128, 1]]))
    with pytest.raises(InputError, match="range"):
        cond(_y([[1_000, 0, 128, 1, 0, -1, -1]]))  # 1 s is below min_duration 2 s


def test_extra_columns_are_ignored_and_upsamplers_have_no_time_signal() -> None:
    cond = LabelConditioner(TINY)
    y = _y([[10_000, 500, 128, 5, 2, -1, -1]])
    with_lyrics = torch.cat([y, torch.tensor([[7, 8, 9]])], dim=1)
    torch.testing.assert_close(cond(y).start, cond(with_lyrics).start)
    upsampler = LabelConditioner(replace(TINY, include_time_signal=False, min_duration=None, max_duration=None))
    assert set(upsampler.state_dict()) == {"artist_emb.emb.weight", "bow_genre_emb.emb.weight"}
    assert upsampler(y).positions is None


def test_init_scale_and_config_round_trips() -> None:
    cond = LabelConditioner(replace(TINY, y_bins=(7, 4000), width=64, init_scale=0.2))
    assert abs(cond.artist_emb.emb.weight.std().item() - 0.002) < 2e-4
    assert LabelConditionerConfig.from_dict(TINY.to_dict()) == TINY
    hps = TINY.to_jukebox_hps()
    assert LabelConditionerConfig.from_jukebox_hps(hps, include_time_signal=True, hop=4) == TINY
    with pytest.raises(ConfigError, match="min_duration"):
        replace(TINY, min_duration=None)


# --- numerical conformance with the Hugging Face port (test-only oracle) ---------------------------------

def _hf_modules():  # type: ignore[no-untyped-def]
    jukebox = pytest.importorskip("transformers.models.deprecated.jukebox.modeling_jukebox")
    return jukebox.JukeboxRangeEmbedding, jukebox.JukeboxLabelConditioner


def _hf_state_dict(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # y_emb.artist_emb.emb.weight ↔ metadata_embedding.artist_emb.weight (".emb." dropped for artist/genre only)
    renamed = {}
    for key, value in ours.items():
        if key.startswith(("artist_emb.", "bow_genre_emb.")):
            key = key.replace(".emb.", ".")
        renamed[key] = value
    return renamed


@pytest.mark.oracle
def test_range_embedding_equals_hf() -> None:
    hf_range_embedding, _ = _hf_modules()
    lo, hi = 17.84 * 44100, 600.0 * 44100
    ours = RangeEmbedding(64, 16, 0.0, hi, width=8)
    theirs = hf_range_embedding(64, 16, (0.0, hi), 8)
    theirs.load_state_dict(ours.state_dict())
    start = torch.tensor([[0.0], [123_457.0], [lo], [hi - 786_432]])
    end = start + 786_432
    torch.testing.assert_close(ours(start, end), theirs(start, end), rtol=0, atol=0)


@pytest.mark.oracle
@pytest.mark.parametrize("genres", [1, 5])
def test_label_conditioner_equals_hf(genres: int) -> None:
    _, hf_label_conditioner = _hf_modules()
    config = replace(TINY, max_bow_genre_size=genres, sr=44100, min_duration=17.84, max_duration=600.0)
    ours = LabelConditioner(config)
    hf_config = SimpleNamespace(
        hidden_size=config.width, timing_dims=config.t_bins, sampling_rate=config.sr, metadata_dims=config.y_bins,
        n_ctx=config.n_ctx, max_nb_genres=genres, min_duration=config.min_duration, max_duration=config.max_duration,
    )
    theirs = hf_label_conditioner(hf_config, include_time_signal=True)
    theirs.load_state_dict(_hf_state_dict(ours.state_dict()))
    generator = torch.Generator().manual_seed(1)
    n = 6
    total = torch.randint(786_744, 600 * 44100, (n, 1), generator=generator)
    offset = (torch.rand(n, 1, generator=generator) * total).long()
    length = torch.full((n, 1), 786_432)
    length[0] = 600 * 44100 - offset[0] - 1  # end just inside the absolute range
    artist = torch.randint(0, config.y_bins[1], (n, 1), generator=generator)
    genre = torch.randint(-1, config.y_bins[0], (n, genres), generator=generator)
    y = torch.cat([total, offset, length, artist, genre], dim=1)  # (n, 4 + G)
    start, positions = ours(y)
    hf_start, hf_positions = theirs(y)
    torch.testing.assert_close(start, hf_start, rtol=0, atol=1e-7)
    torch.testing.assert_close(positions, hf_positions, rtol=0, atol=1e-7)


@pytest.mark.oracle
def test_built_labels_through_both_conditioners(reference_dir: Path) -> None:
    """Labels from our builder, for every window of a 3-minute song, embed identically in ours and the port."""
    _, hf_label_conditioner = _hf_modules()
    ids = reference_dir / "jukebox-ids"
    tables = [load_id_table(ids / f"v3_{kind}_ids.txt", kind, "v3") for kind in ("artist", "genre")]  # type: ignore[arg-type]
    label_set = JUKEBOX_LABEL_SETS["1b_lyrics"]
    songs = [song_labels(Metadata(artist, genre, "la la", 180 * 44100), label_set, *tables)
             for artist, genre in [("Zac Brown Band", "Country"), ("unknown", "Pop Rock")]]
    config = replace(JUKEBOX_LABEL_CONDITIONERS["1b_lyrics"], width=4)
    ours = LabelConditioner(config)
    hf_config = SimpleNamespace(
        hidden_size=4, timing_dims=config.t_bins, sampling_rate=config.sr, metadata_dims=config.y_bins,
        n_ctx=config.n_ctx, max_nb_genres=1, min_duration=config.min_duration, max_duration=config.max_duration,
    )
    theirs = hf_label_conditioner(hf_config, include_time_signal=True)
    theirs.load_state_dict(_hf_state_dict(ours.state_dict()))
    total_tokens = 180 * 44100 // 128
    for start_token in [*range(0, total_tokens - config.n_ctx, 1024), total_tokens - config.n_ctx]:
        y = torch.stack([song.for_window(start_token).y for song in songs])  # (2, 389)
        start, positions = ours(y)
        hf_start, hf_positions = theirs(y[:, :5])
        torch.testing.assert_close(start, hf_start, rtol=0, atol=0)
        torch.testing.assert_close(positions, hf_positions, rtol=0, atol=0)
