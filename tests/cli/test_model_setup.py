"""The model commands' shared set-up (segue/commands/_model.py): inputs read into one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import InputError
from segue.commands._model import chunk_seconds, read_lyrics


def test_read_lyrics_reads_utf8(tmp_path: Path) -> None:
    path = tmp_path / "song.txt"
    path.write_text("Ça va, ça va\n", encoding="utf-8")
    assert read_lyrics(path) == "Ça va, ça va\n"


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: None, "no such file"),
        (lambda p: p.mkdir(), "is a folder, not a text file"),
        (lambda p: p.write_bytes(b"ok \xff\xfe"), "not UTF-8 text (byte 3); save the lyrics as UTF-8"),
    ],
)
def test_read_lyrics_names_the_file_and_the_problem(tmp_path: Path, make, problem: str) -> None:
    path = tmp_path / "lyrics.txt"
    make(path)
    with pytest.raises(InputError) as exc:
        read_lyrics(path)
    assert str(exc.value) == f"--lyrics-file {path}: {problem}"


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_chunk_seconds_refuses_what_is_not_a_duration(value: float) -> None:
    with pytest.raises(InputError, match=r"--chunk-seconds must be a number of seconds >= 0"):
        chunk_seconds(value)


def test_chunk_seconds_passes_automatic_whole_and_seconds() -> None:
    assert [chunk_seconds(v) for v in (None, 0.0, 2.5)] == [None, 0.0, 2.5]
