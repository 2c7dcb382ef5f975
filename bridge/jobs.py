"""Shared job types: what a client asks for, what the engine reports, what the journal stores.

Both front ends build a ``JobSpec`` from a request (``bridge.protocol``), hand it to the job engine
(``bridge.engine``) and turn ``JobEvent``s and ``JobInfo``s back into messages. Every type here is a
frozen dataclass with ``to_dict()`` / ``from_dict()`` that round-trip through JSON, so the journal can
store them. Structural rules (exactly one of path/bytes, seeds per candidate...) are checked here;
limits that depend on the daemon's configuration (max seconds, allowed roots) are checked by
``bridge.security``.
"""

from __future__ import annotations

import base64
import enum
import time
from dataclasses import dataclass, field, replace
from typing import Any

from model.errors import InputError, SegueError


class JobState(str, enum.Enum):
    """Where a job is in its life. ``interrupted``: the daemon stopped while it ran; ``resubmit`` it."""

    ACCEPTED = "accepted"
    QUEUED = "queued"
    LOADING = "loading"  # waiting for its model to load
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


TERMINAL = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})
"""States a job never leaves. ``interrupted`` is not here: ``resubmit`` can take it up again."""
ACTIVE = frozenset({JobState.ACCEPTED, JobState.QUEUED, JobState.LOADING, JobState.RUNNING})


class JobKind(str, enum.Enum):
    """``continue``: extend the region; ``generate``: from scratch; ``prime``: encode the region to codes
    (no sampling; the result is a codes file); ``upsample``: render given top-level codes down to audio."""

    CONTINUE = "continue"
    GENERATE = "generate"
    PRIME = "prime"
    UPSAMPLE = "upsample"


class EventType(str, enum.Enum):
    """Events the engine emits; the wire names are the values."""

    ACCEPTED = "accepted"
    QUEUED = "queued"  # data: position, eta_s
    LOADING_MODEL = "loading_model"  # data: model
    PROGRESS = "progress"  # data: level, tokens_done, tokens_total, fraction, eta_s
    PREVIEW_READY = "preview_ready"  # data: path, level, sample_rate, frames, candidate
    LEVEL_DONE = "level_done"  # data: level
    RESULT_READY = "result_ready"  # data: results (list of ResultFile dicts)
    FAILED = "failed"  # data: code, message
    CANCELLED = "cancelled"  # data: reason
    INTERRUPTED = "interrupted"  # data: reason


class QueueFull(SegueError):
    """The engine's queue is at its limit; the client may retry later."""

    code = "busy"


class JobNotFound(SegueError):
    """No job (or model) with that id/name."""

    code = "not_found"


class JobStateError(SegueError):
    """The job is not in a state that allows the request (e.g. resubmit of a running job)."""

    code = "bad_state"


def _tuple(values: Any, cast: Any) -> tuple:
    return tuple(cast(v) for v in (values or ()))


@dataclass(frozen=True)
class AudioInput:
    """A file the client gives the daemon: a region, a stem, a MIDI clip or a codes file.

    Exactly one of ``path`` (a file under an allowed root) or ``data`` (bytes sent as a ZeroMQ frame).
    ``format`` is a hint ("wav", "flac", "mid", "codes"); ``label`` names a stem ("drums").
    In ``to_dict`` bytes become base64 under ``data_b64``; the engine should spool bytes to a file in its
    store first (``with_path``) so the journal stays small. The wire never carries base64.
    """

    path: str | None = None
    data: bytes | None = None
    format: str | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise InputError("an input file needs exactly one of 'path' or bytes (got both or neither)")
        if self.data is not None and len(self.data) == 0:
            raise InputError(f"input {self.label or self.format or 'file'} has 0 bytes")

    def with_path(self, path: str) -> AudioInput:
        return replace(self, path=path, data=None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format, "label": self.label}
        if self.path is not None:
            out["path"] = self.path
        else:
            assert self.data is not None  # guaranteed by __post_init__
            out["data_b64"] = base64.b64encode(self.data).decode("ascii")
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AudioInput:
        data = base64.b64decode(d["data_b64"]) if d.get("data_b64") is not None else None
        return cls(path=d.get("path"), data=data, format=d.get("format"), label=d.get("label"))


@dataclass(frozen=True)
class TempoChange:
    """From project time ``time_s`` on, the tempo is ``bpm`` quarter notes per minute."""

    time_s: float
    bpm: float


