from pathlib import Path

import pytest

from model.checkpoint.builders import load_vqvae
from segue.cli import main

from .conftest import TINY


def test_convert_openai(
    openai_checkpoint: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    vqvae, hps = openai_checkpoint
    out_dir = tmp_path / "converted"
    assert (
        main(["convert", "--format", "openai", "--vqvae", str(vqvae), "--hps", str(hps), "-o", str(out_dir)])
        == 0
    )
    assert load_vqvae(out_dir).config == TINY
    out = capsys.readouterr().out
    assert "vqvae: vqvae, vqvae.safetensors" in out and f"wrote {out_dir} (converted@" in out


def test_convert_refuses_existing_dir(
    model_dir: Path, openai_checkpoint: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    vqvae, hps = openai_checkpoint
    argv = ["convert", "--format", "openai", "--vqvae", str(vqvae), "--hps", str(hps), "-o", str(model_dir)]
    capsys.readouterr()
    assert main(argv) == 2
    assert "is not empty" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "openai", "-o", "x"], "needs --vqvae"),
        (["--format", "openai", "somedir", "--vqvae", "v", "-o", "x"], "not somedir"),
        (["--format", "hf", "-o", "x"], "needs the Hugging Face folder"),
        (["--format", "hf", "d", "--vqvae", "v", "-o", "x"], "belong to --format openai"),
        (["--format", "hf", "missing_dir", "-o", "x"], "missing_dir: not a directory"),
        (["--format", "openai", "--vqvae", "missing.pth.tar", "-o", "x"], "missing.pth.tar: no such file"),
    ],
)
def test_convert_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["convert", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("segue convert: error:") and message in err
    assert "Traceback" not in err


def test_help_explains_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    out = capsys.readouterr().out
    for option in ("--format", "--vqvae", "--hps", "--trust-pickle", "--force", "--name"):
        assert option in out


def test_help_examples_keep_their_line_breaks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["convert", "--help"])
    out = capsys.readouterr().out
    description = out.split("positional arguments:")[0]
    for line in description.splitlines():
        assert "   " not in line.strip(), f"a run of spaces inside {line!r}"  # a '\\' eaten by Python
    assert "--preset 1b_lyrics \\\n      --prior-level-0" in description


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the file is empty (0 bytes)"),
        (b"<html><body>404 Not Found</body></html>", "a text file, not a PyTorch checkpoint (it starts with '<html>"),
        (b"PK\x03\x04" + bytes(200), "the checkpoint is cut short (204 bytes"),
        (bytes(range(256)), "not a PyTorch checkpoint: neither the zip format nor the older pickle format"),
    ],
)
def test_convert_names_what_a_bad_file_is(
    content: bytes, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "vqvae.pth.tar"
    bad.write_bytes(content)
    assert main(["convert", "--format", "openai", "--vqvae", str(bad), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"segue convert: error: {bad}: {message}")
    assert "(101)" not in err and "miniz" not in err and "Traceback" not in err
