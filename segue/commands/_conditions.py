"""The job conditions of ``segue sample`` and ``segue labels``: their flags, and the files they name read
into a ``model.tasks.conditions.JobConditions`` with one-line errors (``InputError``) naming the flag and
the file.

Files are read here, in the command layer (``conditioning`` takes bytes and arrays): a MIDI file's size is
checked before it is read, a stem's length before it is decoded. Flags, all in project seconds:

  --midi FILE                 a MIDI clip; its time 0 sits at --midi-start S (default: --region-start)
  --midi-bar B [--midi-beat B]  or at bar B beat B (1-based) of the tempo map
  --stem NAME=FILE[@START_S]  a stem (repeatable); its first sample at START_S (default: --region-start)
  --bpm BPM | --tempo-map T:BPM,...  the project's tempo (the beat grid); --time-signature N/D (default 4/4)
  --region-start S            project time of the task's first input sample (default 0)
  --guidance NAME[@LEVEL]=SCALE  classifier-free guidance of one condition (``segue sample``)

torch is not imported here: the parser and ``segue labels`` stay cheap.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import CheckpointError, ConfigError, InputError

if TYPE_CHECKING:
    from conditioning.tempo import TempoMap
    from model.conditioners.config import ConditionerConfig
    from model.sampling.params import Guidance
    from model.tasks.conditions import JobConditions

_STEM_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")  # a conditioner's name (model/conditioners/config.py)
_SIGNATURE = re.compile(r"\s*(\d{1,3})\s*/\s*(\d{1,3})\s*")


@dataclass(frozen=True)
class StemFlag:
    """One ``--stem NAME=FILE[@START_S]``; ``start_s`` None: at ``--region-start``."""

    name: str
    path: Path
    start_s: float | None = None


def _stem_flag(text: str) -> StemFlag:
    name, eq, rest = text.partition("=")
    name = name.strip()
    if not eq or not rest:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=FILE or NAME=FILE@START_S (for example drums=drums.wav@8)")
    if not _STEM_NAME.fullmatch(name):
        raise argparse.ArgumentTypeError(f"stem label {name!r}: use 1-32 lower-case letters, digits or '_', starting with a letter")
    path, at, start = rest.rpartition("@")
    if at:
        try:
            seconds = float(start)
        except ValueError:
            seconds = None  # an '@' inside the file name
        if seconds is not None:
            if not math.isfinite(seconds):
                raise argparse.ArgumentTypeError(f"{text!r}: the start {start!r} is not a finite number of seconds")
            return StemFlag(name, Path(path), seconds)
    return StemFlag(name, Path(rest))


def _tempo_map_flag(text: str) -> tuple[tuple[float, float], ...]:
    changes = []
    for part in text.split(","):
        time, colon, bpm = part.partition(":")
        try:
            changes.append((float(time), float(bpm)))
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a tempo map T:BPM[,T:BPM...] (for example 0:120,32:90)"
            ) from None
        if not colon:
            raise argparse.ArgumentTypeError(f"{text!r}: each change is T:BPM (seconds:tempo)")
    return tuple(changes)


def _signature_flag(text: str) -> tuple[int, int]:
    m = _SIGNATURE.fullmatch(text)
    if m is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time signature N/D (for example 4/4 or 6/8)")
    return int(m.group(1)), int(m.group(2))


def _guidance_flag(text: str) -> Guidance:
    from model.sampling.params import parse_guidance

    try:
        return parse_guidance(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_condition_arguments(parser: argparse.ArgumentParser, *, region: str, guidance: bool = True) -> None:
    """The condition flags; ``region`` says what ``--region-start`` places (in the help)."""
    g = parser.add_argument_group("conditions (MIDI, stems, beat grid; project seconds)")
    a = g.add_argument
    a("--midi", type=Path, metavar="FILE", help="a MIDI clip (.mid) to steer by; the model needs a midi conditioner")
    place = g.add_mutually_exclusive_group()
    place.add_argument("--midi-start", type=float, metavar="S", help="project time of the clip's time 0 (default: --region-start)")
    place.add_argument("--midi-bar", type=float, metavar="B", help="or: place the clip's time 0 at bar B (1-based, needs --bpm or --tempo-map)")
    a("--midi-beat", type=float, metavar="B", help="with --midi-bar: the beat in the bar (1-based, default 1)")
    a("--stem", type=_stem_flag, action="append", default=[], metavar="NAME=FILE[@START_S]",
      help="an audio stem labelled NAME (a stem conditioner of the model), its first sample at project time START_S "
           "(default: --region-start); repeatable")  # fmt: skip
    tempo = g.add_mutually_exclusive_group()
    tempo.add_argument("--bpm", type=float, metavar="BPM", help="the project's tempo (quarter notes per minute): the beat grid")
    tempo.add_argument("--tempo-map", type=_tempo_map_flag, metavar="T:BPM,...", help="or: tempo changes at project seconds T, e.g. 0:120,32:90")
    a("--time-signature", type=_signature_flag, metavar="N/D", help="of the beat grid (default 4/4)")
    a("--region-start", type=float, default=0.0, metavar="S", help=f"project time of {region} (default 0)")
    if guidance:
        a("--guidance", type=_guidance_flag, action="append", default=[], metavar="NAME[@LEVEL]=SCALE",
          help="classifier-free guidance of condition NAME (midi, grid or a stem's label), at every level or at "
               "LEVEL: 0 = none, 1..3 usual, -1..20; repeatable")  # fmt: skip


def given(args: argparse.Namespace) -> bool:
    """Whether any condition flag was given (an unconditioned run reads nothing and changes nothing)."""
    return bool(args.midi or args.stem or args.bpm is not None or args.tempo_map)


# ---- reading them -----------------------------------------------------------------------------------
def check_condition_flags(args: argparse.Namespace) -> None:
    """The condition flags' values and files, before any model work: each problem a one-line error."""
    if not math.isfinite(args.region_start):
        raise InputError(f"--region-start {args.region_start} is not a finite number of seconds")
    if args.midi_start is not None and not math.isfinite(args.midi_start):
        raise InputError(f"--midi-start {args.midi_start} is not a finite number of seconds")
    if args.midi is None and (args.midi_start is not None or args.midi_bar is not None or args.midi_beat is not None):
        raise InputError("--midi-start, --midi-bar and --midi-beat place a --midi FILE: give one")
    if args.midi_beat is not None and args.midi_bar is None:
        raise InputError("--midi-beat goes with --midi-bar B (a clip placed by --midi-start takes no beat)")
    no_tempo = args.bpm is None and not args.tempo_map
    if args.midi_bar is not None and no_tempo:
        raise InputError("--midi-bar needs the project's tempo: give --bpm BPM or --tempo-map T:BPM,...")
    if args.time_signature is not None and no_tempo:
        raise InputError("--time-signature needs the project's tempo: give --bpm BPM or --tempo-map T:BPM,...")
    tempo_map(args)  # bpm range, order of the changes, the signature
    if args.midi is not None:
        _check_file("--midi", args.midi)
    labels = [s.name for s in args.stem]
    for stem in args.stem:
        _check_file(f"--stem {stem.name}=", stem.path)
    repeated = sorted({n for n in labels if labels.count(n) > 1})
    if repeated:
        raise InputError(f"--stem: {', '.join(repeated)} given more than once; give each stem its own label")