@dataclass(frozen=True)
class ProjectContext:
    """Where the region sits in the DAW project. Generation starts at ``region_end_s`` when given
    (continuations), else at ``region_start_s``."""

    sample_rate: int = 44100
    bit_depth: int = 24
    region_start_s: float = 0.0
    region_end_s: float | None = None
    tempo_map: tuple[TempoChange, ...] = (TempoChange(0.0, 120.0),)
    time_signature: tuple[int, int] = (4, 4)

    def __post_init__(self) -> None:
        if not 8000 <= self.sample_rate <= 192000:
            raise InputError(f"project sample_rate {self.sample_rate} is outside 8000..192000 Hz")
        if self.bit_depth not in (16, 24, 32):
            raise InputError(f"project bit_depth {self.bit_depth} is not one of 16, 24, 32")
        if not self.tempo_map:
            raise InputError("tempo_map needs at least one tempo change")
        if any(not 20.0 <= t.bpm <= 999.0 for t in self.tempo_map):
            raise InputError("tempo_map bpm values must lie in 20..999")
        times = [t.time_s for t in self.tempo_map]
        if times != sorted(times):
            raise InputError("tempo_map must be sorted by time_s")
        num, den = self.time_signature
        if not (1 <= num <= 64 and den in (1, 2, 4, 8, 16, 32)):
            raise InputError(f"time_signature {num}/{den} is not valid (1..64 over 1,2,4,8,16,32)")
        if self.region_end_s is not None and self.region_end_s < self.region_start_s:
            raise InputError("region_end_s is before region_start_s")

    @property
    def generation_start_s(self) -> float:
        return self.region_end_s if self.region_end_s is not None else self.region_start_s

    def seconds_for_bars(self, bars: float, start_s: float | None = None) -> float:
        """Length in seconds of ``bars`` bars starting at project time ``start_s``, following the tempo map."""
        num, den = self.time_signature
        quarters_left = bars * num * 4.0 / den
        t = self.generation_start_s if start_s is None else start_s
        begin = t
        changes = list(self.tempo_map)
        while quarters_left > 1e-12:
            bpm = changes[0].bpm
            next_change = None
            for change in changes:
                if change.time_s <= t:
                    bpm = change.bpm
                elif next_change is None:
                    next_change = change.time_s
            seconds_per_quarter = 60.0 / bpm
            if next_change is None:
                t += quarters_left * seconds_per_quarter
                break
            span_quarters = (next_change - t) / seconds_per_quarter
            if span_quarters >= quarters_left:
                t += quarters_left * seconds_per_quarter
                break
            quarters_left -= span_quarters
            t = next_change
        return t - begin

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "bit_depth": self.bit_depth,
            "region_start_s": self.region_start_s,
            "region_end_s": self.region_end_s,
            "tempo_map": [[t.time_s, t.bpm] for t in self.tempo_map],
            "time_signature": list(self.time_signature),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProjectContext:
        tempo = tuple(TempoChange(float(a), float(b)) for a, b in d.get("tempo_map", [[0.0, 120.0]]))
        num, den = d.get("time_signature", [4, 4])
        end = d.get("region_end_s")
        return cls(
            sample_rate=int(d.get("sample_rate", 44100)),
            bit_depth=int(d.get("bit_depth", 24)),
            region_start_s=float(d.get("region_start_s", 0.0)),
            region_end_s=None if end is None else float(end),
            tempo_map=tempo,
            time_signature=(int(num), int(den)),
        )


@dataclass(frozen=True)
class Length:
    """How much to generate: exactly one of ``seconds`` or ``bars`` (converted via the tempo map)."""

    seconds: float | None = None
    bars: float | None = None

    def __post_init__(self) -> None:
        if (self.seconds is None) == (self.bars is None):
            raise InputError("length needs exactly one of 'seconds' or 'bars'")
        value = self.seconds if self.seconds is not None else self.bars
        if value is None or not value > 0:
            raise InputError(f"length must be positive (got {value})")

    def to_seconds(self, project: ProjectContext) -> float:
        if self.seconds is not None:
            return float(self.seconds)
        assert self.bars is not None  # guaranteed by __post_init__
        return project.seconds_for_bars(self.bars)

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "bars": self.bars}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Length:
        s, b = d.get("seconds"), d.get("bars")
        return cls(seconds=None if s is None else float(s), bars=None if b is None else float(b))


