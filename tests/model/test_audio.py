import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from common.errors import AudioError, InputError
from model.atomic import TEMP_PREFIX
from model.audio import Audio, read_audio, write_audio


def _tone(frames: int = 4410, channels: int = 2, rate: int = 44100, freq: float = 440.0) -> np.ndarray:
    t = np.arange(frames) / rate
    mono = 0.5 * np.sin(2 * np.pi * freq * t)
    return np.stack([mono * (c + 1) / channels for c in range(channels)], axis=1).astype(np.float32)


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype", "atol"),
    [
        (".wav", "WAV", "FLOAT", 0.0),
        (".wav", "WAV", "PCM_16", 1 / 32768),
        (".flac", "FLAC", "PCM_24", 1 / 2**23),
        (".aiff", "AIFF", "PCM_16", 1 / 32768),
    ],
)
def test_reads_lossless_formats_exactly(
    tmp_path: Path, suffix: str, fmt: str, subtype: str, atol: float
) -> None:
    x = _tone()
    sf.write(tmp_path / f"a{suffix}", x, 44100, format=fmt, subtype=subtype)
    audio = read_audio(tmp_path / f"a{suffix}")
    assert audio.samples.dtype == np.float32
    assert audio.samples.shape == (4410, 2)
    assert audio.sample_rate == 44100
    assert audio.source.endswith(f"a{suffix}")
    np.testing.assert_allclose(audio.samples, x, atol=atol)


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype"), [(".ogg", "OGG", "VORBIS"), (".mp3", "MP3", "MPEG_LAYER_III")]
)
def test_reads_lossy_formats(tmp_path: Path, suffix: str, fmt: str, subtype: str) -> None:
    x = _tone(frames=22050, channels=1)
    sf.write(tmp_path / f"a{suffix}", x, 44100, format=fmt, subtype=subtype)
    audio = read_audio(tmp_path / f"a{suffix}")
    assert audio.channels == 1 and audio.sample_rate == 44100
    assert abs(audio.frames - 22050) < 2048  # codec priming/padding may differ slightly
    assert 0.3 < float(np.abs(audio.samples).max()) < 0.7


def test_audio_helpers() -> None:
    x = np.array([[1.0, 0.0], [0.5, -0.5]], dtype=np.float32)
    audio = Audio(x, 1000)
    assert audio.frames == 2 and audio.channels == 2
    assert audio.duration == pytest.approx(0.002)
    np.testing.assert_array_equal(audio.to_mono().samples, [[0.5], [0.0]])
    np.testing.assert_array_equal(audio.to_mono().with_channels(3).samples, [[0.5] * 3, [0.0] * 3])


def test_channel_conversion_on_read(tmp_path: Path) -> None:
    x = _tone(channels=2)
    sf.write(tmp_path / "s.wav", x, 44100, subtype="FLOAT")
    mono = read_audio(tmp_path / "s.wav", channels=1)
    np.testing.assert_allclose(mono.samples[:, 0], x.mean(axis=1), atol=1e-7)
    sf.write(tmp_path / "m.wav", x[:, :1], 44100, subtype="FLOAT")
    stereo = read_audio(tmp_path / "m.wav", channels=2)
    np.testing.assert_array_equal(stereo.samples[:, 0], stereo.samples[:, 1])
    sf.write(tmp_path / "q.wav", _tone(channels=4), 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"q\.wav.*4 channels to 2"):
        read_audio(tmp_path / "q.wav", channels=2)
    with pytest.raises(InputError, match="channels"):
        read_audio(tmp_path / "q.wav", channels=0)


def test_resampling_keeps_length_and_pitch(tmp_path: Path) -> None:
    x = _tone(frames=48000, channels=1, rate=48000, freq=1000.0)
    sf.write(tmp_path / "r.wav", x, 48000, subtype="FLOAT")
    audio = read_audio(tmp_path / "r.wav", sample_rate=44100)
    assert audio.sample_rate == 44100
    assert audio.samples.shape == (44100, 1) and audio.samples.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(audio.samples[:, 0]))
    assert int(np.argmax(spectrum)) == 1000  # 1 s of audio: bin index == frequency in Hz
    same = read_audio(tmp_path / "r.wav", sample_rate=48000)
    np.testing.assert_array_equal(same.samples, x)


