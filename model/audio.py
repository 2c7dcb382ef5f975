"""Audio files in and out: one reader for everything libsndfile decodes, one atomic writer.

Rules (user-facing summary in docs/formats.md):
- Reading gives float32 samples ``(frames, channels)`` in [-1, 1] (float files beyond it: see below).
  Any format libsndfile reads works (WAV, FLAC, AIFF, OGG/Vorbis, MP3, ...), with 1 to 16 channels.
- Resampling (``sample_rate=``) uses soxr at quality "VHQ": its 28-bit precision is beyond what
  float32 (24-bit mantissa) can hold, so resampling adds nothing measurable, and it costs about
  0.6 ms per second of stereo audio on one CPU core (HQ: 0.5 ms), negligible next to any model call.
- Channel conversion (``channels=``): N -> 1 is the mean of the channels (no +3 dB pan law, so a
  full-scale mono file read as stereo and mixed back is unchanged); 1 -> N duplicates. Anything else
  (6 -> 2, ...) is refused rather than guessed. Files with more than 16 channels are refused; mixing down
  3..16 channels is logged as a warning (read_audio has no other channel for warnings).
- Float samples beyond [-1, 1] are clipped to it, counted in ``Audio.clipped_samples`` and logged as a
  warning; a peak over 64.0 (36 dB over full scale) is refused as damaged or not scaled as audio.
- Files that are missing, not audio, truncated (a WAV/AIFF header that promises more audio than the
  file holds; streaming writers' "unknown length" sizes are accepted), empty, have NaN/inf samples or an absurd sample
  rate raise ``AudioError`` naming the file and the problem.
- Writing: ``bits=32`` writes 32-bit float WAV exactly as given (values beyond [-1, 1] are kept,
  float WAV can hold them). ``bits=16/24`` write integer PCM (WAV or FLAC): samples are clipped to
  [-1, 1] (no dither) and the number of clipped samples is returned in ``WriteResult`` so callers
  can warn. FLAC cannot store float, so ``.flac`` with ``bits=32`` is refused.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf
import soxr

from common.errors import AudioError, InputError
from model.atomic import atomic_path

MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 768_000
MAX_CHANNELS = 64  # guards against passing (channels, frames) by mistake
MAX_READ_CHANNELS = 16  # more than any real recording layout (9.1.6 is 16); 65 channels is junk or an attack
MAX_PEAK = 64.0  # float samples beyond this (36 dB over full scale) are not audio in any usable scale
RESAMPLE_QUALITY = "VHQ"
WRITE_FORMATS = {".wav": "WAV", ".flac": "FLAC"}
_PCM_SUBTYPES = {16: "PCM_16", 24: "PCM_24"}
_ESTIMATED_LENGTH_FORMATS = {"MP3", "OGG"}

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == is ambiguous; compare .samples
class Audio:
    """Decoded audio: ``samples`` is float32 ``(frames, channels)``; ``source`` names where it came from.

    ``clipped_samples`` counts the file's float values beyond [-1, 1] that reading clipped (as in ``WriteResult``).
    """

    samples: np.ndarray  # (frames, channels) float32
    sample_rate: int
    source: str = "<memory>"
    clipped_samples: int = 0

    def __post_init__(self) -> None:
        if self.samples.ndim != 2 or self.samples.dtype != np.float32:
            raise ValueError(
                f"Audio.samples must be float32 (frames, channels), got {self.samples.dtype} {self.samples.shape}"
            )

    @property
    def frames(self) -> int:
        return int(self.samples.shape[0])

    @property
    def channels(self) -> int:
        return int(self.samples.shape[1])

    @property
    def duration(self) -> float:
        """Length in seconds."""
        return self.frames / self.sample_rate

    def to_mono(self) -> Audio:
        """Mean of the channels, shape ``(frames, 1)``."""
        return self.with_channels(1)

    def with_channels(self, channels: int) -> Audio:
        """Mix down to mono (mean) or duplicate mono to ``channels``; see the module docstring."""
        samples = _convert_channels(self.samples, channels, self.source)
        return Audio(samples, self.sample_rate, self.source, self.clipped_samples)

    def resampled(self, sample_rate: int) -> Audio:
        """The same audio at ``sample_rate`` (soxr VHQ); returns ``self`` if the rate already matches."""
        _check_rate_argument(sample_rate)
        if sample_rate == self.sample_rate:
            return self
        out = soxr.resample(
            self.samples, self.sample_rate, sample_rate, quality=RESAMPLE_QUALITY
        )  # (frames', C)
        out = np.ascontiguousarray(out, dtype=np.float32).reshape(-1, self.channels)
        return Audio(out, sample_rate, self.source, self.clipped_samples)


@dataclass(frozen=True)
class WriteResult:
    """What ``write_audio`` wrote. ``clipped_samples`` counts values clipped to [-1, 1] (integer PCM only)."""

    path: Path
    frames: int
    channels: int
    sample_rate: int
    bits: int
    clipped_samples: int


def declared_seconds(path: str | os.PathLike[str]) -> float:
    """The length a file's header declares, in seconds, without decoding it (0.0 when the header cannot be
    read: ``read_audio`` then names what is wrong). For refusing long inputs before decoding them."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, sf.LibsndfileError, OSError):
        return 0.0
    return info.frames / info.samplerate if info.samplerate > 0 else 0.0


