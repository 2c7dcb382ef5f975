"""From a data index (``segue data index``) to ``PriorTrainItem``s: the pieces encoded by a model's VQ-VAE.

``encode_index`` reads each piece's mix mono at the VQ-VAE's rate and encodes it at the levels a prior
needs. Codes are cached per piece as ``.npz`` in ``cache_dir``, keyed by the audio's path, size and mtime
and the VQ-VAE's identity (``model_identity``), so a rerun encodes nothing again. Artist and genre ids come
from an id table built from the index's names (sorted, ``unknown`` = 0), written into ``model_dir/ids/`` as
the label version's ``{v2,v3}_{artist,genre}_ids.txt`` so that sampling later finds the same ids. MIDI and
stems become ``JobConditions`` (everything placed at project time 0) when a conditioner of the prior's
level reads them; word times become timed lyrics. A piece whose mix cannot be read now is reported and
skipped; an unreadable MIDI or stem drops only that condition (reported too).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common.errors import ConfigError, InputError, SegueError
from conditioning.ids import UNKNOWN, IdTable, parse_id_lines
from conditioning.midi import read_midi
from model.atomic import atomic_write_text
from model.audio import read_audio
from model.checkpoint.builders import load_vqvae, model_identity
from model.conditioners.config import ConditionerConfig
from model.data.index import INDEX_FORMAT, IndexReport, PieceEntry
from model.prior.prior_config import PriorConfig
from model.sampling.setup import label_set_for
from model.tasks.conditions import MIDI, JobConditions, StemCondition, reads
from model.train.prior_data import PriorTrainItem, PriorWindows

SkipFn = Callable[[str, str], None]  # (piece's audio path, problem)


@dataclass(frozen=True)
class LabelIds:
    """The id tables written for one label version: name -> id for artists and genres."""

    version: str
    artists: IdTable
    genres: IdTable
    written: tuple[Path, ...] = field(default=())


def read_index(path: str | os.PathLike[str]) -> IndexReport:
    """An index JSON written by ``segue data index`` (``IndexReport.to_dict``) read back."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{file}: not a readable index JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
        raise InputError(f"{file}: not a {INDEX_FORMAT} file (write one with: segue data index DIR)")
    try:
        pieces = [
            PieceEntry(
                audio=str(p["audio"]), seconds=float(p["seconds"]), sample_rate=int(p["sample_rate"]),
                channels=int(p["channels"]), artist=str(p.get("artist") or UNKNOWN),
                genre=str(p.get("genre") or UNKNOWN), lyrics=str(p.get("lyrics") or ""),
                words=None if p.get("words") is None else [(str(w), float(a), float(b)) for w, a, b in p["words"]],
                word_timed=bool(p.get("word_timed", False)), midi=p.get("midi"),
                stems={str(k): str(v) for k, v in (p.get("stems") or {}).items()},
            )  # fmt: skip
            for p in data["pieces"]
        ]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{file}: a piece of the index is malformed ({exc!r})") from None
    return IndexReport(str(data.get("root", file.parent)), pieces)


def build_ids(index: IndexReport, config: PriorConfig, model_dir: str | os.PathLike[str] | None = None) -> LabelIds:
    """Id tables of the index's artist and genre names for ``config``'s label version (sorted names after
    ``unknown`` = 0), checked to fit the prior's ``labels.y_bins``; written into ``model_dir/ids/`` when given."""
    version = label_set_for(config).version
    tables: dict[str, IdTable] = {}
    lines: dict[str, list[str]] = {}
    for kind, names in (("artist", [p.artist for p in index.pieces]), ("genre", [p.genre for p in index.pieces])):
        probe = IdTable(kind, version, {UNKNOWN: 0})  # type: ignore[arg-type]
        keys = sorted({k for name in names for k in probe.keys_for(name) if k and k != UNKNOWN})
        lines[kind] = [f"{UNKNOWN};0"] + [f"{k};{i}" for i, k in enumerate(keys, start=1)]
        tables[kind] = parse_id_lines(lines[kind], kind, version, source=f"{version}_{kind}_ids.txt")  # type: ignore[arg-type]
    genre_bins, artist_bins = config.labels.y_bins
    if config.labels.enabled:
        for kind, room in (("artist", artist_bins), ("genre", genre_bins)):
            if tables[kind].n_ids > room:
                raise ConfigError(
                    f"the data has {tables[kind].n_ids - 1} {kind} names besides unknown; this prior's labels "
                    f"have room for {room - 1} (prior.labels.y_bins): give the prior more, or fewer names"
                )
    written: list[Path] = []
    if model_dir is not None:
        ids = Path(model_dir) / "ids"
        ids.mkdir(parents=True, exist_ok=True)
        for kind in ("artist", "genre"):
            path = ids / f"{version}_{kind}_ids.txt"
            atomic_write_text(path, "\n".join(lines[kind]) + "\n")
            written.append(path)
    return LabelIds(version, tables["artist"], tables["genre"], tuple(written))


def _cache_key(audio: Path, identity: str, levels: Sequence[int]) -> str:
    stat = audio.stat()
    key = repr((str(audio.resolve()), stat.st_size, stat.st_mtime_ns, identity, tuple(levels)))
    return hashlib.sha256(key.encode()).hexdigest()[:32]


