"""The seam between the job engine and the model: what the engine calls, what a backend returns.

The engine's single worker thread is the only caller of a backend, so an implementation needs no
locks except in ``models()``/``loaded()``, which front-end threads may call while a job runs (they must
be cheap: list names, never touch weights). The real backend (on top of the sampling engine) lives
with the model code; tests use a deterministic tone backend in ``tests/bridge/``.

Contract of ``run``:
- ``spec`` is resolved: every input is a file path (bytes sent by clients were spooled to the render
  store), ``spec.seeds`` holds one seed per candidate.
- Check ``cancel`` at least every 50 ms of work (between tokens) with ``cancel.raise_if_cancelled()``;
  the engine promises clients that a cancel frees the worker within 200 ms.
- Report through ``events``: ``progress`` after each token or window (the engine throttles), ``preview``
  once per candidate as soon as the top level decodes on its own, ``level_done`` after each level.
- Return one ``Candidate`` per requested candidate whose audio starts at the region end (continuations)
  or at the region start (``generate``): never include the prime. The engine resamples to the project
  rate and writes the files.
- A ``prime`` job samples nothing: return one ``CodesTake`` (the region's codes at every level); the
  engine writes it as a codes file (``model.codes``) that an ``upsample`` job can take as its ``codes``.
- Raise ``common.errors.SegueError`` subclasses for problems the user can fix (bad region, unknown
  artist); anything else is reported as an ``internal`` failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from bridge.jobs import JobSpec
from common.progress import CancelToken, Progress, ProgressFn
from model.codes import CodesMeta

if TYPE_CHECKING:
    from model.tasks.capabilities import Capabilities


@dataclass(frozen=True)
class Candidate:
    """One rendered take: ``audio`` is float32 ``(frames, channels)`` at ``sample_rate``."""

    index: int  # 0-based candidate number within the job
    seed: int
    audio: np.ndarray  # (frames, channels) float32 in [-1, 1], first frame = generation start
    sample_rate: int
    level: int = 0  # 0 = full quality (bottom level); previews come from higher levels
    adherence: dict[str, Any] | None = None  # conditioning.adherence report (JSON-safe); None: no MIDI or stems


@dataclass(frozen=True)
class CodesTake:
    """One encoded take (``encode`` jobs): every VQ-VAE level's codes, as ``model.codes.save_codes`` stores them."""

    index: int  # 0-based candidate number within the job
    seed: int  # the job's seed for this candidate (nothing is sampled; kept for the record)
    codes: tuple[np.ndarray, ...]  # per level, level 0 (bottom) first: (1, tokens) int64
    meta: CodesMeta  # rate, hops, codebook, model identity, encoded length in samples


Take = Candidate | CodesTake
"""What ``Backend.run`` returns per candidate: audio, or codes for ``prime`` jobs."""


class RunEvents(Protocol):
    """What a running job can report; the engine turns these into client events."""

    def progress(self, item: Progress) -> None:
        """Tokens done/total at ``item.level`` (``item.stage`` "sample", "decode", ...)."""

    def preview(self, take: Candidate) -> None:
        """A quick render of one candidate (``take.level`` > 0), long before the full render."""

    def level_done(self, level: int) -> None:
        """Every candidate finished sampling ``level``."""


class Backend(Protocol):
    """The model as the engine sees it. Only the engine's worker thread calls ``load``/``unload``/``run``."""

    def models(self) -> list[str]:
        """Names of the models this backend can load (cheap, thread-safe)."""

    def loaded(self) -> list[str]:
        """Names of the models now in memory (cheap, thread-safe)."""

    def load(self, name: str, progress: ProgressFn) -> None:
        """Load ``name`` into memory (may evict others); raise ``CheckpointError`` if it cannot."""

    def unload(self, name: str) -> None:
        """Free the memory held by ``name`` (no-op if it is not loaded)."""

    def capabilities(self, name: str) -> Capabilities:
        """What ``name`` can do, without loading it (cheap after the first call; thread-safe); raise
        ``CheckpointError`` if its configs cannot be read. Submit checks every job against it."""

    def run(self, spec: JobSpec, events: RunEvents, cancel: CancelToken) -> Sequence[Take]:
        """Render ``spec.candidates`` takes; see the module docstring for the contract."""
