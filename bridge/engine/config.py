"""The job engine's settings and the small types it answers with (import them from ``bridge.engine.engine``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bridge.jobs import JobEvent
from common.errors import ConfigError, SegueError


class EngineClosed(SegueError):
    """The daemon is shutting down and takes no new jobs."""

    code = "shutting_down"


@dataclass(frozen=True)
class EngineConfig:
    """``queue_limit``: jobs waiting (not counting the running one) before ``submit`` answers busy.
    Progress events: at most one per ``progress_interval_s`` from the model's reports, and at least one
    per ``heartbeat_s`` while a job works (repeating the last numbers with a fresh ETA).
    Retention: an ended job (done, failed, cancelled, interrupted) is forgotten, with its events and its
    render-store folders, once it ended more than ``retention_days`` ago or is not among the
    ``retention_jobs`` most recently ended; 0 turns a rule off. Checked at start-up and every
    ``retention_interval_s`` seconds on the worker thread, between jobs."""

    queue_limit: int = 32
    progress_interval_s: float = 0.25
    heartbeat_s: float = 0.4
    throughput_window: int = 8
    finish_running_on_shutdown: bool = False
    retention_days: float = 30.0
    retention_jobs: int = 1000
    retention_interval_s: float = 3600.0

    def __post_init__(self) -> None:
        if not 1 <= self.queue_limit <= 10_000:
            raise ConfigError(f"queue_limit {self.queue_limit} is outside 1..10000")
        if not 0.05 <= self.progress_interval_s <= self.heartbeat_s <= 0.5:
            raise ConfigError(
                f"need 0.05 <= progress_interval_s ({self.progress_interval_s}) <= heartbeat_s "
                f"({self.heartbeat_s}) <= 0.5 s, so progress comes 2 to 20 times a second"
            )
        if self.throughput_window < 1:
            raise ConfigError(f"throughput_window {self.throughput_window} must be at least 1")
        if self.retention_days < 0 or self.retention_jobs < 0:
            raise ConfigError(f"[engine] retention_days ({self.retention_days}) and retention_jobs "
                              f"({self.retention_jobs}) must be 0 (keep every job) or more")
        if self.retention_interval_s <= 0:
            raise ConfigError(f"[engine] retention_interval_s = {self.retention_interval_s} must be more than 0 s")


@dataclass(frozen=True)
class EventPage:
    """Stored events of one job after a cursor, oldest first (``events_since``). ``more``: further events
    are stored; ask again with ``after=next_after``."""

    events: tuple[JobEvent, ...]
    after: int
    more: bool = False

    @property
    def next_after(self) -> int:
        return self.events[-1].seq if self.events else self.after


@dataclass(frozen=True)
class ModelInfo:
    """A model the backend knows; ``state`` is available, loading, loaded or failed."""

    name: str
    state: str
    error: str | None = None
    capabilities: Mapping[str, Any] | None = None  # ``Capabilities.to_dict()``; None: the configs are unreadable

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "error": self.error, "capabilities": self.capabilities}