def encode_index(
    index: IndexReport | str | os.PathLike[str], root: str | os.PathLike[str] | None,
    model_dir: str | os.PathLike[str], levels: Iterable[int], *, cache_dir: str | os.PathLike[str],
    prior: PriorConfig | None = None, conditioners: Sequence[ConditionerConfig] = (),
    on_skip: SkipFn | None = None, progress: Callable[[int, int], None] | None = None,
) -> list[PriorTrainItem]:  # fmt: skip
    """One ``PriorTrainItem`` per readable piece of ``index`` (see the module docstring). ``root``: the
    folder the index's paths are relative to (None: the index's own ``root``); ``levels``: the VQ-VAE
    levels to encode; ``prior``: the prior the items are for (its label version and label sizes; None:
    ids are left 0, nothing is written to ``model_dir/ids`` and items are not checked against a prior:
    with a prior, a piece the trainer would refuse, too short for one window or with a length outside
    the top prior's range, is skipped); ``conditioners``: those of the prior's
    level (they say which of MIDI and stems to load); ``on_skip(audio, problem)``: each piece or
    sidecar left out."""
    report = read_index(index) if not isinstance(index, IndexReport) else index
    base = Path(root if root is not None else report.root)
    wanted = tuple(sorted(set(int(lv) for lv in levels)))
    vq = load_vqvae(model_dir)
    sr = vq.config.sample_rate
    if not wanted or any(not 0 <= lv < vq.config.levels for lv in wanted):
        raise ConfigError(f"levels {list(wanted)}: the VQ-VAE has levels 0..{vq.config.levels - 1}")
    identity = model_identity(model_dir)
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    ids = build_ids(report, prior, model_dir) if prior is not None else None
    level = prior.level if prior is not None else None
    reading = {reads(c) for c in conditioners if (level is None or c.level == level) and c.kind != "stem_codes"}
    skip = on_skip or (lambda _a, _p: None)
    items: list[PriorTrainItem] = []
    for n, piece in enumerate(report.pieces):
        audio_path = base / piece.audio
        try:
            codes, total = _codes(vq, audio_path, wanted, identity, cache)
        except (SegueError, OSError, ValueError, RuntimeError) as exc:
            skip(piece.audio, f"left out: {exc}")
            if progress is not None:
                progress(n + 1, len(report.pieces))
            continue
        artist_id, genre_ids = 0, tuple[int, ...]()
        if ids is not None and prior is not None and prior.labels.enabled:
            artist_id = ids.artists.lookup(piece.artist, strict=False).ids[0]
            genre_ids = ids.genres.lookup(piece.genre, strict=False).ids[: prior.labels.max_bow_genre_size]
        item = PriorTrainItem(
            codes=codes, total_length=total, artist_id=artist_id, genre_ids=tuple(genre_ids),
            lyrics=piece.lyrics, words=tuple((str(w), float(a), float(b)) for w, a, b in piece.words or ()),
            conditions=_conditions(piece, base, sr, reading, skip),
        )  # fmt: skip
        if prior is not None:  # the trainer must accept it alone: one window at least, labels in range
            try:
                PriorWindows(prior, [item], [c for c in conditioners if c.level == prior.level])
            except InputError as exc:
                skip(piece.audio, f"left out: {str(exc).replace('training item 0: ', '')}")
                if progress is not None:
                    progress(n + 1, len(report.pieces))
                continue
        items.append(item)
        if progress is not None:
            progress(n + 1, len(report.pieces))
    return items


def _codes(
    vq: Any, audio_path: Path, levels: tuple[int, ...], identity: str, cache: Path
) -> tuple[dict[int, np.ndarray], int]:
    """(level -> (T_level,) int64 codes, length in samples at the VQ-VAE's rate), from the cache or encoded."""
    file = cache / f"{_cache_key(audio_path, identity, levels)}.npz"
    if file.is_file():
        try:
            with np.load(file) as saved:
                return {lv: saved[f"level_{lv}"].astype(np.int64) for lv in levels}, int(saved["total_length"])
        except (OSError, KeyError, ValueError):
            pass  # a damaged cache entry: encode again
    audio = read_audio(audio_path, sample_rate=vq.config.sample_rate, channels=1)
    samples = torch.from_numpy(np.ascontiguousarray(audio.samples[:, :1], dtype=np.float32))[None]  # (1, T, 1)
    encoded = vq.encode(samples, levels=list(levels))
    codes = {lv: c[0].numpy().astype(np.int64) for lv, c in zip(levels, encoded, strict=True)}
    total = int(samples.shape[1])
    tmp = file.with_suffix(".tmp.npz")
    np.savez(tmp, total_length=np.int64(total), **{f"level_{lv}": c for lv, c in codes.items()})
    os.replace(tmp, file)
    return codes, total


def _conditions(piece: PieceEntry, base: Path, sr: int, reading: set[str], skip: SkipFn) -> JobConditions:
    midi = None
    if piece.midi and MIDI in reading:
        try:
            midi = read_midi((base / piece.midi).read_bytes(), piece.midi)
        except (SegueError, OSError) as exc:
            skip(piece.audio, f"MIDI {piece.midi} left out: {exc}")
    stems = []
    for label, path in sorted(piece.stems.items()):
        if label not in reading:
            continue
        try:
            stem = read_audio(base / path, sample_rate=sr, channels=1)
            stems.append(StemCondition(label, stem.samples, sr, 0.0))
        except (SegueError, OSError) as exc:
            skip(piece.audio, f"stem {path} left out: {exc}")
    if midi is None and not stems:
        return JobConditions()
    return JobConditions(take_start_s=0.0, midi=midi, midi_start_s=0.0, stems=tuple(stems))


__all__ = ["LabelIds", "build_ids", "encode_index", "read_index"]
