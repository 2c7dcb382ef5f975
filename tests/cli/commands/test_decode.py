import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from model.checkpoint.builders import load_vqvae
from model.codes import CodesMeta, load_codes, save_codes
from segue.cli import main


@pytest.fixture(scope="module")
def codes_file(model_dir: Path, song: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("codes") / "song.npz"
    assert main(["encode", "--model", str(model_dir), str(song), "-o", str(out)]) == 0
    return out


@pytest.mark.parametrize("level", [0, 1, 2])
def test_decode_each_level(model_dir: Path, codes_file: Path, tmp_path: Path, level: int) -> None:
    out = tmp_path / f"l{level}.wav"
    assert (
        main(["decode", "--model", str(model_dir), str(codes_file), "--level", str(level), "-o", str(out)])
        == 0
    )
    info = sf.info(out)
    codes = load_codes(codes_file).level(level)
    assert info.subtype == "FLOAT" and info.samplerate == 44100 and info.channels == 1
    assert info.frames == codes.shape[1] * (8, 32, 128)[level]
    expected = load_vqvae(model_dir).decode(torch.from_numpy(codes), level)[0, :, 0].numpy()
    np.testing.assert_array_equal(sf.read(out, dtype="float32")[0], expected)


def test_decode_pcm_bits(model_dir: Path, codes_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "o.flac"
    argv = [
        "decode",
        "--model",
        str(model_dir),
        str(codes_file),
        "--level",
        "0",
        "-o",
        str(out),
        "--bits",
        "24",
    ]
    assert main(argv) == 0
    assert sf.info(out).subtype == "PCM_24"


def test_decode_batch_writes_one_file_per_item(model_dir: Path, codes_file: Path, tmp_path: Path) -> None:
    loaded = load_codes(codes_file)
    save_codes(tmp_path / "two.npz", [np.concatenate([c, c]) for c in loaded.codes], loaded.meta)
    out = tmp_path / "b.wav"
    assert (
        main(["decode", "--model", str(model_dir), str(tmp_path / "two.npz"), "--level", "1", "-o", str(out)])
        == 0
    )
    a, b = sf.read(tmp_path / "b-0.wav")[0], sf.read(tmp_path / "b-1.wav")[0]
    np.testing.assert_array_equal(a, b)


def test_output_folder_is_checked_before_the_model_loads(
    codes_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # the model is missing too: the output was only checked after decoding
    out = tmp_path / "missing" / "x.wav"
    argv = ["decode", "--model", str(tmp_path / "nomodel"), str(codes_file), "--level", "0", "-o", str(out)]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"segue decode: error: -o {out}: folder {out.parent} does not exist\n"


def test_decode_errors(
    model_dir: Path, codes_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["decode", "--model", str(model_dir)]
    assert main([*base, str(codes_file), "--level", "3", "-o", str(tmp_path / "x.wav")]) == 2
    assert "--level 3 is outside 0..2" in capsys.readouterr().err
    assert main([*base, str(codes_file), "--level", "0", "-o", str(tmp_path / "x.flac"), "--bits", "32"]) == 2
    assert "FLAC cannot store 32-bit float" in capsys.readouterr().err
    assert main([*base, str(tmp_path / "none.npz"), "--level", "0", "-o", str(tmp_path / "x.wav")]) == 2
    assert "none.npz: no such file" in capsys.readouterr().err
    loaded = load_codes(codes_file)
    other = CodesMeta(**{**loaded.meta.__dict__, "model": "someone-else@0000000000"})
    save_codes(tmp_path / "other.npz", loaded.codes, other)
    assert main([*base, str(tmp_path / "other.npz"), "--level", "0", "-o", str(tmp_path / "x.wav")]) == 2
    assert "made by model someone-else@0000000000" in capsys.readouterr().err
    assert (
        main(
            [
                *base,
                str(tmp_path / "other.npz"),
                "--level",
                "0",
                "-o",
                str(tmp_path / "x.wav"),
                "--allow-other-model",
            ]
        )
        == 0
    )
    wider = CodesMeta(**{**loaded.meta.__dict__, "codebook_size": 64})
    save_codes(tmp_path / "wide.npz", [c + 32 for c in loaded.codes], wider)
    assert main([*base, str(tmp_path / "wide.npz"), "--level", "0", "-o", str(tmp_path / "y.wav")]) == 2
    assert "outside 0..31 (codebook size 32)" in capsys.readouterr().err
    meta = json.loads(json.dumps(loaded.meta.to_dict()))
    assert meta["model"] == loaded.meta.model
