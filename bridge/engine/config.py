"""The job engine's settings and the small types it answers with (import them from ``bridge.engine.engine``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import ConfigError, SegueError


class EngineClosed(SegueError):
    """The daemon is shutting down and takes no new jobs."""

    code = "shutting_down"


@dataclass(frozen=True)
class EngineConfig:
    """``queue_limit``: jobs waiting (not counting the running one) before ``submit`` answers busy.
    Progress events: at most one per ``progress_interval_s`` from the model's reports, and at least one
    per ``heartbeat_s`` while a job works (repeating the last numbers with a fresh ETA)."""

    queue_limit: int = 32
    progress_interval_s: float = 0.25
    heartbeat_s: float = 0.4
    throughput_window: int = 8
    finish_running_on_shutdown: bool = False

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


@dataclass(frozen=True)
class ModelInfo:
    """A model the backend knows; ``state`` is available, loading, loaded or failed."""

    name: str
    state: str
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "error": self.error}