def _check_file(flag: str, path: Path) -> None:
    sep = "" if flag.endswith("=") else " "
    if not path.exists():
        raise InputError(f"{flag}{sep}{path}: no such file")
    if not path.is_file():
        raise InputError(f"{flag}{sep}{path}: is a folder, not a file" if path.is_dir() else f"{flag}{sep}{path}: is not a regular file")


def tempo_map(args: argparse.Namespace) -> TempoMap | None:
    """``--bpm`` / ``--tempo-map`` with ``--time-signature`` (None when no tempo is given)."""
    from conditioning.tempo import TempoMap

    if args.bpm is None and not args.tempo_map:
        return None
    changes = [(0.0, args.bpm)] if args.bpm is not None else list(args.tempo_map)
    flag = "--bpm" if args.bpm is not None else "--tempo-map"
    try:
        return TempoMap(changes, args.time_signature or (4, 4))
    except InputError as exc:
        raise InputError(f"{flag}/--time-signature: {exc}") from None


def read_midi_file(path: Path) -> bytes:
    """The bytes of ``--midi`` ``path``, refused when larger than any MIDI clip conditioning reads."""
    from conditioning.midi import MAX_BYTES

    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise InputError(
                f"--midi {path}: is {size / 2**20:.1f} MiB; a MIDI clip is at most {MAX_BYTES / 2**20:g} MiB "
                "(is it a MIDI file?)"
            )
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"--midi {path}: cannot be read ({exc.strerror})") from exc


