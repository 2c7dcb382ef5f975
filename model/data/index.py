"""``segue data index DIR``: a user's folder of audio, with optional sidecars, checked and indexed for training.

A piece is an audio file (``.wav .flac .ogg .aiff .aif .mp3``) anywhere under the folder; beside it, with
the same name, optionally:

- ``NAME.mid`` / ``NAME.midi``: its MIDI (read with ``conditioning.midi.read_midi``);
- ``NAME.lrc``: lyrics with line or word times (``conditioning.lrc``), or ``NAME.txt``: plain lyrics;
- ``NAME.stems/LABEL.wav`` (any audio extension): its stems, one per label (``drums``, ``bass``...);
- and one ``metadata.csv`` at the folder's root with a ``file`` column (the audio's path relative to the
  folder) and any of ``artist``, ``genre``, ``lyrics`` (plain lyrics, when no sidecar gives them).

Every file is checked (audio decoded in blocks: corrupt, empty, NaN/inf, too short or too long, an odd
rate or channel count; MIDI parsed; lyrics UTF-8 and LRC syntax; stems like audio, at the piece's length
within 1 s). A bad file is reported and skipped, never fatal: a bad sidecar drops only that sidecar
(with a note), a bad mix drops the piece. The index (``IndexReport.to_dict``, written as JSON) lists the
pieces with paths relative to the folder, their lengths, labels, lyrics with word times where known,
and every problem found.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from common.errors import InputError, SegueError
from conditioning.lrc import parse_lrc
from conditioning.midi import MAX_BYTES as MAX_MIDI_BYTES
from conditioning.midi import read_midi

AUDIO = (".wav", ".flac", ".ogg", ".aiff", ".aif", ".mp3")
INDEX_FORMAT = "segue-data-index"
INDEX_VERSION = 1
MIN_SECONDS = 1.0
MAX_SECONDS = 3600.0
MAX_LYRICS_BYTES = 1 << 20
MAX_FILES = 200_000
_LABEL_OK = set("abcdefghijklmnopqrstuvwxyz0123456789_")
_BLOCK = 1 << 16


@dataclass
class PieceEntry:
    audio: str  # relative to the folder
    seconds: float
    sample_rate: int
    channels: int
    artist: str = "unknown"
    genre: str = "unknown"
    lyrics: str = ""
    words: list[tuple[str, float, float]] | None = None  # (text, start_s, end_s) where times are known
    word_timed: bool = False  # the words carry their own times (else: LRC lines, spread over each line)
    midi: str | None = None
    stems: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"audio": self.audio, "seconds": round(self.seconds, 4), "sample_rate": self.sample_rate,
                "channels": self.channels, "artist": self.artist, "genre": self.genre, "lyrics": self.lyrics,
                "words": None if self.words is None else [[w, round(a, 3), round(b, 3)] for w, a, b in self.words],
                "word_timed": self.word_timed, "midi": self.midi, "stems": dict(self.stems), "notes": list(self.notes)}  # fmt: skip


@dataclass
class IndexReport:
    root: str
    pieces: list[PieceEntry] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, problem): files left out

    @property
    def seconds(self) -> float:
        return sum(p.seconds for p in self.pieces)

    def to_dict(self) -> dict[str, Any]:
        return {"format": INDEX_FORMAT, "version": INDEX_VERSION, "root": self.root, "pieces": [p.to_dict() for p in self.pieces],
                "seconds": round(self.seconds, 3), "skipped": [{"file": f, "problem": p} for f, p in self.skipped]}  # fmt: skip


def check_audio(path: Path) -> tuple[float, int, int]:
    """(seconds, rate, channels) of an audio file decoded in blocks; ``InputError`` naming the problem."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise InputError(f"not audio soundfile can read ({exc})") from None
    if info.samplerate < 8000 or info.samplerate > 192000:
        raise InputError(f"sample rate {info.samplerate} Hz is outside 8000..192000")
    if not 1 <= info.channels <= 16:
        raise InputError(f"{info.channels} channels (1..16 are read)")
    seconds = info.frames / info.samplerate
    if not MIN_SECONDS <= seconds <= MAX_SECONDS:
        raise InputError(f"{seconds:.2f} s long; pieces are {MIN_SECONDS:g} to {MAX_SECONDS:g} s")
    frames = 0
    try:
        for block in sf.blocks(str(path), blocksize=_BLOCK, dtype="float32", always_2d=True):
            bad = ~np.isfinite(block).all(axis=1)  # (frames,)
            if bad.any():
                first = (frames + int(np.argmax(bad))) / info.samplerate
                raise InputError(f"NaN or infinite samples from {first:.2f} s")
            frames += block.shape[0]
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise InputError(f"corrupt after {frames / info.samplerate:.2f} s ({exc})") from None
    if frames == 0:
        raise InputError("holds no samples")
    return frames / info.samplerate, int(info.samplerate), int(info.channels)


def _metadata(root: Path, report: IndexReport) -> dict[str, dict[str, str]]:
    path = root / "metadata.csv"
    if not path.is_file():
        return {}
    try:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        report.skipped.append(("metadata.csv", f"not a readable UTF-8 CSV ({exc}); labels left unknown"))
        return {}
    if rows and "file" not in rows[0]:
        report.skipped.append(("metadata.csv", f"has no 'file' column (columns: {', '.join(rows[0])}); labels left unknown"))
        return {}
    return {str(Path(r["file"]).as_posix()): {k: (v or "").strip() for k, v in r.items() if k} for r in rows if r.get("file")}