# ---- bad input: one clear AudioError naming the file ----------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"nope\.wav: no such file"):
        read_audio(tmp_path / "nope.wav")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="is a directory"):
        read_audio(tmp_path)


@pytest.mark.timeout(10)
def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    with pytest.raises(AudioError, match=r"pipe\.wav: is not a regular file"):
        read_audio(fifo)


def test_text_file_named_wav(tmp_path: Path) -> None:
    (tmp_path / "notes.wav").write_text("these are my lyrics, not audio\n" * 20)
    with pytest.raises(AudioError, match=r"notes\.wav: not a readable audio file"):
        read_audio(tmp_path / "notes.wav")


def test_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav: file is empty"):
        read_audio(tmp_path / "empty.wav")


@pytest.mark.parametrize(
    ("suffix", "fmt", "subtype"), [(".wav", "WAV", "PCM_16"), (".aiff", "AIFF", "PCM_24")]
)
def test_truncated_uncompressed(tmp_path: Path, suffix: str, fmt: str, subtype: str) -> None:
    sf.write(tmp_path / f"full{suffix}", _tone(), 44100, format=fmt, subtype=subtype)
    data = (tmp_path / f"full{suffix}").read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(AudioError, match=rf"cut\{suffix}: file is truncated"):
        read_audio(tmp_path / f"cut{suffix}")