def read_stem_file(stem: StemFlag) -> tuple[object, int]:
    """``(samples (S, C) float32, sample_rate)`` of one ``--stem`` file, its length checked before decoding."""
    import numpy as np
    import soundfile as sf

    from conditioning.stems import MAX_STEM_S

    where = f"--stem {stem.name}={stem.path}"
    try:
        info = sf.info(str(stem.path))
        if info.samplerate > 0 and info.frames / info.samplerate > MAX_STEM_S:
            raise InputError(f"{where}: is {info.frames / info.samplerate:.1f} s long; a stem is at most {MAX_STEM_S:g} s")
        samples, rate = sf.read(str(stem.path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise InputError(f"{where}: not an audio file soundfile can read ({exc.error_string})") from None
    except (OSError, RuntimeError) as exc:
        raise InputError(f"{where}: cannot be read ({exc})") from None
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)


def conditions_of(args: argparse.Namespace, take_start_s: float) -> JobConditions:
    """The ``JobConditions`` of the flags, the take starting at project time ``take_start_s``. Every file's
    problem is an ``InputError`` naming the flag and the file (``conditioning``'s own checks included)."""
    from conditioning.midi import read_midi
    from model.tasks.conditions import JobConditions, StemCondition

    tempo = tempo_map(args)
    clip, midi_start = None, float(args.region_start)
    if args.midi is not None:
        try:
            clip = read_midi(read_midi_file(args.midi), str(args.midi))
        except InputError as exc:
            raise InputError(str(exc) if str(exc).startswith("--midi") else f"--midi: {exc}") from None
        if args.midi_bar is not None:
            assert tempo is not None  # check_condition_flags
            midi_start = tempo.clip_start(bar=args.midi_bar, beat=1.0 if args.midi_beat is None else args.midi_beat)
        elif args.midi_start is not None:
            midi_start = float(args.midi_start)
    stems = []
    for flag in args.stem:
        samples, rate = read_stem_file(flag)
        start = float(args.region_start) if flag.start_s is None else flag.start_s
        stems.append(StemCondition(flag.name, samples, rate, start))  # type: ignore[arg-type]
    return JobConditions(take_start_s=take_start_s, midi=clip, midi_start_s=midi_start, stems=tuple(stems), tempo=tempo)


def describe(args: argparse.Namespace, conditions: JobConditions) -> dict[str, object]:
    """The conditions as run.json records them (files, placements, tempo, guidance)."""
    return {
        "take_start_s": conditions.take_start_s,
        "region_start_s": float(args.region_start),
        "midi": None if args.midi is None else {"file": str(args.midi), "start_s": conditions.midi_start_s},
        "stems": [{"name": s.name, "file": str(f.path), "start_s": s.start_s, "sample_rate": s.sample_rate}
                  for s, f in zip(conditions.stems, args.stem)],  # fmt: skip
        "tempo_map": None if conditions.tempo is None else [list(c) for c in conditions.tempo.changes],
        "time_signature": None if conditions.tempo is None else list(conditions.tempo.time_signature),
        "guidance": [{"condition": g.condition, "scale": g.scale, "level": g.level} for g in getattr(args, "guidance", [])],
    }


def analyse_stems(
    args: argparse.Namespace, conditions: JobConditions, configs: dict[int, tuple[ConditionerConfig, ...]],
    sample_rate: int, hops: tuple[int, ...],
) -> None:  # fmt: skip
    """Analyse each stem for every level whose conditioner reads it, before the model loads: a bad stem
    (NaN samples, an odd rate...) is named with its file now, and sampling reuses the analyses."""
    files = {f.name: f.path for f in args.stem}
    for level, level_configs in configs.items():
        for config in level_configs:
            if config.kind == "stem" and config.name in files:
                try:
                    conditions.analysis(config.name, sample_rate, hops[level])
                except InputError as exc:
                    raise InputError(f"--stem {config.name}={files[config.name]}: {exc}") from None


def guidance_for(guidance: list[Guidance], configs: dict[int, tuple[ConditionerConfig, ...]]) -> tuple[Guidance, ...]:
    """``--guidance`` with each every-level entry (``midi=2``) given to the levels whose conditioners read
    that condition (the model refuses guidance at a level without the conditioner); a level-specific entry
    (``midi@2=3``) still wins at its level. An every-level entry no level reads is kept as it is, so the
    model's error names it."""
    from model.sampling.params import Guidance

    spread: list[Guidance] = []
    for g in guidance:
        levels = [lv for lv, cs in configs.items() if any(c.name == g.condition for c in cs)]
        if g.level is None and levels:
            spread += [Guidance(g.condition, g.scale, lv) for lv in levels]
        elif g.level is None:
            spread.append(g)
    return (*spread, *(g for g in guidance if g.level is not None))


# ---- the model's conditioners, from its configs -----------------------------------------------------
def conditioner_configs(model_dir: Path) -> dict[int, tuple[ConditionerConfig, ...]]:
    """Level -> the model directory's MIDI, stem and grid conditioners, read from their config JSON alone
    (no weights, no torch), for checks before a model loads and for ``segue labels``."""
    from model.checkpoint.model_dir import read_manifest
    from model.conditioners.config import ConditionerConfig
    from model.tasks.capabilities import CONDITIONER_KIND, feature_conditioners

    feature_conditioners(model_dir)  # the component names, checked
    out: dict[int, list[ConditionerConfig]] = {}
    for entry in read_manifest(model_dir).components:
        if entry.kind != CONDITIONER_KIND:
            continue
        path = model_dir / entry.config_file
        try:
            document = json.loads(path.read_text(encoding="utf-8"))
            config = ConditionerConfig.from_dict(dict(document["config"]))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{path}: not a readable conditioner config ({exc})") from None
        except ConfigError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        out.setdefault(config.level, []).append(config)
    return {lv: tuple(configs) for lv, configs in sorted(out.items())}
