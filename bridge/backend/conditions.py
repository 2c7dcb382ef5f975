"""A job's MIDI clip, stems, tempo map and guidance as the model's ``JobConditions`` and ``Guidance``.

The job's input files are the daemon's own spooled copies (``RenderStore.spool_input``); they are read
here once more through ``bridge.safe_open`` (no symlink followed, a regular file, a size limit on the
open descriptor), so an in-process caller's path is held to the same rules. Every problem is a
``SegueError`` naming the file as the client named it (``AudioInput.source_name``, or "sent as bytes")
and the problem: ``bad_input`` for MIDI, ``bad_audio`` for a stem that does not decode, ``too_large``
for a file over the limit. Nothing here touches the job's other inputs, so the job fails cleanly and
the daemon goes on with the next.

Placement (all in project seconds): the clip's time 0 at ``midi_start_s``, or at bar ``midi_start_bar``
beat ``midi_start_beat`` through the project's tempo map, else at the region's start; each stem's first
sample at its ``start_s``, else at the region's start; the take's first sample (``take_start_s``) at the
region's end for a continuation (``region_end_s``, or the region's start plus its length), else at
``project.generation_start_s``. The grid is the project's tempo map whenever the model has a grid
conditioner (every job has a project: without one, 120 bpm 4/4 from time 0).
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from bridge.jobs import AudioInput, JobKind, JobSpec
from bridge.safe_open import open_checked
from common.errors import AudioError, InputError, SegueError
from conditioning import midi as midi_module
from conditioning import stems as stems_module
from conditioning.midi import MidiClip
from conditioning.tempo import TempoMap
from model.audio import declared_seconds, read_audio
from model.conditioners.config import ConditionerConfig
from model.sampling.params import Guidance, parse_guidance
from model.tasks.conditions import GRID, MIDI, JobConditions, StemCondition
from model.tasks.conditions import reads as reads_condition

MAX_STEM_FILE_BYTES = 1 << 31  # the daemon's input limit applies first; this bounds an in-process caller


def shown(item: AudioInput) -> str:
    """The file as the client named it: its own file name, or "sent as bytes" for a ZeroMQ frame."""
    if item.source_name:
        return item.source_name
    if item.path is not None and not _spooled(item.path):
        return Path(item.path).name
    return "sent as bytes"


def _spooled(path: str) -> bool:
    """A file the engine wrote from client bytes (``inputs/<job>/input-<n>.<ext>``)."""
    p = Path(path)
    return p.parent.parent.name == "inputs" and p.name.startswith("input-")


def tempo_of(spec: JobSpec) -> TempoMap:
    project = spec.project
    return TempoMap([(t.time_s, t.bpm) for t in project.tempo_map], project.time_signature)


def midi_start_s(spec: JobSpec, tempo: TempoMap) -> float:
    """Project seconds of the MIDI clip's time 0 (see the module docstring)."""
    if spec.midi_start_bar is not None:
        beat = 1.0 if spec.midi_start_beat is None else spec.midi_start_beat
        return tempo.clip_start(bar=spec.midi_start_bar, beat=beat)
    if spec.midi_start_s is not None:
        return float(spec.midi_start_s)
    return spec.project.region_start_s


def take_start_s(spec: JobSpec, region_seconds: float | None) -> float:
    """Project seconds of the take's first sample: the region's end for a continuation."""
    project = spec.project
    if spec.kind is JobKind.CONTINUE:
        if project.region_end_s is not None:
            return project.region_end_s
        return project.region_start_s + (region_seconds or 0.0)
    return project.generation_start_s


def job_conditions(
    spec: JobSpec, configs: Mapping[int, tuple[ConditionerConfig, ...]], *, region_seconds: float | None,
    max_stem_s: float,
) -> JobConditions:  # fmt: skip
    """The job's conditions for a model whose conditioners are ``configs`` (level -> configs)."""
    names = {c.name for level in configs.values() for c in level}
    tempo = tempo_of(spec)
    clip = None if spec.midi is None else read_midi_input(spec.midi)
    stems = tuple(read_stem(item, max_stem_s, spec.project.region_start_s) for item in spec.stems)
    return JobConditions(
        take_start_s=take_start_s(spec, region_seconds),
        midi=clip,
        midi_start_s=midi_start_s(spec, tempo) if clip is not None else 0.0,
        stems=stems,
        tempo=tempo if GRID in names else None,
    )


def read_midi_input(item: AudioInput) -> MidiClip:
    """The MIDI clip of ``item``: read through ``safe_open`` (at most ``conditioning.midi.MAX_BYTES``) and parsed."""
    name = shown(item)
    data = _read_bytes(item, midi_module.MAX_BYTES, f"MIDI file {name!r}")
    return midi_module.read_midi(data, name)


