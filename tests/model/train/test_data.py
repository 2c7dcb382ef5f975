import numpy as np
import pytest
import soundfile as sf

from common.errors import InputError
from model.train.data import AudioChunks, bandwidth, find_audio_files, load_clips


def test_chunks_come_from_the_clips() -> None:
    clip = np.arange(1000, dtype=np.float32)
    chunks = AudioChunks([clip, np.zeros(10, np.float32)], sample_length=100, seed=1)
    batch = chunks.batch(8)
    assert batch.shape == (8, 100, 1)
    for row in batch[..., 0].numpy():  # consecutive samples of the long clip only
        assert np.all(np.diff(row) == 1.0)


def test_clips_too_short_are_refused() -> None:
    with pytest.raises(InputError, match="at least 100 samples"):
        AudioChunks([np.zeros(10, np.float32)], sample_length=100)


def test_find_and_load(tmp_path) -> None:
    sf.write(tmp_path / "a.wav", np.zeros((4410, 2), np.float32), 22050)
    (tmp_path / "notes.txt").write_text("x")
    files = find_audio_files(tmp_path)
    assert [f.name for f in files] == ["a.wav"]
    (clip,) = load_clips(files, 44100)
    assert clip.shape == (8820,)
    with pytest.raises(InputError, match="neither a file nor a folder"):
        find_audio_files(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no audio files"):
        find_audio_files(tmp_path / "empty")


def test_bandwidth_of_a_sine() -> None:
    t = np.arange(44100 * 2) / 44100
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    bw = bandwidth([x])
    assert bw.l2 == pytest.approx(0.125, rel=1e-3)
    assert bw.l1 == pytest.approx(0.5 * 2 / np.pi, rel=1e-3)
    assert bw.spec > 0
