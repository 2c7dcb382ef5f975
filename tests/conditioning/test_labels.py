from __future__ import annotations

from pathlib import Path

import pytest
import torch

from common.errors import InputError
from conditioning.ids import IdTable, load_id_table
from conditioning.labels import JUKEBOX_LABEL_SETS, LabelSet, Metadata, song_labels
from conditioning.lyrics import V2_VOCAB, detokenize

from .ozymandias import OZYMANDIAS


def _tables(reference_dir: Path, version: str) -> tuple[IdTable, IdTable]:
    ids = reference_dir / "jukebox-ids"
    return (
        load_id_table(ids / f"{version}_artist_ids.txt", "artist", version),  # type: ignore[arg-type]
        load_id_table(ids / f"{version}_genre_ids.txt", "genre", version),  # type: ignore[arg-type]
    )


def test_hf_golden_metadata_for_the_1b_lyrics_top_prior(reference_dir: Path) -> None:
    label_set = JUKEBOX_LABEL_SETS["1b_lyrics"]
    song = song_labels(Metadata("Zac Brown Band", "Country", OZYMANDIAS, 1058304, 0), label_set, *_tables(reference_dir, "v3"))
    y = song.for_window(0).y
    assert y.dtype == torch.int64 and y.shape == (389,)
    assert y[:10].tolist() == [1058304, 0, 786432, 7169, 507, 76, 27, 40, 30, 76]


def test_vector_lengths_of_each_released_prior(reference_dir: Path) -> None:
    lengths = {"upsampler_level_0": 9, "upsampler_level_1": 9, "5b": 9, "5b_lyrics": 521, "1b_lyrics": 389}
    for name, length in lengths.items():
        label_set = JUKEBOX_LABEL_SETS[name]
        tables = _tables(reference_dir, label_set.version)
        song = song_labels(Metadata("Alan Jackson", "Country Rock", "old town road", 4 * 60 * 44100), label_set, *tables)
        y = song.for_window(0).y
        assert y.shape == (length,) == (label_set.width,), name
        if label_set.version == "v2":
            assert y[3:9].tolist() == [145, 11, 8, -1, -1, -1]
        else:
            assert y[3:5].tolist() == [6785, 546]
        assert y[2] == label_set.sample_length


def test_window_rewrite_moves_offset_and_lyrics(reference_dir: Path) -> None:
    label_set = JUKEBOX_LABEL_SETS["5b_lyrics"]
    lyrics = "la " * 400  # 1200 characters
    song = song_labels(Metadata("Alan Jackson", "Country", lyrics, 180 * 44100, offset=1000), label_set,
                       *_tables(reference_dir, "v2"))
    window = song.for_window(start_token=27648, hop=128, n_ctx=8192)
    y = window.y
    assert y[:3].tolist() == [180 * 44100, 1000 + 27648 * 128, 8192 * 128]
    mid = int(1200 * (1000 + 27648 * 128 + 8192 * 128 / 2) / (180 * 44100))
    assert mid == 614
    assert window.lyric_indices[0] == mid - 256 and len(window.lyric_indices) == 512
    assert detokenize(y[9:].tolist(), V2_VOCAB) == lyrics[mid - 256 : mid + 256]
    # upsampler-sized windows keep the same layout with their own length
    assert song.for_window(0, hop=32, n_ctx=8192).y[2] == 262144


def test_total_length_is_checked_in_seconds(reference_dir: Path) -> None:
    tables = _tables(reference_dir, "v3")
    label_set = JUKEBOX_LABEL_SETS["1b_lyrics"]
    with pytest.raises(InputError) as err:
        song_labels(Metadata("unknown", "unknown", "", 441000), label_set, *tables)
    assert str(err.value) == (
        "total length 10.0 s is below this prior's minimum of 17.84 s; allowed range 17.84–600 s"
    )
    with pytest.raises(InputError, match="maximum of 600 s"):
        song_labels(Metadata("unknown", "unknown", "", 600 * 44100), label_set, *tables)
    with pytest.raises(InputError, match="offset"):
        song_labels(Metadata("unknown", "unknown", "", 60 * 44100, offset=60 * 44100), label_set, *tables)
    song = song_labels(Metadata("unknown", "unknown", "", 60 * 44100), label_set, *tables)
    with pytest.raises(InputError, match="outside the song"):
        song.for_window(start_token=60 * 44100 // 128 + 1)
    long_song = song_labels(Metadata("unknown", "unknown", "", 599 * 44100), label_set, *tables)
    with pytest.raises(InputError, match="past this prior's maximum"):
        long_song.for_window(start_token=590 * 44100 // 128)
    assert long_song.for_window(start_token=500 * 44100 // 128).y[1] == 500 * 44100 // 128 * 128


def test_unknown_names_strict_or_lenient(reference_dir: Path) -> None:
    tables = _tables(reference_dir, "v2")
    label_set = JUKEBOX_LABEL_SETS["5b"]
    meta = Metadata("Nobody Atall", "Country", "", 90 * 44100)
    with pytest.raises(InputError, match="not in the v2 artist list"):
        song_labels(meta, label_set, *tables)
    song = song_labels(meta, label_set, *tables, strict=False)
    assert song.artist_id == 0 and len(song.warnings) == 1
    with pytest.raises(InputError, match="at most 5"):
        song_labels(Metadata("unknown", "pop rock blues jazz soul country", "", 90 * 44100), label_set, *tables)
    with pytest.raises(InputError, match="needs the v3 artist list"):
        song_labels(meta, JUKEBOX_LABEL_SETS["1b_lyrics"], *tables)


def test_label_set_without_time_signal_accepts_any_positive_length() -> None:
    label_set = LabelSet("v2", 5, 0, n_ctx=16, hop=8)
    label_set.check_total_length(1)
    with pytest.raises(InputError, match="positive"):
        label_set.check_total_length(0)
