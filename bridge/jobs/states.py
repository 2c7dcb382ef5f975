"""Job states, kinds, event types and the errors the engine raises about jobs (re-exported by ``bridge.jobs``)."""

from __future__ import annotations

import enum

from common.errors import SegueError


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
    """The model's tasks (``model.tasks``), one vocabulary with ``segue sample --mode``:
    ``generate``: from nothing; ``continue``: continue the region, the take starts at its end;
    ``extend``: continue a codes file (every level), the take starts where the codes end;
    ``upsample``: render given top-level codes down to audio; ``encode``: the region's codes at every
    level (no sampling; the result is a codes file). ``prime`` is read as ``encode`` (its name before
    protocol 1.3), so old clients and journals keep working."""

    GENERATE = "generate"
    CONTINUE = "continue"
    EXTEND = "extend"
    UPSAMPLE = "upsample"
    ENCODE = "encode"

    @classmethod
    def _missing_(cls, value: object) -> JobKind | None:
        return cls.ENCODE if value == "prime" else None


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
