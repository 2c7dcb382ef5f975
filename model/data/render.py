"""Render a ``Composition`` to a mix and one stem per instrument group, with FluidSynth and espeak-ng.

Each stem group's instruments go into a MIDI file of their own (same tempo map, time signatures and
key), rendered by the ``fluidsynth`` command line with a General MIDI soundfont to 32-bit float WAV;
the stem is that audio cut or zero-padded to the piece's length (release and reverb tails past the
end are cut). The vocal stem is sung from the words (``model.data.voice``). The mix is the sum of the
stems, so stems add up to the mix exactly (same float32 values, in the order of ``STEM_GROUPS``), and
one gain brings the mix's peak to ``-headroom_db`` dBFS; the same gain is applied to every stem and
recorded in ``Rendered.gain``.

Choices (docs/training.md, "Rendering a training set"):
- Default mono at 22.05 kHz: segue's training reads audio as mono (``model.train.data``), as Jukebox
  did, and 22.05 kHz halves the samples the VQ-VAE must model compared with 44.1 kHz while keeping
  everything up to 11 kHz, where FluidR3's samples have most of their energy. ``channels=2`` keeps
  FluidSynth's stereo (pan, reverb); mono is the mean of the two channels.
- A group without instruments (or vocals without words) has no stem: ``Rendered.stems`` holds only
  the groups that are present, and no file is written for the others. A group that has instruments
  but no notes in the piece is a silent stem.
- The vocals group's MIDI instrument (the melody the words are sung on) is not rendered by default
  (``guide_gain=0``): the vocal stem is the voice alone, so what the model learns from it is words.
  ``guide_gain`` > 0 renders it with FluidSynth under the voice at that relative level.
"""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import soxr

from common.errors import InputError
from model.data import voice

STEM_GROUPS = ("drums", "bass", "keys", "strings", "leads", "vocals")  # as model.data.compose.STEM_GROUPS
DEBIAN_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
SOUNDFONT_ENV = "SEGUE_SOUNDFONT"
INSTALL_HINT = "apt-get install fluidsynth fluid-soundfont-gm"
FLUID_GAIN = 0.5  # FluidSynth's -g: loud enough to keep quiet notes far above float noise; float output cannot clip
DEFAULT_HEADROOM_DB = 1.0
FLUIDSYNTH_TIMEOUT_S = 600


class RenderUnavailable(InputError):
    """FluidSynth or the soundfont is missing, or FluidSynth failed."""


@dataclass(frozen=True, eq=False)
class Rendered:
    """The rendered piece: ``mix`` and each present group's stem, float32 ``(frames,)`` (mono) or
    ``(frames, 2)``; ``mix`` is exactly the sum of ``stems`` and ``gain`` the normalisation applied to all."""

    mix: np.ndarray
    stems: dict[str, np.ndarray]
    sample_rate: int
    channels: int
    gain: float
    soundfont: Path


def soundfont_path(soundfont: str | os.PathLike[str] | None = None) -> Path:
    """The soundfont to use: the argument, else ``$SEGUE_SOUNDFONT``, else Debian's FluidR3_GM; it must exist."""
    chosen = soundfont if soundfont is not None else os.environ.get(SOUNDFONT_ENV) or DEBIAN_SOUNDFONT
    path = Path(chosen)
    if not path.is_file():
        if soundfont is None and not os.environ.get(SOUNDFONT_ENV):
            raise RenderUnavailable(f"the General MIDI soundfont {path} is not installed: {INSTALL_HINT} "
                                    f"(or name a .sf2 with --soundfont or ${SOUNDFONT_ENV})")  # fmt: skip
        raise RenderUnavailable(f"soundfont {path} does not exist")
    return path


def require_fluidsynth() -> str:
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise RenderUnavailable(f"rendering needs fluidsynth, which is not installed: {INSTALL_HINT}")
    return exe


def check_tools(soundfont: str | os.PathLike[str] | None = None) -> Path:
    """Fail early, with what to install, when fluidsynth, the soundfont or espeak-ng is missing."""
    require_fluidsynth()
    path = soundfont_path(soundfont)
    voice.require_espeak()
    return path


def fluidsynth_render(midi_file: Path, out_wav: Path, sample_rate: int, soundfont: Path, gain: float = FLUID_GAIN) -> None:
    """``fluidsynth -ni -q -F out.wav -r RATE -g GAIN SF2 in.mid`` (32-bit float WAV); errors name the cause.

    FluidSynth exits 0 even when it cannot open the soundfont, so its stderr is read too."""
    exe = require_fluidsynth()
    cmd = [exe, "-ni", "-q", "-o", "audio.file.format=float", "-F", str(out_wav), "-r", str(int(sample_rate)),
           "-g", f"{gain:g}", str(soundfont), str(midi_file)]  # fmt: skip
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=FLUIDSYNTH_TIMEOUT_S, check=False, stdin=subprocess.DEVNULL)
    except OSError as exc:
        raise RenderUnavailable(f"fluidsynth could not run ({exc}): {INSTALL_HINT}") from exc
    except subprocess.TimeoutExpired as exc:
        raise RenderUnavailable(f"fluidsynth took over {FLUIDSYNTH_TIMEOUT_S} s on {midi_file.name}") from exc
    err = proc.stderr.decode("utf-8", "replace")
    errors = [line for line in err.splitlines() if "error" in line.lower() or "not a soundfont" in line.lower()]
    if proc.returncode != 0 or errors or not out_wav.is_file():
        why = errors[-1] if errors else (err.strip().splitlines() or ["no output file"])[-1]
        raise RenderUnavailable(f"fluidsynth failed on {midi_file.name} with {soundfont.name} (exit {proc.returncode}: {why})")


