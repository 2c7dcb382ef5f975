"""What the engine's worker thread does with one job or one model task.

``Runner`` is the only code that calls the backend. It turns the backend's reports into events
(throttled progress, previews written to the store, level ends), writes the takes, and ends the job in
exactly one of done / failed / cancelled / interrupted. It reports through ``Reporter`` (the job engine
implements it) and holds the engine's lock only while it reads or updates a job's live progress; this
module never imports the engine.
"""

from __future__ import annotations

import logging
import time
from contextlib import AbstractContextManager
from typing import Any, Protocol

from bridge.engine.backend import Backend, Candidate
from bridge.engine.config import EngineConfig
from bridge.jobs import EventType, JobEvent, JobInfo, JobKind, JobState, ResultFile
from bridge.state.journal import JobRecord
from bridge.state.store import RenderStore
from common.errors import Cancelled, SegueError
from common.progress import CancelToken, Progress

log = logging.getLogger(__name__)

SHUTDOWN = "shutdown"  # CancelToken reason used by JobEngine.shutdown


class RunningJob:
    """A job as the engine holds it: the journal record plus live progress (not journaled)."""

    def __init__(self, record: JobRecord) -> None:
        self.record = record
        self.reset()

    def reset(self) -> None:
        self.level: int | None = None
        self.stage = ""
        self.tokens_done = 0
        self.tokens_total = 0
        self.token: CancelToken | None = None
        self.last_progress = 0.0  # time.monotonic() of the last progress event
        self.run_started: float | None = None
        self.announced_position: int | None = None
        self.owner: str | None = None  # the front end's key of the client that gets its events

    def start(self) -> CancelToken:
        self.token = CancelToken()
        self.announced_position = None
        self.last_progress = 0.0  # the first report goes out at once
        return self.token

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def state(self) -> JobState:
        return self.record.state

    def info(self, queue_position: int | None = None, eta_s: float | None = None) -> JobInfo:
        """A snapshot for clients: the journaled record plus live progress."""
        r = self.record
        return JobInfo(
            id=r.id,
            kind=r.spec.kind,
            model=r.spec.model,
            state=r.state,
            client=r.spec.client,
            length_s=r.spec.length_s,
            candidates=r.spec.candidates,
            level=self.level,
            tokens_done=self.tokens_done,
            tokens_total=self.tokens_total,
            queue_position=queue_position,
            eta_s=eta_s,
            results=r.results,
            error_code=r.error_code,
            error_message=r.error_message,
            created=r.created,
            started=r.started,
            finished=r.finished,
        )


class Reporter(Protocol):
    """What the runner tells the engine about jobs and models (``JobEngine`` implements it)."""

    def emit(self, job_id: str, kind: EventType, data: dict[str, Any] | None = None) -> JobEvent | None: ...

    def set_state(self, job: RunningJob, state: JobState, reason: str, run: CancelToken | None = None) -> bool: ...

    def finish(
        self,
        job: RunningJob,
        state: JobState,
        code: str | None = None,
        message: str | None = None,
        results: tuple[ResultFile, ...] = (),
        run: CancelToken | None = None,
    ) -> None: ...

    def record_throughput(self, job: RunningJob, seconds: float) -> None: ...

    def eta_running(self, job: RunningJob) -> float | None: ...

    def model_changed(self, name: str, state: str | None, error: str | None = None) -> None: ...


class _Events:
    """The ``RunEvents`` handed to ``Backend.run`` for one job."""

    def __init__(self, runner: Runner, job: RunningJob) -> None:
        self._runner, self._job = runner, job

    def progress(self, item: Progress) -> None:
        self._runner.progress(self._job, item)

    def preview(self, take: Candidate) -> None:
        runner, job = self._runner, self._job
        try:
            result = runner.store.write_take(job.id, job.record.spec, take, preview=True)
        except (SegueError, OSError):  # a lost preview must not fail the job; the full render follows
            log.exception("could not write the preview of job %s", job.id)
            return
        data = result.to_dict()
        runner.reporter.emit(job.id, EventType.PREVIEW_READY, data)

    def level_done(self, level: int) -> None:
        self._runner.reporter.emit(self._job.id, EventType.LEVEL_DONE, {"level": level})


