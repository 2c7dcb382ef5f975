"""``segue eval adherence``: how closely audio follows its MIDI and stems (``conditioning.adherence``).

Two ways in:

- **Takes you have**: ``segue eval adherence TAKE.wav ... --midi clip.mid --stem drums=kit.wav`` scores each
  file against the conditions (placed in project seconds like ``segue sample``'s; ``--take-start S`` is the
  project time of each file's first sample, default ``--region-start``).
- **A model on pieces**: ``segue eval adherence --model DIR --pieces pieces.json`` generates a take for each
  piece with its own conditions and scores it against them. ``--baseline shuffled`` also generates each
  piece with another piece's conditions (a seeded derangement, moved onto this piece's timeline) and scores
  that take against this piece's own conditions: the gap between the two is what the conditioning does.
  The chance level (each own take scored against another piece's conditions) comes with it.

``pieces.json``: ``{"pieces": [{"name": "riff", "region": "riff.wav", "region_start_s": 8, "midi": "riff.mid",
"midi_start_s": 8, "stems": [{"name": "drums", "path": "kit.wav", "start_s": 8}], "bpm": 120,
"time_signature": [4, 4], "artist": "...", "genre": "..."}, ...]}``; paths relative to the file. A piece with
a ``region`` is continued from its end, one without is generated from ``region_start_s``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import InputError

if TYPE_CHECKING:
    import numpy as np

    from conditioning.adherence import AdherenceReport
    from model.tasks.conditions import JobConditions

MAX_PIECES = 256
_PIECE_KEYS = {"name", "region", "region_start_s", "midi", "midi_start_s", "stems", "bpm", "time_signature",
               "artist", "genre"}  # fmt: skip


@dataclass(frozen=True)
class Piece:
    name: str
    conditions: JobConditions
    region: np.ndarray | None  # (R, 1) at the model's rate, or None: generate
    artist: str = "unknown"
    genre: str = "unknown"


def score_files(paths: list[Path], conditions: JobConditions) -> list[AdherenceReport]:
    """Each take file's adherence report (at the file's own rate, channels mixed), in the order given."""
    from model.audio import read_audio
    from model.tasks.render import take_adherence

    out = []
    for path in paths:
        audio = read_audio(path)
        (report,) = take_adherence(audio.samples[None], audio.sample_rate, conditions)
        out.append(report)
    return out


def _number(piece: str, key: str, value: object, default: float | None = None) -> float | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"piece {piece!r}: {key} must be a finite number, got {value!r}")
    return float(value)


def read_pieces(path: Path, sample_rate: int) -> list[Piece]:
    """The pieces of ``pieces.json`` with their files read (regions at ``sample_rate``, mono)."""
    from conditioning.midi import read_midi
    from conditioning.tempo import TempoMap
    from model.audio import read_audio
    from model.tasks.conditions import JobConditions, StemCondition
    from segue.commands._conditions import StemFlag, read_midi_file, read_stem_file

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"--pieces {path}: not a readable JSON file ({exc})") from None
    items = document.get("pieces") if isinstance(document, dict) else None
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_PIECES:
        raise InputError(f"--pieces {path}: needs {{\"pieces\": [...]}} with 1 to {MAX_PIECES} pieces")
    root = path.parent
    pieces = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InputError(f"--pieces {path}: piece {i} is not an object")
        name = str(item.get("name", f"piece-{i}"))
        unknown = sorted(set(item) - _PIECE_KEYS)
        if unknown:
            raise InputError(f"piece {name!r}: unknown key(s) {unknown}; known: {sorted(_PIECE_KEYS)}")
        start = _number(name, "region_start_s", item.get("region_start_s"), 0.0) or 0.0
        region = None
        take_start = start
        if item.get("region"):
            audio = read_audio(root / str(item["region"]), sample_rate=sample_rate, channels=1)
            region = audio.samples
            take_start = start + audio.frames / sample_rate
        clip, midi_start = None, start
        if item.get("midi"):
            midi_path = root / str(item["midi"])
            clip = read_midi(read_midi_file(midi_path), str(midi_path))
            midi_start = _number(name, "midi_start_s", item.get("midi_start_s"), start) or 0.0
        stems = []
        for s in item.get("stems") or []:
            if not isinstance(s, dict) or "name" not in s or "path" not in s:
                raise InputError(f"piece {name!r}: each stem is {{\"name\": ..., \"path\": ..., \"start_s\": ...}}")
            samples, rate = read_stem_file(StemFlag(str(s["name"]), root / str(s["path"])))
            stems.append(StemCondition(str(s["name"]), samples, rate,  # type: ignore[arg-type]
                                       _number(name, "start_s", s.get("start_s"), start) or 0.0))  # fmt: skip
        bpm = _number(name, "bpm", item.get("bpm"))
        tempo = None if bpm is None else TempoMap([(0.0, bpm)], tuple(item.get("time_signature") or (4, 4)))  # type: ignore[arg-type]
        conditions = JobConditions(take_start_s=take_start, midi=clip, midi_start_s=midi_start, stems=tuple(stems), tempo=tempo)
        if clip is None and not stems:
            raise InputError(f"piece {name!r}: has no midi and no stems: there is nothing to follow")
        pieces.append(Piece(name, conditions, region, str(item.get("artist", "unknown")), str(item.get("genre", "unknown"))))
    return pieces


def moved(conditions: JobConditions, take_start_s: float) -> JobConditions:
    """``conditions`` shifted in project time so that their take starts at ``take_start_s``."""
    from conditioning.tempo import TempoMap
    from model.tasks.conditions import JobConditions

    shift = take_start_s - conditions.take_start_s
    tempo = conditions.tempo
    if tempo is not None:
        tempo = TempoMap([(t + shift, bpm) for t, bpm in tempo.changes], tempo.time_signature)
    return JobConditions(take_start_s=take_start_s, midi=conditions.midi, midi_start_s=conditions.midi_start_s + shift,
                         stems=tuple(replace(s, start_s=s.start_s + shift) for s in conditions.stems), tempo=tempo)  # fmt: skip


def run_model(args: Any) -> dict[str, Any]:
    """Generate and score every piece of ``args.pieces`` (and, with ``--baseline shuffled``, the shuffled runs)."""
    from conditioning.adherence import BaselineReport, derangement
    from model import tasks
    from model.sampling.hooks import Hooks
    from model.sampling.params import SamplingParams
    from model.tasks.render import take_adherence
    from model.tasks.song import Labelling, Song
    from segue.commands._model import load_for_sampling
    from segue.progress_bars import ProgressBars

    _, model = load_for_sampling(args.model, args.device, precision=args.precision, step=args.step)
    rate = model.geometry.sample_rate
    pieces = read_pieces(args.pieces, rate)
    if args.baseline == "shuffled" and len(pieces) < 2:
        raise InputError("--baseline shuffled needs at least 2 pieces: each is generated with another's conditions")
    frames = max(1, round(args.length * rate))
    params = SamplingParams(n_candidates=1, seeds=(args.seed,), precision=args.precision)
    labelling = Labelling(args.ids or args.model / "ids", strict=True)

    def take(piece: Piece, conditions: JobConditions, bars: Any) -> np.ndarray:
        song = Song(piece.artist, piece.genre)
        kw: dict[str, Any] = {"lowest_level": args.lowest_level, "conditions": conditions, "hooks": Hooks(progress=bars)}
        if piece.region is not None:
            return tasks.continue_region(model, piece.region, frames, song, params, labelling, **kw).audio
        return tasks.generate(model, frames, song, params, labelling, **kw).audio  # (1, frames, 1)

    with ProgressBars() as bars:
        own = [take(p, p.conditions, bars) for p in pieces]
        matched = tuple(take_adherence(a, rate, p.conditions)[0] for a, p in zip(own, pieces))
        report: dict[str, Any] = {"pieces": [p.name for p in pieces], "seed": args.seed, "length_s": frames / rate,
                                  "matched": [r.to_dict() for r in matched]}  # fmt: skip
        if args.baseline == "shuffled":
            order = derangement(len(pieces), args.seed)
            other = [moved(pieces[j].conditions, pieces[i].conditions.take_start_s) for i, j in enumerate(order)]
            reruns = [take(pieces[i], other[i], bars) for i in range(len(pieces))]
            shuffled = tuple(take_adherence(a, rate, p.conditions)[0] for a, p in zip(reruns, pieces))
            chance = tuple(take_adherence(a, rate, c)[0] for a, c in zip(own, other))
            report["baseline"] = {"kind": "shuffled", **BaselineReport(order, matched, shuffled).to_dict()}
            report["chance"] = BaselineReport(order, matched, chance).to_dict()
    return report


def table(report: dict[str, Any]) -> str:
    """A markdown table of the means: matched, and the baselines when there are any."""
    base = report.get("baseline", {}).get("summary", {})
    chance = report.get("chance", {}).get("summary", {})
    rows = ["| metric | matched | model with shuffled conditions | own take vs other conditions (chance) |",
            "|---|---|---|---|"]  # fmt: skip
    names = sorted(set(base) | {k for r in report["matched"] for k, v in r.items()
                               if k in ("midi_chroma", "drum_onset_f1", "mean") and v is not None})  # fmt: skip
    for name in names:
        values = [r.get(name) for r in report["matched"] if isinstance(r.get(name), (int, float))]
        mean = round(sum(values) / len(values), 4) if values else None
        rows.append(f"| {name} | {mean} | {base.get(name, {}).get('shuffled')} | {chance.get(name, {}).get('shuffled')} |")
    return "\n".join(rows)
