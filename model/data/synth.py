"""``segue data synth``: a training set of procedural pieces, rendered with FluidSynth and espeak-ng.

Plan (deterministic from the arguments alone): piece ``i`` (0, 1, ...) has seed
``piece_seed(seed, i) = seed * 100003 + i`` (100003 is prime and larger than any piece count, so two
dataset seeds never share a piece seed below 100003 pieces), style ``styles()[(seed + i) % n]``
(round-robin, starting where the seed says) and a length drawn uniformly from ``piece_seconds``
(default 20-60 s, 0.1 s steps) by ``numpy.random.default_rng([seed, i])``. Pieces are added until
their lengths reach ``hours``; the last one is shortened to what remains (but not below the range's
minimum), so the total is ``hours`` give or take one minimum length.

Layout (docs/training.md, "Rendering a training set"):

    OUT_DIR/synth.json                 the arguments that define the set (checked on every re-run)
    OUT_DIR/index.json                 the finished pieces, rewritten atomically after each one
    OUT_DIR/pieces/<id>/mix.wav        32-bit float WAV, the sum of the stems
    OUT_DIR/pieces/<id>/stems/<group>.wav   one per present group (drums bass keys strings leads vocals)
    OUT_DIR/pieces/<id>/piece.mid      the composition's MIDI (every instrument, the vocal melody too)
    OUT_DIR/pieces/<id>/meta.json      labels, tempo map, key, sections, lyrics with word times, provenance

A piece is rendered into ``pieces/.partial-<id>-<random>/`` and renamed to ``pieces/<id>`` when
every file is written, so ``pieces/<id>`` is always complete and the index lists only those;
re-running with the same arguments skips them (resumable), and leftover partial folders are removed.
Pieces render in a pool of ``jobs`` processes (FluidSynth and the PSOLA are single-threaded).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import multiprocessing
import os
import secrets
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import InputError
from model.atomic import atomic_path, atomic_write_text
from model.audio import write_audio
from model.data import render as R

SYNTH_FORMAT = "segue-data-synth"
SYNTH_VERSION = 1
SEED_STRIDE = 100003
DEFAULT_PIECE_SECONDS = (20.0, 60.0)
MAX_HOURS = 1000.0
PARTIAL_PREFIX = ".partial-"
SOUNDFONT_LICENCES = {
    "FluidR3_GM.sf2": "MIT (Copyright 2000-2002, 2008 Frank Wen; Debian package fluid-soundfont-gm)",
}


def piece_seed(seed: int, index: int) -> int:
    return int(seed) * SEED_STRIDE + int(index)


@dataclass(frozen=True)
class PieceSpec:
    index: int
    id: str
    seed: int
    style: str
    seconds: float


def plan(hours: float, seed: int, styles: Sequence[str], piece_seconds: tuple[float, float] = DEFAULT_PIECE_SECONDS) -> list[PieceSpec]:
    """The pieces of a set (module docstring); a pure function of its arguments."""
    if not styles:
        raise InputError("the composer offers no styles")
    lo, hi = piece_seconds
    target = hours * 3600.0
    specs: list[PieceSpec] = []
    total = 0.0
    i = 0
    while total < target - 1e-9:
        rng = np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, i])
        seconds = round(float(rng.uniform(lo, hi)), 1)
        seconds = max(lo, min(seconds, round(target - total, 1)))
        specs.append(PieceSpec(i, f"{i:06d}", piece_seed(seed, i), styles[(seed + i) % len(styles)], seconds))
        total += seconds
        i += 1
    return specs


def _segue_version() -> str:
    from importlib import metadata

    try:
        return metadata.version("segue")
    except metadata.PackageNotFoundError:
        return "unknown"


def _tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, timeout=30, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    lines = out.stdout.decode("utf-8", "replace").strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def check_arguments(hours: float, seed: int, sample_rate: int, jobs: int, piece_seconds: tuple[float, float]) -> None:
    if not isinstance(hours, (int, float)) or not math.isfinite(hours) or not 0 < hours <= MAX_HOURS:
        raise InputError(f"--hours {hours}: give a finite number of hours, 0 < H <= {MAX_HOURS:g}")
    if not 0 <= int(seed) < 2**63 // SEED_STRIDE:
        raise InputError(f"--seed {seed}: give 0 <= seed < {2**63 // SEED_STRIDE}")
    if not 8000 <= int(sample_rate) <= 192000:
        raise InputError(f"--sample-rate {sample_rate}: give 8000 to 192000 Hz")
    if not 1 <= int(jobs) <= 256:
        raise InputError(f"--jobs {jobs}: give 1 to 256 processes")
    lo, hi = piece_seconds
    if not (math.isfinite(lo) and math.isfinite(hi) and 1.0 <= lo <= hi <= 600.0):
        raise InputError(f"--piece-seconds {lo:g} {hi:g}: give 1 <= MIN <= MAX <= 600")


def _settings(hours: float, seed: int, sample_rate: int, channels: int, piece_seconds: tuple[float, float],
              soundfont: Path, composer: str) -> dict[str, Any]:  # fmt: skip
    return {
        "format": SYNTH_FORMAT, "version": SYNTH_VERSION, "hours": float(hours), "seed": int(seed),
        "sample_rate": int(sample_rate), "channels": int(channels), "piece_seconds": [float(x) for x in piece_seconds],
        "soundfont": {"name": soundfont.name, "bytes": soundfont.stat().st_size}, "composer": composer,
    }  # fmt: skip


_FLAGS = {"hours": "--hours", "seed": "--seed", "sample_rate": "--sample-rate", "piece_seconds": "--piece-seconds",
          "soundfont": "--soundfont", "channels": "channels", "composer": "composer", "format": "format", "version": "version"}  # fmt: skip


def _check_existing(out_dir: Path, settings: dict[str, Any]) -> None:
    path = out_dir / "synth.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path} is unreadable ({exc}); remove {out_dir} or choose another OUT_DIR") from exc
        diffs = [f"{_FLAGS.get(k, k)} {_show(old.get(k))} (now {_show(settings[k])})"
                 for k in settings if old.get(k) != settings[k]]  # fmt: skip
        if diffs:
            raise InputError(f"{out_dir} was made with other arguments: {'; '.join(diffs)}; "
                             "re-run with the same ones to resume, or choose another OUT_DIR")  # fmt: skip
        return
    if out_dir.exists() and (not out_dir.is_dir() or any(p.name != ".lock" for p in out_dir.iterdir())):
        raise InputError(f"{out_dir} exists and is not a segue data synth folder (no synth.json); choose an empty or new OUT_DIR")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(settings, indent=2) + "\n")


def _show(v: Any) -> str:
    if isinstance(v, dict) and "name" in v:
        return f"{v['name']} ({v.get('bytes')} bytes)"
    if isinstance(v, list):
        return " ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
    return "none" if v is None else f"{v:g}" if isinstance(v, float) else str(v)


@contextlib.contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".lock", "a+") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise InputError(f"{out_dir} is being written by another segue data synth") from exc
        yield


# ---------------------------------------------------------------- one piece (runs in a worker process)

_SFC_SET_ADD_PEAK_CHUNK = 0x1050  # libsndfile's command; its float-WAV PEAK chunk holds the time of writing


def write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """32-bit float WAV, atomically, without libsndfile's timestamped PEAK chunk: the same samples give the
    same bytes, so a set re-rendered from its seed can be compared (or checksummed) file by file."""
    import soundfile as sf

    snd, ffi = getattr(sf, "_snd", None), getattr(sf, "_ffi", None)
    if snd is None or ffi is None:  # a soundfile without its cffi handles: same samples, dated header
        write_audio(path, samples, sample_rate)
        return
    data = np.asarray(samples, dtype=np.float32)
    with atomic_path(path) as tmp, sf.SoundFile(str(tmp), "w", int(sample_rate), 1 if data.ndim == 1 else data.shape[1],
                                                subtype="FLOAT", format="WAV") as handle:  # fmt: skip
        snd.sf_command(handle._file, _SFC_SET_ADD_PEAK_CHUNK, ffi.NULL, 0)
        handle.write(data)

@dataclass(frozen=True)
class _Job:
    spec: PieceSpec
    out_dir: str
    dataset_seed: int
    sample_rate: int
    channels: int
    soundfont: str
    tools: dict[str, str]
    composer: Callable[..., Any] | None  # None: model.data.compose.compose


def _meta(comp: Any, job: _Job, rendered: R.Rendered) -> dict[str, Any]:
    midi = comp.midi
    times, tempi = midi.get_tempo_changes()
    group_of = {i: g for g, idx in comp.groups.items() for i in idx}
    sf2 = Path(job.soundfont)
    return {
        "id": job.spec.id, "index": job.spec.index, "seed": job.spec.seed, "dataset_seed": job.dataset_seed,
        "style": job.spec.style, "artist": comp.artist, "genre": comp.genre, "bpm": float(comp.bpm),
        "time_signature": list(comp.time_signature),
        "tempo_map": [{"time_s": float(t), "bpm": float(b)} for t, b in zip(times, tempi)],
        "time_signatures": [{"time_s": float(ts.time), "numerator": ts.numerator, "denominator": ts.denominator}
                            for ts in midi.time_signature_changes],
        "key": comp.key,
        "sections": [{"name": n, "start_s": float(a), "end_s": float(b)} for n, a, b in comp.sections],
        "chords": [{"name": c.name, "start_s": float(c.start_s), "end_s": float(c.end_s), "root": int(c.root),
                    "bass": int(c.bass), "pitch_classes": [int(p) for p in c.pitch_classes]}
                   for c in getattr(comp, "chords", ())],
        "lyrics": comp.lyrics,
        "words": [{"text": w.text, "start_s": float(w.start_s), "end_s": float(w.end_s), "pitch": int(w.pitch)} for w in comp.words],
        "instruments": [{"index": i, "name": inst.name, "program": int(inst.program), "is_drum": bool(inst.is_drum),
                         "group": group_of.get(i), "notes": len(inst.notes)} for i, inst in enumerate(midi.instruments)],
        "seconds": float(comp.seconds), "sample_rate": job.sample_rate, "channels": job.channels,
        "files": {"mix": "mix.wav", "midi": "piece.mid", "stems": {g: f"stems/{g}.wav" for g in rendered.stems}},
        "stem_groups_absent": [g for g in R.STEM_GROUPS if g not in rendered.stems],
        "mix_gain": rendered.gain, "headroom_db": R.DEFAULT_HEADROOM_DB,
        "vocals": "espeak-ng words tuned and timed to the vocal melody by TD-PSOLA; the vocal MIDI part is not rendered",
        "soundfont": {"name": sf2.name, "licence": SOUNDFONT_LICENCES.get(sf2.name, "unknown: check the soundfont's own licence")},
        "tools": job.tools, "segue_version": _segue_version(),
    }  # fmt: skip


def _render_piece(job: _Job) -> dict[str, Any]:
    """Compose, render and write one piece into a partial folder, then rename it into place."""
    spec = job.spec
    pieces = Path(job.out_dir) / "pieces"
    final = pieces / spec.id
    if (final / "meta.json").is_file():
        return _summary(json.loads((final / "meta.json").read_text(encoding="utf-8")))
    compose_fn: Callable[..., Any]
    if job.composer is None:
        from model.data import compose as composer_module

        compose_fn = composer_module.compose
    else:
        compose_fn = job.composer
    comp = compose_fn(spec.seed, spec.style, seconds=spec.seconds)
    tmp = pieces / f"{PARTIAL_PREFIX}{spec.id}-{secrets.token_hex(4)}"
    tmp.mkdir(parents=True)
    try:
        rendered = R.render(comp, sample_rate=job.sample_rate, channels=job.channels, soundfont=job.soundfont, workdir=tmp)
        (tmp / "stems").mkdir()
        write_wav(tmp / "mix.wav", rendered.mix, job.sample_rate)
        for group, stem in rendered.stems.items():
            write_wav(tmp / "stems" / f"{group}.wav", stem, job.sample_rate)
        comp.midi.write(str(tmp / "piece.mid"))
        meta = _meta(comp, job, rendered)
        atomic_write_text(tmp / "meta.json", json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
        os.rename(tmp, final)
        _fsync_dir(pieces)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _summary(meta)


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):  # some file systems refuse directory fsync; the rename stands anyway
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _summary(meta: dict[str, Any]) -> dict[str, Any]:
    return {"id": meta["id"], "path": f"pieces/{meta['id']}", "seed": meta["seed"], "style": meta["style"],
            "artist": meta["artist"], "genre": meta["genre"], "seconds": meta["seconds"],
            "stems": sorted(meta["files"]["stems"], key=R.STEM_GROUPS.index)}  # fmt: skip


# ---------------------------------------------------------------- the set

@dataclass(frozen=True)
class SynthReport:
    out_dir: Path
    pieces: int
    rendered: int
    skipped: int
    seconds: float


def _write_index(out_dir: Path, settings: dict[str, Any], done: dict[str, dict[str, Any]], planned: int) -> None:
    pieces = [done[k] for k in sorted(done)]
    index = {"format": SYNTH_FORMAT, "version": SYNTH_VERSION, "settings": settings, "planned_pieces": planned,
             "complete": len(pieces) == planned, "seconds": round(sum(p["seconds"] for p in pieces), 3), "pieces": pieces}  # fmt: skip
    atomic_write_text(out_dir / "index.json", json.dumps(index, indent=2, ensure_ascii=False) + "\n")


def synth_dataset(out_dir: str | os.PathLike[str], hours: float, seed: int, *, sample_rate: int = 22050, jobs: int = 2,
                  soundfont: str | os.PathLike[str] | None = None, channels: int = 1,
                  piece_seconds: tuple[float, float] = DEFAULT_PIECE_SECONDS,
                  composer: Callable[..., Any] | None = None, styles: Sequence[str] | None = None,
                  progress: Callable[[int, int], None] | None = None) -> SynthReport:  # fmt: skip
    """Render ``hours`` of pieces into ``out_dir`` (module docstring). ``composer``/``styles`` default to
    ``model.data.compose``'s (tests pass their own; a composer must be picklable when ``jobs`` > 1).
    ``progress(done, total)`` is called after each piece."""
    check_arguments(hours, seed, sample_rate, jobs, piece_seconds)
    if channels not in (1, 2):
        raise InputError(f"channels {channels}: give 1 or 2")
    sf2 = R.check_tools(soundfont)
    if composer is None:
        from model.data import compose as composer_module

        low, high = getattr(composer_module, "MIN_SECONDS", 1.0), getattr(composer_module, "MAX_SECONDS", 600.0)
        if not low <= piece_seconds[0] <= piece_seconds[1] <= high:
            raise InputError(f"--piece-seconds {piece_seconds[0]:g} {piece_seconds[1]:g}: the composer writes pieces "
                             f"of {low:g} to {high:g} s")  # fmt: skip
        if styles is None:
            styles = composer_module.styles()
    if styles is None:
        raise InputError("give the styles of your own composer")
    composer_name = "model.data.compose" if composer is None else f"{composer.__module__}.{composer.__qualname__}"
    out = Path(out_dir)
    settings = _settings(hours, seed, sample_rate, channels, piece_seconds, sf2, composer_name)
    specs = plan(hours, seed, tuple(styles), piece_seconds)
    tools = {"fluidsynth": _tool_version(["fluidsynth", "--version"]), "espeak-ng": _tool_version(["espeak-ng", "--version"])}
    with _locked(out):
        _check_existing(out, settings)
        pieces = out / "pieces"
        pieces.mkdir(exist_ok=True)
        for stale in pieces.glob(f"{PARTIAL_PREFIX}*"):  # a run that was killed mid-piece
            shutil.rmtree(stale, ignore_errors=True)
        done: dict[str, dict[str, Any]] = {}
        todo: list[_Job] = []
        for spec in specs:
            meta_path = pieces / spec.id / "meta.json"
            if meta_path.is_file():
                done[spec.id] = _summary(json.loads(meta_path.read_text(encoding="utf-8")))
            else:
                if (pieces / spec.id).exists():  # ours are renamed into place complete: this is someone else's
                    raise InputError(f"{pieces / spec.id} exists without meta.json (not written by segue data synth); move it away")
                todo.append(_Job(spec, str(out), int(seed), int(sample_rate), channels, str(sf2), tools, composer))
        skipped = len(done)
        _write_index(out, settings, done, len(specs))
        if progress:
            progress(len(done), len(specs))
        if todo:
            if jobs == 1 or len(todo) == 1:
                results: Iterator[dict[str, Any]] = map(_render_piece, todo)
                _collect(results, out, settings, done, len(specs), progress)
            else:
                ctx = multiprocessing.get_context("spawn")  # no fork of a parent that may hold threads or torch
                with ctx.Pool(min(jobs, len(todo))) as pool:
                    _collect(pool.imap_unordered(_render_piece, todo), out, settings, done, len(specs), progress)
    return SynthReport(out, len(specs), len(done) - skipped, skipped, sum(p["seconds"] for p in done.values()))


def _collect(results: Iterator[dict[str, Any]], out: Path, settings: dict[str, Any], done: dict[str, dict[str, Any]],
             planned: int, progress: Callable[[int, int], None] | None) -> None:  # fmt: skip
    for summary in results:
        done[summary["id"]] = summary
        _write_index(out, settings, done, planned)
        if progress:
            progress(len(done), planned)