def read_audio(
    path: str | os.PathLike[str], *, sample_rate: int | None = None, channels: int | None = None
) -> Audio:
    """Read an audio file; optionally resample to ``sample_rate`` and convert to ``channels``."""
    file = Path(path)
    if not file.exists():
        raise AudioError(f"{file}: no such file")
    if file.is_dir():
        raise AudioError(f"{file}: is a directory, not an audio file")
    if not file.is_file():  # a FIFO would block the open forever, a device could be read without end
        raise AudioError(f"{file}: is not a regular file (a FIFO, device or socket), not an audio file")
    try:
        size = file.stat().st_size
        with open(file, "rb") as handle:
            return _decode(handle, str(file), size, sample_rate, channels)
    except PermissionError as exc:
        raise AudioError(f"{file}: cannot be read (permission denied)") from exc


def _decode(handle: BinaryIO, name: str, size: int, sample_rate: int | None, channels: int | None) -> Audio:
    if sample_rate is not None:
        _check_rate_argument(sample_rate)
    if channels is not None and channels < 1:
        raise InputError(f"channels must be at least 1, got {channels}")
    if size == 0:
        raise AudioError(f"{name}: file is empty (0 bytes)")
    try:
        with sf.SoundFile(handle) as snd:
            # Lossy streams (MP3, Ogg) only estimate their length (VBR MP3 without a Xing header), so a
            # shorter read there is not evidence of damage; other formats state the exact frame count.
            declared = 0 if snd.format in _ESTIMATED_LENGTH_FORMATS else snd.frames
            rate = int(snd.samplerate)
            if snd.channels > MAX_READ_CHANNELS:  # before decoding: 65 channels of an hour is gigabytes
                raise AudioError(f"{name}: {snd.channels} channels; at most {MAX_READ_CHANNELS} are read")
            samples = snd.read(dtype="float32", always_2d=True)  # (frames, channels)
            header_log = snd.extra_info
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise AudioError(f"{name}: not a readable audio file or corrupt ({_libsndfile_reason(exc)})") from exc
    _check_decoded(name, samples, rate, declared, header_log)
    clipped = _clip_to_full_scale(name, samples)
    audio = Audio(np.ascontiguousarray(samples), rate, name, clipped)
    if channels is not None:
        if audio.channels > 2 and channels < audio.channels:  # stereo -> mono is routine, 5.1 -> mono is news
            log.warning(
                "%s: %d channels mixed down to %d (the mean of all channels)", name, audio.channels, channels
            )
        audio = audio.with_channels(channels)
    if sample_rate is not None:
        audio = audio.resampled(sample_rate)
    return audio


def _libsndfile_reason(exc: Exception) -> str:
    text = str(exc)
    # soundfile prefixes "Error opening <object repr>: "; the part after the last colon is libsndfile's reason.
    return text.rsplit(": ", 1)[-1].strip() if ": " in text else text


def _check_decoded(name: str, samples: np.ndarray, rate: int, declared: int, log: str) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(
            f"{name}: sample rate {rate} Hz is outside the supported {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
        )
    if _header_promises_more(log) or samples.shape[0] < declared:
        raise AudioError(
            f"{name}: file is truncated (header promises more audio than the file holds; "
            f"{samples.shape[0]} frames readable)"
        )
    if samples.shape[0] == 0:
        raise AudioError(f"{name}: contains no audio (0 frames)")
    finite = np.isfinite(samples)
    if not finite.all():
        bad = int(samples.size - np.count_nonzero(finite))
        first = int(np.argwhere(~finite)[0, 0])
        raise AudioError(
            f"{name}: contains {bad} NaN or infinite sample values (first at frame {first}, "
            f"{first / rate:.3f} s)"
        )
    peak = float(np.abs(samples).max())
    if peak > MAX_PEAK:
        raise AudioError(
            f"{name}: peak sample magnitude {peak:g} is over the limit of {MAX_PEAK:g} (36 dB over full scale); "
            "the file is damaged or not scaled as audio"
        )