class Runner:
    """Runs jobs and model tasks on the worker thread. ``lock`` guards the live progress fields of
    ``RunningJob`` (the engine's lock, shared with the front ends' reads)."""

    def __init__(
        self, reporter: Reporter, backend: Backend, store: RenderStore, config: EngineConfig,
        lock: AbstractContextManager[Any],
    ) -> None:
        self.reporter, self.backend, self.store, self.config = reporter, backend, store, config
        self._lock = lock

    def run(self, job: RunningJob) -> None:
        reporter, spec, token = self.reporter, job.record.spec, job.token
        assert token is not None  # set by RunningJob.start before the runner sees the job
        try:
            if job.state is JobState.LOADING:
                reporter.emit(job.id, EventType.LOADING_MODEL, {"model": spec.model})
                self._load(spec.model, job)
                if not reporter.set_state(job, JobState.RUNNING, "model loaded", token):
                    return  # cancelled while the model loaded
            self.store.clear(job.id)
            takes = self.backend.run(spec, _Events(self, job), token)
            token.raise_if_cancelled()
            if sorted(t.index for t in takes) != list(range(spec.candidates)):
                raise RuntimeError(
                    f"the backend returned takes {[t.index for t in takes]} for {spec.candidates} candidates"
                )
            results = tuple(self.store.write_take(job.id, spec, t) for t in sorted(takes, key=lambda t: t.index))
            self.store.finish(job.id, spec, results)
            if job.run_started is not None and spec.kind is not JobKind.ENCODE:  # encoding says nothing of sampling speed
                reporter.record_throughput(job, time.monotonic() - job.run_started)
            reporter.finish(job, JobState.DONE, results=results, run=token)
        except Cancelled:
            if token.reason == SHUTDOWN:
                reporter.finish(job, JobState.INTERRUPTED, "interrupted", "the daemon shut down while this job ran", run=token)
            else:
                reporter.finish(job, JobState.CANCELLED, "cancelled", token.reason, run=token)
        except SegueError as exc:
            reporter.finish(job, JobState.FAILED, exc.code, str(exc), run=token)
        except Exception as exc:
            log.exception("job %s failed", job.id)
            reporter.finish(job, JobState.FAILED, "internal", f"{type(exc).__name__}: {exc}", run=token)

    def model_task(self, kind: str, name: str) -> None:
        if kind == "load":
            if name in self.backend.loaded():
                self.reporter.model_changed(name, None)
                return
            try:
                self._load(name, None)
            except Exception:
                log.exception("loading model %s failed", name)
        else:
            self.backend.unload(name)
            self.reporter.model_changed(name, None)

    def progress(self, job: RunningJob, item: Progress) -> None:
        with self._lock:
            job.level, job.stage = item.level, item.stage
            job.tokens_done, job.tokens_total = item.done, item.total
            if time.monotonic() - job.last_progress >= self.config.progress_interval_s:
                self._send_progress(job)

    def heartbeat(self, job: RunningJob) -> None:
        with self._lock:
            working = job.state in (JobState.LOADING, JobState.RUNNING)
            if working and time.monotonic() - job.last_progress >= self.config.heartbeat_s:
                self._send_progress(job)

    def _send_progress(self, job: RunningJob) -> None:
        job.last_progress = time.monotonic()
        total = job.tokens_total
        self.reporter.emit(
            job.id,
            EventType.PROGRESS,
            {
                "stage": job.stage,
                "level": job.level,
                "tokens_done": job.tokens_done,
                "tokens_total": total,
                "fraction": 0.0 if total <= 0 else min(1.0, job.tokens_done / total),
                "eta_s": self.reporter.eta_running(job),
            },
        )

    def _load(self, name: str, job: RunningJob | None) -> None:
        reporter = self.reporter
        reporter.model_changed(name, "loading")

        def report(item: Progress) -> None:
            if job is not None:
                self.progress(job, item)

        try:
            self.backend.load(name, report)
        except Exception as exc:
            reporter.model_changed(name, "failed", str(exc))
            raise
        reporter.model_changed(name, None)

