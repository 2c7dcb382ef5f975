"""``encode_index``: a data index's pieces encoded by a model's VQ-VAE into prior training items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from common.errors import ConfigError
from conditioning.ids import load_id_table
from model.audio import read_audio
from model.checkpoint.builders import load_vqvae
from model.conditioners import ConditionerConfig
from model.data.index import index_folder
from model.prior import presets
from model.sampling.setup import label_set_for
from model.train.prior_dataset import encode_index, read_index
from model.vqvae import VQVAE
from tests.helpers.factories import SR, tiny_model_dir
from tests.helpers.midi_files import midi_bytes

RATE = 22050


def _tone(path: Path, seconds: float, freq: float) -> None:
    t = np.arange(int(seconds * RATE)) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), RATE)


def make_songs(root: Path) -> Path:
    """Three short tones: one with a MIDI sidecar and word-timed lyrics, labels in metadata.csv."""
    root.mkdir(parents=True)
    for name, seconds, freq in (("a.wav", 1.3, 220.0), ("b.wav", 1.1, 330.0), ("c.wav", 1.2, 440.0)):
        _tone(root / name, seconds, freq)
    (root / "a.mid").write_bytes(midi_bytes([(0.0, 0.5, 60)]))
    (root / "a.lrc").write_text("[00:00.10]<00:00.10>hello <00:00.60>world\n")
    (root / "metadata.csv").write_text("file,artist,genre\na.wav,Zed,rock\nb.wav,ada,jazz\nc.wav,,\n")
    return root


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def songs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_songs(tmp_path_factory.mktemp("data") / "songs")


def test_items_hold_the_vqvae_codes_labels_midi_and_word_times(model_dir: Path, songs: Path, tmp_path: Path) -> None:
    report = index_folder(songs)
    prior = presets.tiny_prior()
    midi = ConditionerConfig("midi", "midi", 3 * 128 + 12 + 8, 32, 2)
    items = encode_index(report, songs, model_dir, [2], cache_dir=tmp_path / "cache", prior=prior, conditioners=[midi])
    assert len(items) == 3
    vq = load_vqvae(model_dir)
    for piece, item in zip(report.pieces, items, strict=True):
        audio = read_audio(songs / piece.audio, sample_rate=SR, channels=1).samples
        direct = vq.encode(torch.from_numpy(audio)[None], levels=[2])[0][0].numpy()
        np.testing.assert_array_equal(item.codes[2], direct)
        assert set(item.codes) == {2} and item.codes[2].dtype == np.int64 and item.total_length == len(audio)
    assert label_set_for(prior).version == "v2"  # the tiny priors' labels: v2 names (lower-case, '_' for spaces)
    artists = load_id_table(model_dir / "ids" / "v2_artist_ids.txt", "artist", "v2")
    genres = load_id_table(model_dir / "ids" / "v2_genre_ids.txt", "genre", "v2")
    assert dict(artists.names) == {"unknown": 0, "ada": 1, "zed": 2}
    assert dict(genres.names) == {"unknown": 0, "jazz": 1, "rock": 2}
    assert [(i.artist_id, i.genre_ids) for i in items] == [(2, (2,)), (1, (1,)), (0, (0,))]
    assert items[0].conditions.midi is not None and items[1].conditions.midi is None
    assert [w[0] for w in items[0].words] == ["hello", "world"] and items[0].lyrics == "hello world"


def test_codes_are_cached_and_a_rerun_does_not_encode(
    model_dir: Path, songs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = tmp_path / "index.json"
    index.write_text(json.dumps(index_folder(songs).to_dict()))
    calls = []
    real = VQVAE.encode

    def counting(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(VQVAE, "encode", counting)
    first = encode_index(index, None, model_dir, [1, 2], cache_dir=tmp_path / "cache")
    assert len(calls) == 3 and len(list((tmp_path / "cache").glob("*.npz"))) == 3
    again = encode_index(index, songs, model_dir, [1, 2], cache_dir=tmp_path / "cache")
    assert len(calls) == 3
    for a, b in zip(first, again, strict=True):
        assert a.codes.keys() == b.codes.keys() == {1, 2}
        for lv in (1, 2):
            np.testing.assert_array_equal(a.codes[lv], b.codes[lv])
    assert [i.artist_id for i in first] == [0, 0, 0]  # no prior given: no ids


def test_a_piece_gone_since_indexing_is_reported_and_skipped(model_dir: Path, tmp_path: Path) -> None:
    songs = make_songs(tmp_path / "songs")
    report = index_folder(songs)
    (songs / "b.wav").unlink()
    (songs / "a.mid").write_bytes(b"MThd broken")
    seen: list[tuple[str, str]] = []
    midi = ConditionerConfig("midi", "midi", 3 * 128 + 12 + 8, 32, 2)
    items = encode_index(report, songs, model_dir, [2], cache_dir=tmp_path / "cache", prior=presets.tiny_prior(),
                         conditioners=[midi], on_skip=lambda a, p: seen.append((a, p)))  # fmt: skip
    assert len(items) == 2 and items[0].conditions.midi is None
    assert [a for a, _ in seen] == ["a.wav", "b.wav"] and "MIDI a.mid left out" in seen[0][1]
    assert "left out" in seen[1][1]


def test_more_names_than_the_prior_has_ids_for_is_a_config_error(model_dir: Path, tmp_path: Path) -> None:
    songs = tmp_path / "many"
    songs.mkdir()
    rows = ["file,artist,genre"]
    for i in range(12):
        _tone(songs / f"{i}.wav", 1.05, 200.0 + i)
        rows.append(f"{i}.wav,artist{i},jazz")
    (songs / "metadata.csv").write_text("\n".join(rows) + "\n")
    with pytest.raises(ConfigError, match="12 artist names besides unknown; this prior's labels have room for 10"):
        encode_index(index_folder(songs), songs, model_dir, [2], cache_dir=tmp_path / "c", prior=presets.tiny_prior())


def test_read_index_refuses_other_json(tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text('{"format": "other"}')
    with pytest.raises(Exception, match="not a segue-data-index file"):
        read_index(tmp_path / "x.json")


def test_a_piece_the_trainer_would_refuse_is_reported_and_skipped(model_dir: Path, songs: Path, tmp_path: Path) -> None:
    prior = presets.with_changes(presets.tiny_prior(), labels={"max_duration": 1.15})  # b.wav (1.1 s) alone fits
    seen: list[tuple[str, str]] = []
    items = encode_index(index_folder(songs), songs, model_dir, [2], cache_dir=tmp_path / "cache", prior=prior,
                         on_skip=lambda a, p: seen.append((a, p)))  # fmt: skip
    assert len(items) == 1 and items[0].artist_id == 1
    assert [a for a, _ in seen] == ["a.wav", "c.wav"] and all("left out" in p and "length" in p for _, p in seen)