def test_truncated_flac(tmp_path: Path) -> None:
    sf.write(tmp_path / "full.flac", _tone(frames=44100), 44100, subtype="PCM_16")
    data = (tmp_path / "full.flac").read_bytes()
    (tmp_path / "cut.flac").write_bytes(data[: len(data) // 2])
    with pytest.raises(
        AudioError, match=r"cut\.flac: (file is truncated|not a readable audio file or corrupt)"
    ):
        read_audio(tmp_path / "cut.flac")


def test_header_only_wav(tmp_path: Path) -> None:
    sf.write(tmp_path / "full.wav", _tone(), 44100, subtype="PCM_16")
    (tmp_path / "cut.wav").write_bytes((tmp_path / "full.wav").read_bytes()[:30])
    with pytest.raises(AudioError, match=r"cut\.wav: not a readable audio file or corrupt"):
        read_audio(tmp_path / "cut.wav")


def test_zero_length_audio(tmp_path: Path) -> None:
    sf.write(tmp_path / "zero.wav", np.zeros((0, 1), np.float32), 44100, subtype="PCM_16")
    with pytest.raises(AudioError, match=r"zero\.wav: contains no audio \(0 frames\)"):
        read_audio(tmp_path / "zero.wav")


def test_nan_and_inf_samples(tmp_path: Path) -> None:
    x = _tone(frames=1000, channels=1)
    x[441, 0] = np.nan
    x[900, 0] = np.inf
    sf.write(tmp_path / "nan.wav", x, 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: contains 2 NaN or infinite.*frame 441"):
        read_audio(tmp_path / "nan.wav")


@pytest.mark.parametrize("peak", [64.5, 1e30])
def test_float_samples_far_beyond_full_scale_are_refused(tmp_path: Path, peak: float) -> None:
    x = _tone(frames=1000, channels=1)
    x[500, 0] = -peak
    sf.write(tmp_path / "loud.wav", x, 44100, subtype="FLOAT")
    with pytest.raises(
        AudioError,
        match=rf"loud\.wav: peak sample magnitude {re.escape(f'{peak:g}')} is over the limit of 64 ",
    ):
        read_audio(tmp_path / "loud.wav")


def test_float_samples_beyond_full_scale_are_clipped_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    x = _tone(frames=1000, channels=2)
    x[10, 0], x[20, 1], x[30, 0] = 1.5, -64.0, 1.0
    sf.write(tmp_path / "hot.wav", x, 44100, subtype="FLOAT")
    with caplog.at_level(logging.WARNING, logger="model.audio"):
        audio = read_audio(tmp_path / "hot.wav", channels=1, sample_rate=22050)
    assert audio.clipped_samples == 2  # exactly 1.0 is full scale, not clipped
    assert "hot.wav: 2 samples beyond full scale clipped to [-1, 1]" in caplog.text
    raw = read_audio(tmp_path / "hot.wav").samples
    assert raw[10, 0] == 1.0 and raw[20, 1] == -1.0
    caplog.clear()
    sf.write(tmp_path / "ok.wav", _tone(frames=1000, channels=1), 44100, subtype="FLOAT")
    assert read_audio(tmp_path / "ok.wav").clipped_samples == 0 and not caplog.records


def test_more_than_16_channels_are_refused(tmp_path: Path) -> None:
    sf.write(tmp_path / "many.wav", np.zeros((100, 65), np.float32), 44100, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"many\.wav: 65 channels; at most 16 are read"):
        read_audio(tmp_path / "many.wav", channels=1)
    sf.write(tmp_path / "sixteen.wav", np.full((100, 16), 0.25, np.float32), 44100, subtype="FLOAT")
    assert read_audio(tmp_path / "sixteen.wav").channels == 16


def test_mixing_down_more_than_stereo_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sf.write(tmp_path / "surround.wav", np.full((100, 6), 0.25, np.float32), 44100, subtype="FLOAT")
    sf.write(tmp_path / "stereo.wav", np.full((100, 2), 0.25, np.float32), 44100, subtype="FLOAT")
    with caplog.at_level(logging.WARNING, logger="model.audio"):
        np.testing.assert_allclose(read_audio(tmp_path / "surround.wav", channels=1).samples, 0.25)
        assert "surround.wav: 6 channels mixed down to 1" in caplog.text
        caplog.clear()
        read_audio(tmp_path / "stereo.wav", channels=1)  # routine, not news
        read_audio(tmp_path / "surround.wav")  # not mixed
    assert not caplog.records


@pytest.mark.parametrize("rate", [400, 800_000])
def test_absurd_sample_rate_in_file(tmp_path: Path, rate: int) -> None:
    sf.write(tmp_path / "odd.wav", _tone(frames=100, channels=1), rate, subtype="PCM_16")
    with pytest.raises(AudioError, match=rf"odd\.wav: sample rate {rate} Hz is outside"):
        read_audio(tmp_path / "odd.wav")


def test_absurd_requested_rate(tmp_path: Path) -> None:
    sf.write(tmp_path / "ok.wav", _tone(frames=100, channels=1), 44100, subtype="PCM_16")
    with pytest.raises(InputError, match="sample rate 10 Hz"):
        read_audio(tmp_path / "ok.wav", sample_rate=10)


# ---- writing ------------------------------------------------------------------------------------------


def test_write_float_wav_is_exact_and_unclipped(tmp_path: Path) -> None:
    x = _tone(channels=2) * 3.0  # beyond full scale on purpose
    result = write_audio(tmp_path / "out.wav", x, 44100)
    assert result.bits == 32 and result.clipped_samples == 0
    assert result.frames == 4410 and result.channels == 2
    info = sf.info(tmp_path / "out.wav")
    assert info.subtype == "FLOAT"
    np.testing.assert_array_equal(sf.read(tmp_path / "out.wav", dtype="float32")[0], x)


@pytest.mark.parametrize(("suffix", "bits"), [(".wav", 16), (".wav", 24), (".flac", 16), (".flac", 24)])
def test_write_pcm_clips_and_counts(tmp_path: Path, suffix: str, bits: int) -> None:
    x = np.array([0.0, 0.5, 1.5, -2.0, -0.25], dtype=np.float32)
    result = write_audio(tmp_path / f"out{suffix}", x, 22050, bits=bits)
    assert result.clipped_samples == 2
    assert sf.info(tmp_path / f"out{suffix}").subtype == f"PCM_{bits}"
    back = read_audio(tmp_path / f"out{suffix}").samples[:, 0]
    np.testing.assert_allclose(back, [0.0, 0.5, 1.0, -1.0, -0.25], atol=2 / 2**bits)


def test_write_accepts_tensor(tmp_path: Path) -> None:
    x = torch.linspace(-0.5, 0.5, 300)
    write_audio(tmp_path / "t.wav", x, 44100)
    np.testing.assert_allclose(read_audio(tmp_path / "t.wav").samples[:, 0], x.numpy())


def test_write_errors(tmp_path: Path) -> None:
    x = _tone(frames=10, channels=1)
    with pytest.raises(AudioError, match=r"out\.flac: FLAC cannot store 32-bit float"):
        write_audio(tmp_path / "out.flac", x, 44100, bits=32)
    with pytest.raises(AudioError, match="unsupported bit depth 8"):
        write_audio(tmp_path / "out.wav", x, 44100, bits=8)
    with pytest.raises(AudioError, match=r"cannot write '\.mp3'"):
        write_audio(tmp_path / "out.mp3", x, 44100)
    with pytest.raises(AudioError, match="NaN"):
        write_audio(tmp_path / "out.wav", np.full((10, 1), np.nan, np.float32), 44100)
    with pytest.raises(AudioError, match="zero-length"):
        write_audio(tmp_path / "out.wav", np.zeros((0, 1), np.float32), 44100)
    with pytest.raises(AudioError, match=r"not \(channels, frames\)"):
        write_audio(tmp_path / "out.wav", np.zeros((2, 44100), np.float32), 44100)
    with pytest.raises(AudioError, match="does not exist"):
        write_audio(tmp_path / "missing" / "out.wav", x, 44100)
    with pytest.raises(InputError, match="sample rate 100 Hz"):
        write_audio(tmp_path / "out.wav", x, 100)
    assert list(tmp_path.iterdir()) == []


def test_write_is_atomic_on_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "song.wav"
    write_audio(target, _tone(frames=100), 44100)
    before = target.read_bytes()

    def failing_write(file: str, *args: object, **kwargs: object) -> None:
        Path(file).write_bytes(b"RIFF half")
        raise RuntimeError("disk full")

    monkeypatch.setattr("model.audio.sf.write", failing_write)
    with pytest.raises(AudioError, match=r"song\.wav: could not write audio \(disk full\)"):
        write_audio(target, _tone(frames=200), 44100)
    assert target.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(TEMP_PREFIX)]


def _patch_wav_sizes(data: bytes, riff: int | None = None, chunk: int | None = None) -> bytes:
    import struct

    out = bytearray(data)
    if riff is not None:
        out[4:8] = struct.pack("<I", riff)
    if chunk is not None:
        at = out.find(b"data")
        out[at + 4 : at + 8] = struct.pack("<I", chunk)
    return bytes(out)


def test_streamed_wav_with_unknown_length_is_accepted(tmp_path: Path) -> None:
    # ffmpeg writing to a pipe cannot seek back, so it leaves 0xFFFFFFFF sizes in a complete file
    x = _tone(frames=1000, channels=1)
    sf.write(tmp_path / "full.wav", x, 44100, subtype="PCM_16")
    data = _patch_wav_sizes((tmp_path / "full.wav").read_bytes(), riff=0xFFFFFFFF, chunk=0xFFFFFFFF)
    (tmp_path / "piped.wav").write_bytes(data)
    audio = read_audio(tmp_path / "piped.wav")
    np.testing.assert_allclose(audio.samples, x, atol=1 / 32768)


def test_wrong_riff_total_alone_is_harmless(tmp_path: Path) -> None:
    x = _tone(frames=1000, channels=1)
    sf.write(tmp_path / "full.wav", x, 44100, subtype="PCM_16")
    data = (tmp_path / "full.wav").read_bytes()
    (tmp_path / "odd.wav").write_bytes(_patch_wav_sizes(data, riff=len(data) + 100))
    assert read_audio(tmp_path / "odd.wav").frames == 1000
    (tmp_path / "cut.wav").write_bytes(_patch_wav_sizes(data, chunk=4000))  # promises 2000 frames, has 1000
    with pytest.raises(AudioError, match=r"cut\.wav: file is truncated"):
        read_audio(tmp_path / "cut.wav")


def test_cut_mp3_still_reads(tmp_path: Path) -> None:
    # MP3 lengths are estimates (VBR without a Xing header), so a short read is not called damage
    sf.write(tmp_path / "full.mp3", _tone(frames=44100, channels=1), 44100, format="MP3")
    data = (tmp_path / "full.mp3").read_bytes()
    (tmp_path / "cut.mp3").write_bytes(data[: len(data) * 2 // 3])
    audio = read_audio(tmp_path / "cut.mp3")
    assert 0 < audio.frames < 44100
