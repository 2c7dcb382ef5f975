import json

import numpy as np
import pytest
import soundfile as sf

from model.assets import demo_clip_path, demo_model_dir
from model.checkpoint.model_dir import save_component
from model.vqvae import VQVAE
from segue.cli import main
from tests.helpers.factories import two_level_config


def _tiny_model(path) -> None:
    config = two_level_config()
    save_component(path, "vqvae", "vqvae", config.to_dict(), VQVAE(config).state_dict(), model_name="tiny")


def test_demo_on_own_audio_and_model(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    _tiny_model(tmp_path / "model")
    sr = 44100
    t = np.arange(sr) / sr
    sf.write(tmp_path / "in.wav", 0.3 * np.sin(2 * np.pi * 220 * t), sr)
    out = tmp_path / "out"
    assert main(["demo", "--model", str(tmp_path / "model"), "--input", str(tmp_path / "in.wav"),
                 "-o", str(out), "--device", "cpu"]) == 0
    report = json.loads((out / "report.json").read_text())
    assert [lv["level"] for lv in report["levels"]] == [0, 1]
    assert report["levels"][0]["tokens"] == sr // 32 * 32 // 4
    for name in ("original.wav", "level_0.wav", "level_1.wav", "codes.npz"):
        assert (out / name).is_file()
    decoded, rate = sf.read(out / "level_0.wav")
    assert rate == sr and decoded.shape[0] == sr // 32 * 32
    assert "SNR dB" in capsys.readouterr().out


def test_demo_refuses_bad_input(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    _tiny_model(tmp_path / "model")
    (tmp_path / "bad.wav").write_text("not audio")
    code = main(["demo", "--model", str(tmp_path / "model"), "--input", str(tmp_path / "bad.wav"),
                 "-o", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err
    assert "bad.wav" in err and "Traceback" not in err


def test_demo_names_a_file_in_the_way_of_its_folder(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    _tiny_model(tmp_path / "model")
    (tmp_path / "notes").write_text("mine")  # out.mkdir(parents=True) failed with an internal error
    out = tmp_path / "notes" / "demo"
    assert main(["demo", "--model", str(tmp_path / "model"), "-o", str(out)]) == 2
    assert capsys.readouterr().err == f"segue demo: error: -o {out}: {tmp_path / 'notes'} is not a folder\n"


def test_bundled_assets_exist() -> None:
    assert demo_clip_path().is_file()
    info = sf.info(demo_clip_path())
    assert info.samplerate == 44100 and info.duration > 10
    assert (demo_model_dir() / "manifest.json").is_file(), "the bundled demo model is missing"


def test_bundled_demo_reconstructs_the_held_out_clip(tmp_path) -> None:
    """The bundled model is trained: a random one scores about 0 dB SNR on the clip."""
    assert main(["demo", "-o", str(tmp_path), "--device", "cpu"]) == 0
    levels = json.loads((tmp_path / "report.json").read_text())["levels"]
    assert [lv["hop"] for lv in levels] == [8, 32, 128]
    assert levels[0]["snr_db"] > 10.0 and levels[0]["log_spectral_distance_db"] < 5.0
    assert all(lv["snr_db"] > 6.0 for lv in levels)
