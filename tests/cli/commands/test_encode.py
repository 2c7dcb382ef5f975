from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from model.audio import read_audio
from model.checkpoint.builders import load_vqvae, model_identity
from model.codes import load_codes
from segue.cli import main


def test_encode_writes_all_levels(model_dir: Path, song: Path, tmp_path: Path) -> None:
    out = tmp_path / "song.npz"
    assert main(["encode", "--model", str(model_dir), str(song), "-o", str(out)]) == 0
    codes = load_codes(out)
    samples = round(12000 * 44100 / 48000)
    assert codes.meta.source_samples == samples and codes.meta.source_name == "song.flac"
    assert codes.meta.model == model_identity(model_dir)
    assert [c.shape for c in codes.codes] == [(1, samples // hop) for hop in (8, 32, 128)]
    # same as encoding in Python with the same audio rules
    audio = read_audio(song, sample_rate=44100, channels=1)
    expected = load_vqvae(model_dir).encode(torch.from_numpy(audio.samples)[None])
    for ours, theirs in zip(codes.codes, expected):
        np.testing.assert_array_equal(ours, theirs.numpy())


def test_encode_chunked_equals_whole(model_dir: Path, song: Path, tmp_path: Path) -> None:
    main(
        [
            "encode",
            "--model",
            str(model_dir),
            str(song),
            "-o",
            str(tmp_path / "a.npz"),
            "--chunk-seconds",
            "0",
        ]
    )
    main(
        [
            "encode",
            "--model",
            str(model_dir),
            str(song),
            "-o",
            str(tmp_path / "b.npz"),
            "--chunk-seconds",
            "0.05",
        ]
    )
    for a, b in zip(load_codes(tmp_path / "a.npz").codes, load_codes(tmp_path / "b.npz").codes):
        np.testing.assert_array_equal(a, b)


def test_encode_errors(model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes.wav").write_text("not audio at all" * 10)
    assert (
        main(
            ["encode", "--model", str(model_dir), str(tmp_path / "notes.wav"), "-o", str(tmp_path / "x.npz")]
        )
        == 2
    )
    assert "notes.wav: not a readable audio file" in capsys.readouterr().err
    sf.write(tmp_path / "tiny.wav", np.zeros(100, np.float32), 44100)
    assert (
        main(["encode", "--model", str(model_dir), str(tmp_path / "tiny.wav"), "-o", str(tmp_path / "x.npz")])
        == 2
    )
    assert "too short" in capsys.readouterr().err
    assert (
        main(["encode", "--model", str(tmp_path / "nomodel"), str(tmp_path / "tiny.wav"), "-o", "x.npz"]) == 2
    )
    assert "model directory not found" in capsys.readouterr().err
    assert not (tmp_path / "x.npz").exists()


def test_output_folder_is_checked_before_the_model_loads(tmp_path: Path, song: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "missing" / "c.npz"  # the model is missing too: the output was only checked after encoding
    assert main(["encode", "--model", str(tmp_path / "nomodel"), str(song), "-o", str(out)]) == 2
    assert capsys.readouterr().err == f"segue encode: error: -o {out}: folder {out.parent} does not exist\n"


@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_chunk_seconds_must_be_a_finite_number(model_dir: Path, song: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str], value: str) -> None:
    args = ["encode", "--model", str(model_dir), str(song), "-o", str(tmp_path / "c.npz"), "--chunk-seconds", value]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"--chunk-seconds must be a number of seconds >= 0, got {float(value)}" in err and err.count("\n") == 1


def test_output_must_be_an_npz(model_dir: Path, song: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # '-o song.wav' wrote a zip archive under an audio name, which a DAW's browser then lists as broken audio
    assert main(["encode", "--model", str(model_dir), str(song), "-o", str(tmp_path / "song.wav")]) == 2
    assert "codes files are .npz archives; name it e.g." in capsys.readouterr().err
    assert not (tmp_path / "song.wav").exists()