def _group_midi(midi: Any, indices: Sequence[int]) -> Any:
    """A copy of ``midi`` (a PrettyMIDI) holding only the instruments ``indices``: same tempo, meter and key."""
    part = copy.copy(midi)
    part.instruments = [copy.deepcopy(midi.instruments[i]) for i in indices]
    return part


def _fit_frames(y: np.ndarray, n: int) -> np.ndarray:
    if y.shape[0] >= n:
        return y[:n]
    pad = np.zeros((n - y.shape[0],) + y.shape[1:], dtype=y.dtype)
    return np.concatenate([y, pad], axis=0)


def _to_channels(y: np.ndarray, channels: int) -> np.ndarray:
    """FluidSynth's stereo ``(frames, 2)`` as mono ``(frames,)`` (mean of the channels) or kept stereo."""
    if channels == 1:
        return y.mean(axis=1, dtype=np.float64).astype(np.float32) if y.ndim == 2 else y.astype(np.float32)
    return y.astype(np.float32) if y.ndim == 2 and y.shape[1] == 2 else np.repeat(y.reshape(-1, 1), 2, axis=1).astype(np.float32)


def render_midi(midi: Any, seconds: float, sample_rate: int, soundfont: Path, *, channels: int = 1,
                workdir: Path | None = None) -> np.ndarray:  # fmt: skip
    """A PrettyMIDI rendered by FluidSynth: float32, cut or padded to ``seconds``."""
    n = int(round(seconds * sample_rate))
    shape = (n,) if channels == 1 else (n, channels)
    if not any(inst.notes for inst in midi.instruments):
        return np.zeros(shape, dtype=np.float32)
    with tempfile.TemporaryDirectory(prefix="segue-render-", dir=workdir) as tmp:
        mid, wav = Path(tmp) / "part.mid", Path(tmp) / "part.wav"
        midi.write(str(mid))
        fluidsynth_render(mid, wav, sample_rate, soundfont)
        try:
            data, rate = sf.read(str(wav), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise RenderUnavailable(f"fluidsynth wrote no readable audio for {mid.name} ({exc})") from exc
    if rate != sample_rate:  # not expected (-r sets it), but never trust a rate silently
        data = soxr.resample(data, rate, sample_rate, quality="VHQ").astype(np.float32)
    return _fit_frames(_to_channels(data, channels), n)


def vocal_stem(words: Sequence[Any], seconds: float, sample_rate: int, *, channels: int = 1) -> np.ndarray:
    """Every word sung at its pitch inside ``[start_s, end_s]`` (clipped to the piece), silence elsewhere."""
    n = int(round(seconds * sample_rate))
    out = np.zeros(n, dtype=np.float32)
    for w in words:
        a = int(round(max(0.0, float(w.start_s)) * sample_rate))
        b = int(round(min(float(seconds), float(w.end_s)) * sample_rate))
        if b <= a:
            continue
        out[a:b] += voice.sing_word(w.text, int(w.pitch), (b - a) / sample_rate, sample_rate)[: b - a]
    return out if channels == 1 else np.repeat(out[:, None], channels, axis=1)


def render(composition: Any, *, sample_rate: int = 22050, channels: int = 1,
           soundfont: str | os.PathLike[str] | None = None, headroom_db: float = DEFAULT_HEADROOM_DB,
           guide_gain: float = 0.0, workdir: Path | None = None) -> Rendered:  # fmt: skip
    """Render ``composition`` (a ``model.data.compose.Composition``): see the module docstring."""
    if channels not in (1, 2):
        raise InputError(f"channels {channels}: give 1 (mono) or 2 (stereo)")
    if not 8000 <= int(sample_rate) <= 192000:
        raise InputError(f"sample rate {sample_rate}: give 8000 to 192000 Hz")
    if not 0.0 <= headroom_db <= 40.0:
        raise InputError(f"headroom {headroom_db} dB: give 0 to 40")
    sf2 = soundfont_path(soundfont)
    groups: Mapping[str, Sequence[int]] = composition.groups
    unknown = sorted(set(groups) - set(STEM_GROUPS))
    if unknown:
        raise InputError(f"unknown stem groups {unknown}: the groups are {', '.join(STEM_GROUPS)}")
    seconds = float(composition.seconds)
    raw: dict[str, np.ndarray] = {}
    for group in STEM_GROUPS:
        indices = tuple(groups.get(group, ()))
        if group == "vocals":
            words = tuple(composition.words)
            if not words and not (indices and guide_gain > 0):
                continue
            stem = vocal_stem(words, seconds, sample_rate, channels=channels)
            if indices and guide_gain > 0:
                part = render_midi(_group_midi(composition.midi, indices), seconds, sample_rate, sf2, channels=channels, workdir=workdir)
                stem = stem + np.float32(guide_gain) * part
            raw[group] = stem
        elif indices:
            raw[group] = render_midi(_group_midi(composition.midi, indices), seconds, sample_rate, sf2, channels=channels, workdir=workdir)
    n = int(round(seconds * sample_rate))
    shape = (n,) if channels == 1 else (n, channels)
    total = np.zeros(shape, dtype=np.float64)
    for stem in raw.values():
        total += stem
    peak = float(np.max(np.abs(total))) if total.size else 0.0
    gain = float(10.0 ** (-headroom_db / 20.0) / peak) if peak > 0 else 1.0
    stems = {g: (s * np.float32(gain)).astype(np.float32) for g, s in raw.items()}
    mix = np.zeros(shape, dtype=np.float32)
    for s in stems.values():  # float32 sum in STEM_GROUPS order: summing the files gives the mix exactly
        mix += s
    return Rendered(mix, stems, int(sample_rate), channels, gain, sf2)
