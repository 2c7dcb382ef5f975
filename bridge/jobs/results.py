"""What the engine reports about a job: result files, ``JobInfo`` snapshots and ``JobEvent``s
(re-exported by ``bridge.jobs``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from bridge.jobs.states import EventType, JobKind, JobState

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
    adherence: dict[str, Any] | None = None  # how the take follows the job's MIDI and stems (None: no such inputs)

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
            "adherence": self.adherence,
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
            adherence=d.get("adherence"),
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
        if self.state is JobState.DONE:  # the journal keeps no token counts: after a restart they read 0
            return 1.0
        return 0.0 if self.tokens_total <= 0 else min(1.0, self.tokens_done / self.tokens_total)

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