def _clip_to_full_scale(name: str, samples: np.ndarray) -> int:
    """Clip float values beyond [-1, 1] in place (a hot float master, a lossy decoder's overshoot); logs and
    returns how many there were. Integer formats never exceed full scale."""
    clipped = int(np.count_nonzero(np.abs(samples) > 1.0))
    if clipped:
        np.clip(samples, -1.0, 1.0, out=samples)
        log.warning("%s: %d samples beyond full scale clipped to [-1, 1]", name, clipped)
    return clipped


# libsndfile logs "data : N (should be M)" (WAV) or "SSND : N (should be M)" (AIFF) when the audio chunk's
# header size disagrees with the bytes present, and then reads what is there.
_CHUNK_SIZE_LOG = re.compile(r"^\s*(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
# Sizes written by streaming writers (e.g. ffmpeg to a pipe) that cannot seek back to fix the header:
# such files are complete, the header just does not know the length.
_UNKNOWN_SIZES = {0xFFFFFFFF, 0x7FFFFFFF, 0x7FFFF000}


def _header_promises_more(log: str) -> bool:
    """True if a WAV/AIFF header declares more audio bytes than the file holds (a cut-off file).

    Only the audio chunk counts: a wrong RIFF/FORM total alone is harmless and common.
    """
    for declared, present in _CHUNK_SIZE_LOG.findall(log):
        if int(declared) > int(present) and int(declared) not in _UNKNOWN_SIZES:
            return True
    return False


def _check_rate_argument(sample_rate: int) -> None:
    if not MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE:
        raise InputError(
            f"sample rate {sample_rate} Hz is outside the supported {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
        )


def _convert_channels(samples: np.ndarray, channels: int, name: str) -> np.ndarray:
    have = samples.shape[1]
    if channels < 1:
        raise InputError(f"channels must be at least 1, got {channels}")
    if channels == have:
        return samples
    if channels == 1:
        return samples.mean(axis=1, keepdims=True, dtype=np.float32)  # (frames, 1)
    if have == 1:
        return np.ascontiguousarray(np.repeat(samples, channels, axis=1))  # (frames, channels)
    raise AudioError(
        f"{name}: cannot convert {have} channels to {channels}; only mixing down to mono or "
        "duplicating mono is supported"
    )


def write_audio(
    path: str | os.PathLike[str], samples: Any, sample_rate: int, *, bits: int = 32
) -> WriteResult:
    """Write ``samples`` (``(frames,)`` or ``(frames, channels)``, array or CPU tensor) atomically.

    The format comes from the suffix (.wav or .flac). ``bits`` is 32 (float, WAV only), 24 or 16.
    """
    file = Path(path)
    fmt = WRITE_FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise AudioError(f"{file}: cannot write '{file.suffix}' files; use one of {', '.join(WRITE_FORMATS)}")
    if bits not in (16, 24, 32):
        raise AudioError(f"{file}: unsupported bit depth {bits}; use 16, 24 or 32 (float, WAV only)")
    if bits == 32 and fmt == "FLAC":
        raise AudioError(f"{file}: FLAC cannot store 32-bit float; write .wav or choose --bits 16 or 24")
    _check_rate_argument(int(sample_rate))
    if not file.parent.is_dir():
        raise AudioError(f"{file}: cannot write, directory {file.parent} does not exist")
    data = _as_frames(samples, file)
    clipped = 0
    if bits == 32:
        subtype = "FLOAT"
    else:
        subtype = _PCM_SUBTYPES[bits]
        clipped = int(np.count_nonzero(np.abs(data) > 1.0))
        data = np.clip(data, -1.0, 1.0)
    try:
        with atomic_path(file) as tmp:
            sf.write(str(tmp), data, int(sample_rate), format=fmt, subtype=subtype)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioError(f"{file}: could not write audio ({exc})") from exc
    return WriteResult(file, data.shape[0], data.shape[1], int(sample_rate), bits, clipped)


def _as_frames(samples: Any, file: Path) -> np.ndarray:
    if hasattr(samples, "detach"):  # a torch tensor; the caller moves it to the CPU
        samples = samples.detach().cpu().numpy()
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]  # (frames, 1)
    if data.ndim != 2 or data.shape[1] < 1:
        raise AudioError(f"{file}: samples must be (frames,) or (frames, channels), got shape {data.shape}")
    if data.shape[1] > MAX_CHANNELS:
        raise AudioError(
            f"{file}: {data.shape[1]} channels (max {MAX_CHANNELS}); samples must be (frames, channels), "
            "not (channels, frames)"
        )
    if data.shape[0] == 0:
        raise AudioError(f"{file}: refusing to write zero-length audio")
    if not np.isfinite(data).all():
        raise AudioError(f"{file}: refusing to write NaN or infinite samples")
    return np.ascontiguousarray(data)
