"""Shared job types: what a client asks for, what the engine reports, what the journal stores.

Both front ends build a ``JobSpec`` from a request (``bridge.protocol.schema``), hand it to the job engine
(``bridge.engine.engine``) and turn ``JobEvent``s and ``JobInfo``s back into messages. Every type here is a
frozen dataclass with ``to_dict()`` / ``from_dict()`` that round-trip through JSON, so the journal can
store them. Structural rules (exactly one of path/bytes, seeds per candidate...) are checked here;
limits that depend on the daemon's configuration (max seconds, allowed roots) are checked by
``bridge.security``.

The types live in four small modules; import them from here:
``bridge.jobs.states`` (states, kinds, event types, errors), ``bridge.jobs.inputs`` (input files, project
context, length, output format), ``bridge.jobs.spec`` (``JobSpec``) and ``bridge.jobs.results`` (result
files, ``JobInfo``, ``JobEvent``).
"""

from __future__ import annotations

from bridge.jobs.inputs import AudioInput, Length, OutputFormat, ProjectContext, TempoChange
from bridge.jobs.results import RESULT_KINDS, JobEvent, JobInfo, ResultFile
from bridge.jobs.spec import JobSpec
from bridge.jobs.states import (
    ACTIVE,
    TERMINAL,
    EventType,
    JobKind,
    JobNotFound,
    JobState,
    JobStateError,
    QueueFull,
)

__all__ = [
    "ACTIVE",
    "RESULT_KINDS",
    "TERMINAL",
    "AudioInput",
    "EventType",
    "JobEvent",
    "JobInfo",
    "JobKind",
    "JobNotFound",
    "JobSpec",
    "JobState",
    "JobStateError",
    "Length",
    "OutputFormat",
    "ProjectContext",
    "QueueFull",
    "ResultFile",
    "TempoChange",
]
