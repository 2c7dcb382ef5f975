"""``segue data synth``: the procedural composer's pieces rendered to disk from the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from segue.cli import main
from tests.helpers.tiny_pieces import require_render_tools

ONE = ["--hours", str(8.0 / 3600), "--piece-seconds", "8", "8"]  # one 8 s piece (the composer's shortest)


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_render_tools()


def synth(out: Path, *extra: str) -> int:
    return main(["data", "synth", str(out), *extra])


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("segue data: error: "), err
    return err


def test_synth_writes_a_piece_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "set"
    assert synth(out, *ONE, "--seed", "4", "--jobs", "1") == 0
    said = capsys.readouterr().out
    assert "1 pieces" in said and "1 rendered, 0 already there" in said
    index = json.loads((out / "index.json").read_text())
    assert index["complete"] and index["settings"]["seed"] == 4 and index["settings"]["composer"] == "model.data.compose"
    piece = out / index["pieces"][0]["path"]
    meta = json.loads((piece / "meta.json").read_text())
    assert meta["seed"] == 4 * 100003 and meta["seconds"] == pytest.approx(8.0, abs=0.5)
    assert meta["style"] == meta["artist"]  # the composer's artists are its styles
    assert (piece / "mix.wav").is_file() and (piece / "piece.mid").is_file()
    assert sorted(p.stem for p in (piece / "stems").iterdir()) == sorted(meta["files"]["stems"])
    assert synth(out, *ONE, "--seed", "4", "--jobs", "1") == 0
    assert "0 rendered, 1 already there" in capsys.readouterr().out


def test_same_seed_same_files_with_the_default_two_jobs(tmp_path: Path) -> None:
    two = ["--hours", str(16.0 / 3600), "--piece-seconds", "8", "8", "--seed", "9"]  # two pieces: a pool of 2
    assert synth(tmp_path / "a", *two) == 0
    assert synth(tmp_path / "b", *two) == 0
    a = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a" / "pieces").rglob("*") if p.is_file()}
    b = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b" / "pieces").rglob("*") if p.is_file()}
    assert len({k.parts[1] for k in a}) == 2
    assert a == b


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--hours", "nan"], "--hours nan: give a finite number of hours"),
        (["--hours", "inf"], "--hours inf"),
        (["--hours", "0"], "--hours 0"),
        (["--hours", "1001"], "0 < H <= 1000"),
        ([*ONE, "--jobs", "0"], "--jobs 0"),
        ([*ONE, "--sample-rate", "100"], "--sample-rate 100"),
        (["--hours", "0.01", "--piece-seconds", "2", "3"], "the composer writes pieces of 8 to 600 s"),
        ([*ONE, "--soundfont", "/nonexistent/x.sf2"], "soundfont /nonexistent/x.sf2 does not exist"),
    ],
)
def test_bad_arguments_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                           message: str) -> None:  # fmt: skip
    assert synth(tmp_path / "set", *args) == 2
    assert message in one_line_error(capsys)
    assert not (tmp_path / "set").exists()  # nothing is written before the arguments are checked


def test_an_existing_set_with_other_arguments_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "set"
    assert synth(out, *ONE, "--jobs", "1") == 0
    capsys.readouterr()
    assert synth(out, *ONE, "--jobs", "1", "--seed", "5") == 2
    assert "--seed 0 (now 5)" in one_line_error(capsys)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "song.wav").write_bytes(b"")
    assert synth(tmp_path / "mine", *ONE) == 2
    assert "not a segue data synth folder" in one_line_error(capsys)


def test_missing_tools_say_what_to_install(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "espeak-ng" else real(name, *a, **k))
    assert synth(tmp_path / "set", *ONE) == 2
    assert "apt-get install espeak-ng" in one_line_error(capsys)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    assert synth(tmp_path / "set", *ONE) == 2
    assert "apt-get install fluidsynth fluid-soundfont-gm" in one_line_error(capsys)
    assert not (tmp_path / "set").exists()


def test_index_reads_a_synth_set_with_its_word_times(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "set"
    assert synth(out, *ONE, "--seed", "1", "--jobs", "1") == 0
    capsys.readouterr()
    assert main(["data", "index", str(out)]) == 0
    said = capsys.readouterr().out
    assert said.startswith("1 pieces, 0.00 hours; 0 files skipped")
    index = json.loads((out / "segue-index.json").read_text())
    (piece,) = index["pieces"]
    meta = json.loads((out / piece["audio"]).with_name("meta.json").read_text())
    assert piece["artist"] == meta["artist"] and piece["genre"] == meta["genre"] and piece["midi"].endswith("piece.mid")
    assert sorted(piece["stems"]) == sorted(meta["files"]["stems"])  # stems are the piece's, not pieces of their own
    assert piece["word_timed"] == bool(meta["words"]) and len(piece["words"] or []) == len(meta["words"])


def test_index_of_a_folder_that_is_not_there(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "index", str(tmp_path / "nowhere")]) == 2
    assert "not a folder" in one_line_error(capsys)