@dataclass(frozen=True)
class OutputFormat:
    """Rendered files: ``sample_rate`` / ``bit_depth`` None mean the project's; bit depth 16, 24 or 32 (float)."""

    sample_rate: int | None = None
    bit_depth: int | None = None
    container: str = "wav"

    def __post_init__(self) -> None:
        if self.bit_depth is not None and self.bit_depth not in (16, 24, 32):
            raise InputError(f"output bit_depth {self.bit_depth} is not one of 16, 24, 32")
        if self.sample_rate is not None and not 8000 <= self.sample_rate <= 192000:
            raise InputError(f"output sample_rate {self.sample_rate} is outside 8000..192000 Hz")
        if self.container not in ("wav", "flac"):
            raise InputError(f"output container {self.container!r} is not 'wav' or 'flac'")

    def to_dict(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "bit_depth": self.bit_depth, "container": self.container}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OutputFormat:
        sr, bits = d.get("sample_rate"), d.get("bit_depth")
        return cls(
            sample_rate=None if sr is None else int(sr),
            bit_depth=None if bits is None else int(bits),
            container=str(d.get("container", "wav")),
        )


@dataclass(frozen=True)
class JobSpec:
    """Everything a job needs. ``temperatures`` and ``guidance`` are indexed by level (0 = bottom);
    empty means the model's defaults. ``seeds`` is empty (daemon picks) or one per candidate."""

    kind: JobKind
    model: str
    length: Length
    project: ProjectContext = field(default_factory=ProjectContext)
    region: AudioInput | None = None
    codes: AudioInput | None = None
    artist: str = ""
    genre: str = ""
    lyrics: str = ""
    midi: AudioInput | None = None
    stems: tuple[AudioInput, ...] = ()
    candidates: int = 1
    seeds: tuple[int, ...] = ()
    temperatures: tuple[float, ...] = ()
    guidance: tuple[float, ...] = ()
    output: OutputFormat = field(default_factory=OutputFormat)
    priority: int = 0
    client: str = ""

    def __post_init__(self) -> None:
        if not self.model:
            raise InputError("a job needs a model name")
        if self.kind in (JobKind.CONTINUE, JobKind.PRIME) and self.region is None:
            raise InputError(f"a '{self.kind.value}' job needs a region")
        if self.kind is JobKind.UPSAMPLE and self.codes is None:
            raise InputError("an 'upsample' job needs codes")
        if self.candidates < 1:
            raise InputError(f"candidates must be at least 1 (got {self.candidates})")
        if self.seeds and len(self.seeds) != self.candidates:
            raise InputError(f"give one seed per candidate ({self.candidates}) or none (got {len(self.seeds)})")
        if any(not t > 0 for t in self.temperatures):
            raise InputError("temperatures must be positive")
        if any(g < 0 for g in self.guidance):
            raise InputError("guidance scales must be >= 0")

    @property
    def length_s(self) -> float:
        return self.length.to_seconds(self.project)

    @property
    def sample_rate(self) -> int:
        """Sample rate of the rendered files (the project's unless the output format says otherwise)."""
        return self.output.sample_rate or self.project.sample_rate

    def inputs(self) -> list[AudioInput]:
        """Every file this job reads, for path checks and spooling."""
        files = [f for f in (self.region, self.codes, self.midi) if f is not None]
        return files + list(self.stems)

    def to_dict(self) -> dict[str, Any]:
        def opt(x: AudioInput | None) -> dict[str, Any] | None:
            return None if x is None else x.to_dict()

        return {
            "kind": self.kind.value,
            "model": self.model,
            "length": self.length.to_dict(),
            "project": self.project.to_dict(),
            "region": opt(self.region),
            "codes": opt(self.codes),
            "artist": self.artist,
            "genre": self.genre,
            "lyrics": self.lyrics,
            "midi": opt(self.midi),
            "stems": [s.to_dict() for s in self.stems],
            "candidates": self.candidates,
            "seeds": list(self.seeds),
            "temperatures": list(self.temperatures),
            "guidance": list(self.guidance),
            "output": self.output.to_dict(),
            "priority": self.priority,
            "client": self.client,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSpec:
        def opt(x: dict[str, Any] | None) -> AudioInput | None:
            return None if x is None else AudioInput.from_dict(x)

        return cls(
            kind=JobKind(d["kind"]),
            model=str(d["model"]),
            length=Length.from_dict(d["length"]),
            project=ProjectContext.from_dict(d.get("project", {})),
            region=opt(d.get("region")),
            codes=opt(d.get("codes")),
            artist=str(d.get("artist", "")),
            genre=str(d.get("genre", "")),
            lyrics=str(d.get("lyrics", "")),
            midi=opt(d.get("midi")),
            stems=tuple(AudioInput.from_dict(s) for s in d.get("stems", [])),
            candidates=int(d.get("candidates", 1)),
            seeds=_tuple(d.get("seeds"), int),
            temperatures=_tuple(d.get("temperatures"), float),
            guidance=_tuple(d.get("guidance"), float),
            output=OutputFormat.from_dict(d.get("output", {})),
            priority=int(d.get("priority", 0)),
            client=str(d.get("client", "")),
        )


RESULT_KINDS = ("audio", "codes")


@dataclass(frozen=True)
class ResultFile:
    """One result file. ``kind`` "audio": a render (``level`` 0 is full quality; previews come from higher
    levels); "codes": a codes file of every level (``prime`` jobs; ``frames`` = the encoded samples)."""

    path: str
    sample_rate: int
    frames: int
    seed: int
    candidate: int = 0
    level: int = 0
    kind: str = "audio"

    def __post_init__(self) -> None:
        if self.kind not in RESULT_KINDS:
            raise ValueError(f"result kind {self.kind!r} is not one of {', '.join(RESULT_KINDS)}")

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "kind": self.kind,
            "sample_rate": self.sample_rate,
            "frames": self.frames,
            "seconds": self.seconds,
            "seed": self.seed,
            "candidate": self.candidate,
            "level": self.level,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ResultFile:
        return cls(
            path=str(d["path"]),
            sample_rate=int(d["sample_rate"]),
            frames=int(d["frames"]),
            seed=int(d["seed"]),
            candidate=int(d.get("candidate", 0)),
            level=int(d.get("level", 0)),
            kind=str(d.get("kind", "audio")),  # results journaled before codes results existed are audio
        )


@dataclass(frozen=True)
class JobInfo:
    """A snapshot of one job, safe to send to any client at any time (no bytes, no spec inputs)."""

    id: str
    kind: JobKind
    model: str
    state: JobState
    client: str = ""
    length_s: float = 0.0
    candidates: int = 1
    level: int | None = None
    tokens_done: int = 0
    tokens_total: int = 0
    queue_position: int | None = None
    eta_s: float | None = None
    results: tuple[ResultFile, ...] = ()
    error_code: str | None = None
    error_message: str | None = None
    created: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None

    @property
    def fraction(self) -> float:
        return 0.0 if self.tokens_total <= 0 else min(1.0, self.tokens_done / self.tokens_total)

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind.value,
            "model": self.model,
            "state": self.state.value,
            "client": self.client,
            "length_s": self.length_s,
            "candidates": self.candidates,
            "level": self.level,
            "tokens_done": self.tokens_done,
            "tokens_total": self.tokens_total,
            "fraction": self.fraction,
            "queue_position": self.queue_position,
            "eta_s": self.eta_s,
            "results": [r.to_dict() for r in self.results],
            "error_code": self.error_code,
            "error_message": self.error_message,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobInfo:
        return cls(
            id=str(d["id"]),
            kind=JobKind(d["kind"]),
            model=str(d["model"]),
            state=JobState(d["state"]),
            client=str(d.get("client", "")),
            length_s=float(d.get("length_s", 0.0)),
            candidates=int(d.get("candidates", 1)),
            level=d.get("level"),
            tokens_done=int(d.get("tokens_done", 0)),
            tokens_total=int(d.get("tokens_total", 0)),
            queue_position=d.get("queue_position"),
            eta_s=d.get("eta_s"),
            results=tuple(ResultFile.from_dict(r) for r in d.get("results", [])),
            error_code=d.get("error_code"),
            error_message=d.get("error_message"),
            created=float(d.get("created", 0.0)),
            started=d.get("started"),
            finished=d.get("finished"),
        )

    @classmethod
    def for_spec(cls, job_id: str, spec: JobSpec, state: JobState = JobState.ACCEPTED) -> JobInfo:
        return cls(
            id=job_id,
            kind=spec.kind,
            model=spec.model,
            state=state,
            client=spec.client,
            length_s=spec.length_s,
            candidates=spec.candidates,
        )


@dataclass(frozen=True)
class JobEvent:
    """One event about one job. ``seq`` increases by one per event across the whole daemon, so a client
    can spot gaps (PUB/SUB drops) and ask for ``status``."""

    seq: int
    job_id: str
    type: EventType
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "job_id": self.job_id, "type": self.type.value, "data": self.data, "time": self.time}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobEvent:
        return cls(
            seq=int(d["seq"]),
            job_id=str(d["job_id"]),
            type=EventType(d["type"]),
            data=dict(d.get("data", {})),
            time=float(d.get("time", 0.0)),
        )
