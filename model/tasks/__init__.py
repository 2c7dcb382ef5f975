"""The model's tasks: what ``segue sample``, ``segue demo`` and the daemon's backend all call.

One vocabulary everywhere (CLI modes, protocol job kinds, docs):

- ``generate``: sample a song from nothing (Jukebox's "ancestral" sampling).
- ``continue``: continue a region of audio; the take starts exactly at the region's end (Jukebox's
  "primed" sampling, with the region's last window as the prime).
- ``extend``: continue saved codes of every level; the take starts where the codes end.
- ``upsample``: render given top-level codes through the levels below.
- ``encode``: the region's codes at every level; nothing is sampled.

Each task takes explicit audio or codes, lengths in samples at the model's rate, a ``Song`` (labels),
``SamplingParams`` and one ``Hooks`` object (progress, cancel, level done, preview), and returns a typed
result. Tasks read no files: callers read audio and codes files and pass their contents.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from model.tasks.conditions import JobConditions, StemCondition
    from model.tasks.result import EncodeResult, TaskResult
    from model.tasks.song import Song
    from model.tasks.tasks import TASKS, continue_region, encode_region, extend, generate, upsample

_WHERE = {
    "EncodeResult": "result", "TaskResult": "result", "Song": "song", "TASKS": "tasks", "continue_region": "tasks",
    "encode_region": "tasks", "extend": "tasks", "generate": "tasks", "upsample": "tasks",
    "JobConditions": "conditions", "StemCondition": "conditions",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    """The tasks load torch, so they are imported on first use: ``model.tasks.capabilities`` (which the
    daemon reads before any model loads) must not pull them in."""
    if name not in _WHERE:
        raise AttributeError(f"module 'model.tasks' has no attribute {name!r}")
    return getattr(importlib.import_module(f"model.tasks.{_WHERE[name]}"), name)


__all__ = [
    "TASKS",
    "EncodeResult",
    "JobConditions",
    "StemCondition",
    "Song",
    "TaskResult",
    "continue_region",
    "encode_region",
    "extend",
    "generate",
    "upsample",
]