def read_stem(item: AudioInput, max_s: float, default_start_s: float = 0.0) -> StemCondition:
    """The stem ``item`` decoded at its own rate and channels, checked before it reaches the model; its
    first sample at project time ``item.start_s`` (None: ``default_start_s``)."""
    label = item.label or ""
    what = f"stem {label!r} ({shown(item)})"
    path = _checked_path(item, MAX_STEM_FILE_BYTES, what)
    limit = min(max_s, stems_module.MAX_STEM_S)
    declared = declared_seconds(path)
    if declared > limit:
        raise InputError(f"{what} is {declared:.1f} s long; this daemon reads stems of at most {limit:g} s")
    try:
        audio = read_audio(path)
    except SegueError as exc:
        raise _renamed(exc, path, what) from exc
    if audio.frames / audio.sample_rate > limit:
        raise InputError(f"{what} is {audio.frames / audio.sample_rate:.1f} s long; this daemon reads stems of at most {limit:g} s")
    lo, hi = stems_module.MIN_STEM_RATE, stems_module.MAX_STEM_RATE
    if not lo <= audio.sample_rate <= hi:
        raise AudioError(f"{what}: sample rate {audio.sample_rate} Hz is outside {lo}..{hi} Hz")
    start = item.start_s
    return StemCondition(label, audio.samples, audio.sample_rate, default_start_s if start is None else float(start))


def job_guidance(
    spec: JobSpec, conditions: JobConditions, configs: Mapping[int, tuple[ConditionerConfig, ...]]
) -> tuple[Guidance, ...]:
    """Guidance per condition and level: each ``condition_guidance`` entry (every level: each level whose
    conditioners read that condition), then the per-level ``guidance`` floats for every condition of the job
    a conditioner of that level reads, unless an entry of ``condition_guidance`` names that condition."""
    given = set(conditions.names)
    have = sorted({c.name for level in configs.values() for c in level})
    reads = {lv: tuple(c.name for c in level if reads_condition(c) in given) for lv, level in sorted(configs.items())}
    out: list[Guidance] = []
    named: set[str] = set()
    for text in spec.condition_guidance:
        g = parse_guidance(text)
        if g.condition not in have:
            raise InputError(f"condition_guidance {text!r}: model {spec.model!r} has no conditioner {g.condition!r} "
                             f"(its conditioners: {', '.join(have) or 'none'})")  # fmt: skip
        if g.condition not in given:
            raise InputError(f"condition_guidance {text!r}: the job sends no {g.condition!r} condition ({_how(g.condition)})")
        levels = [lv for lv, names in reads.items() if g.condition in names]
        if g.level is not None:
            if g.level not in levels:
                raise InputError(
                    f"condition_guidance {text!r}: no conditioner of level {g.level} reads {g.condition!r} "
                    f"(levels that do: {', '.join(map(str, levels))})"
                )
            levels = [g.level]
        named.add(g.condition)
        out += [Guidance(g.condition, g.scale, lv) for lv in levels]
    for lv, scale in enumerate(spec.guidance):
        if scale != 0:
            out += [Guidance(name, scale, lv) for name in reads.get(lv, ()) if name not in named]
    return _last_wins(out)


def _last_wins(items: Sequence[Guidance]) -> tuple[Guidance, ...]:
    """One entry per (condition, level), the later one kept (``drums@2=1`` after ``drums=3``)."""
    kept: dict[tuple[str, int | None], Guidance] = {}
    for g in items:
        kept.pop((g.condition, g.level), None)
        kept[(g.condition, g.level)] = g
    return tuple(kept.values())


def _how(name: str) -> str:
    if name == MIDI:
        return "send a 'midi' file"
    if name == GRID:
        return "the grid comes from the project's tempo map"
    return f"send a stem labelled {name!r}"


def _checked_path(item: AudioInput, limit: int, what: str) -> str:
    """The input's path after ``safe_open``'s checks (a regular file, no symlink, at most ``limit`` bytes)."""
    assert item.path is not None  # JobSpec's rules and the engine's spooling
    path = item.path
    root = Path(os.path.realpath(os.path.dirname(os.path.abspath(path))))
    try:
        with open_checked(os.path.abspath(path), (root,), limit, allow_hard_links=True):
            pass
    except SegueError as exc:
        raise _renamed(exc, path, what) from exc
    return path


def _read_bytes(item: AudioInput, limit: int, what: str) -> bytes:
    assert item.path is not None  # JobSpec's rules and the engine's spooling
    path = item.path
    root = Path(os.path.realpath(os.path.dirname(os.path.abspath(path))))
    out = io.BytesIO()
    try:
        with open_checked(os.path.abspath(path), (root,), limit, allow_hard_links=True) as checked:
            checked.copy_to(out)
    except SegueError as exc:
        raise _renamed(exc, path, what) from exc
    return out.getvalue()


def _renamed(exc: SegueError, path: str, what: str) -> SegueError:
    """``exc`` with the daemon's spooled path replaced by the name the client knows the file by."""
    message = str(exc)
    for form in (repr(path), repr(os.path.abspath(path)), os.path.abspath(path), path):
        message = message.replace(form, what)
    if what not in message:
        message = f"{what}: {message}"
    return type(exc)(message)
