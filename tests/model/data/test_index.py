"""``segue data index``: a folder of audio with sidecars, checked file by file; bad files reported, never fatal."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from common.errors import InputError
from model.data.index import index_folder
from tests.helpers.midi_files import midi_bytes

SR = 22050


def _tone(path: Path, seconds: float = 2.0, channels: int = 1) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    x = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sf.write(path, np.repeat(x[:, None], channels, axis=1), SR)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "songs"
    (root / "album").mkdir(parents=True)
    _tone(root / "album" / "one.wav", 3.0, channels=2)
    (root / "album" / "one.mid").write_bytes(midi_bytes([(0.0, 0.5, 60)]))
    (root / "album" / "one.lrc").write_text("[00:00.50]<00:00.50>hello <00:01.20>world\n[00:02.00]again\n")
    (root / "album" / "one.stems").mkdir()
    _tone(root / "album" / "one.stems" / "drums.wav", 3.0)
    _tone(root / "album" / "one.stems" / "Bad Label.wav", 3.0)
    _tone(root / "album" / "one.stems" / "bass.wav", 1.2)  # far shorter than the piece
    _tone(root / "two.flac", 2.0)
    (root / "two.txt").write_text("plain words\n")
    (root / "two.mid").write_bytes(b"MThd\x00\x00\x00\x06garbage")
    (root / "broken.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    nan = np.zeros((SR * 2, 1), np.float32)
    nan[SR] = np.nan
    sf.write(root / "nan.wav", nan, SR, subtype="FLOAT")
    _tone(root / "short.wav", 0.2)
    (root / "metadata.csv").write_text("file,artist,genre\nalbum/one.wav,ada,jazz\ntwo.flac,bo,pop\nmissing.wav,x,y\n")
    return root


def test_a_folder_is_indexed_and_every_problem_named(folder: Path) -> None:
    report = index_folder(folder)
    pieces = {p.audio: p for p in report.pieces}
    assert sorted(pieces) == ["album/one.wav", "two.flac"] and report.seconds == pytest.approx(5.0)
    one = pieces["album/one.wav"]
    assert (one.artist, one.genre, one.channels, one.sample_rate) == ("ada", "jazz", 2, SR)
    assert one.midi == "album/one.mid" and one.stems == {"drums": "album/one.stems/drums.wav"}
    assert one.word_timed and one.words is not None and [w for w, _, _ in one.words] == ["hello", "world", "again"]
    assert one.words[0][1:] == (0.5, 1.2) and one.words[-1][2] == pytest.approx(3.0)  # the last word ends with the piece
    assert any("Bad Label.wav left out" in n for n in one.notes) and any("bass.wav left out: is 1.20 s long" in n for n in one.notes)
    two = pieces["two.flac"]
    assert two.lyrics == "plain words" and two.words is None and two.midi is None
    assert any(n.startswith("two.mid left out") for n in two.notes)
    skipped = dict(report.skipped)
    assert "not audio soundfile can read" in skipped["broken.wav"]
    assert skipped["nan.wav"] == "NaN or infinite samples from 1.00 s"
    assert "0.20 s long" in skipped["short.wav"]
    assert skipped["metadata.csv: missing.wav"] == "no such audio file in the folder"
    data = report.to_dict()
    assert data["format"] == "segue-data-index" and data["pieces"][0]["words"][0] == ["hello", 0.5, 1.2]


def test_a_metadata_file_without_a_file_column_is_reported_not_fatal(folder: Path) -> None:
    (folder / "metadata.csv").write_text("name,artist\none,ada\n")
    report = index_folder(folder)
    assert {p.artist for p in report.pieces} == {"unknown"}
    assert "has no 'file' column" in dict(report.skipped)["metadata.csv"]


def test_not_a_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a folder"):
        index_folder(tmp_path / "nowhere")