def _sidecars(audio: Path, entry: PieceEntry, root: Path) -> None:
    base = audio.with_suffix("")
    for ext in (".mid", ".midi"):
        midi = base.with_suffix(ext)
        if midi.is_file():
            try:
                if midi.stat().st_size > MAX_MIDI_BYTES:
                    raise InputError(f"larger than {MAX_MIDI_BYTES >> 20} MiB")
                read_midi(midi.read_bytes(), midi.name)
                entry.midi = midi.relative_to(root).as_posix()
            except (SegueError, OSError) as exc:
                entry.notes.append(f"{midi.name} left out: {exc}")
            break
    lrc, txt = base.with_suffix(".lrc"), base.with_suffix(".txt")
    for path in (lrc, txt):
        if not path.is_file():
            continue
        try:
            if path.stat().st_size > MAX_LYRICS_BYTES:
                raise InputError(f"larger than {MAX_LYRICS_BYTES >> 20} MiB")
            text = path.read_text(encoding="utf-8")
            if path is lrc:
                timed = parse_lrc(text, path.name, end_s=entry.seconds)
                entry.lyrics, entry.word_timed = timed.text, timed.word_timed
                entry.words = [(w.text, w.start_s, w.end_s) for w in timed.words]
            else:
                entry.lyrics = text.strip()
        except (SegueError, OSError, UnicodeDecodeError) as exc:
            entry.notes.append(f"{path.name} left out: {exc}")
            continue
        break
    stems = base.parent / (base.name + ".stems")
    if stems.is_dir():
        for stem in sorted(stems.iterdir()):
            label = stem.stem.lower()
            if stem.suffix.lower() not in AUDIO or not stem.is_file():
                continue
            if not set(label) <= _LABEL_OK or not label[:1].isalpha():
                entry.notes.append(f"stem {stem.name} left out: its label must be lower-case letters, digits, '_'")
                continue
            try:
                seconds, _, _ = check_audio(stem)
                if abs(seconds - entry.seconds) > 1.0:
                    raise InputError(f"is {seconds:.2f} s long, the piece {entry.seconds:.2f} s")
                entry.stems[label] = stem.relative_to(root).as_posix()
            except SegueError as exc:
                entry.notes.append(f"stem {stem.name} left out: {exc}")


def index_folder(folder: str | os.PathLike[str]) -> IndexReport:
    """Check and index every piece under ``folder`` (see the module docstring)."""
    root = Path(folder)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder")
    report = IndexReport(str(root))
    if (root / "synth.json").is_file() and (root / "index.json").is_file():
        return _synth_set(root, report)
    meta = _metadata(root, report)
    audio_files = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.endswith(".stems") and not d.startswith("."))
        for name in sorted(filenames):
            if Path(name).suffix.lower() in AUDIO:
                audio_files.append(Path(dirpath) / name)
        if len(audio_files) > MAX_FILES:
            raise InputError(f"{root}: more than {MAX_FILES:,} audio files; index a smaller folder")
    for audio in sorted(audio_files, key=lambda a: a.relative_to(root).as_posix()):
        relative = audio.relative_to(root).as_posix()
        try:
            seconds, rate, channels = check_audio(audio)
        except SegueError as exc:
            report.skipped.append((relative, str(exc)))
            continue
        entry = PieceEntry(relative, seconds, rate, channels)
        row = meta.get(relative, {})
        entry.artist = row.get("artist") or "unknown"
        entry.genre = row.get("genre") or "unknown"
        _sidecars(audio, entry, root)
        if not entry.lyrics and row.get("lyrics"):
            entry.lyrics = row["lyrics"]
        report.pieces.append(entry)
    unmatched = sorted(set(meta) - {p.audio for p in report.pieces} - {f for f, _ in report.skipped})
    for name in unmatched:
        report.skipped.append((f"metadata.csv: {name}", "no such audio file in the folder"))
    return report


def _synth_set(root: Path, report: IndexReport) -> IndexReport:
    """A folder ``segue data synth`` wrote: its own ``index.json`` lists the finished pieces; each piece's
    ``meta.json`` gives the labels and the word times, and its files are checked like any other."""
    try:
        listed = json.loads((root / "index.json").read_text(encoding="utf-8"))["pieces"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{root}: index.json of a synth set cannot be read ({exc})") from None
    for item in listed:
        folder = root / str(item.get("path", ""))
        mix = folder / "mix.wav"
        relative = mix.relative_to(root).as_posix()
        try:
            meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
            seconds, rate, channels = check_audio(mix)
        except (SegueError, OSError, UnicodeDecodeError, ValueError) as exc:
            report.skipped.append((relative, str(exc)))
            continue
        entry = PieceEntry(relative, seconds, rate, channels, str(meta.get("artist") or "unknown"),
                           str(meta.get("genre") or "unknown"), str(meta.get("lyrics") or ""))  # fmt: skip
        words = meta.get("words") or []
        if words:
            entry.words = [(str(w["text"]), float(w["start_s"]), float(w["end_s"])) for w in words]
            entry.word_timed = True
        midi = folder / "piece.mid"
        if midi.is_file():
            try:
                read_midi(midi.read_bytes(), midi.name)
                entry.midi = midi.relative_to(root).as_posix()
            except (SegueError, OSError) as exc:
                entry.notes.append(f"{midi.name} left out: {exc}")
        for stem in sorted((folder / "stems").glob("*.wav")):
            try:
                check_audio(stem)
                entry.stems[stem.stem] = stem.relative_to(root).as_posix()
            except SegueError as exc:
                entry.notes.append(f"stem {stem.name} left out: {exc}")
        report.pieces.append(entry)
    return report

