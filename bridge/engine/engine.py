"""The job engine: one worker thread owns the model; any number of clients share it.

Front ends call the public methods from their own threads; each takes the engine lock for a moment
(plus one journal commit where the state changes) and returns, never waiting for model work. The
worker thread is the only caller of the backend. Events go out through ``EventHub`` (its own thread),
so neither a slow subscriber nor the journal's fsync of events delays the model.

Life of a job (docs/daemon.md, "Jobs, journal and render store"): ``submit`` journals it as queued and
emits ``accepted`` + ``queued``; the worker takes the next job from the ``FairQueue``, loads its model if
needed (``loading``), runs it (``running``), writes the takes to the render store and marks it ``done``.
Ended jobs are pruned by the retention rules of ``EngineConfig`` (journal rows, events, store folders).
Each job remembers its ``owner``, the front end's key of the client that submitted or resubmitted it
(not journaled), so the front ends can send its events to that client.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

from bridge.engine.backend import Backend
from bridge.engine.config import EngineClosed, EngineConfig, EventPage, ModelInfo
from bridge.engine.events import EventHub
from bridge.engine.queue import FairQueue, Throughput
from bridge.engine.run import SHUTDOWN, Runner, RunningJob
from bridge.jobs import (
    ACTIVE,
    AudioInput,
    EventType,
    JobEvent,
    JobInfo,
    JobNotFound,
    JobSpec,
    JobState,
    JobStateError,
    QueueFull,
    ResultFile,
)
from bridge.state.journal import JobRecord, Journal
from bridge.state.recovery import RecoveryReport, log_report, recover
from bridge.state.store import Opener, RenderStore
from common.errors import SegueError
from common.progress import CancelToken

log = logging.getLogger(__name__)

RESUBMITTABLE = frozenset({JobState.INTERRUPTED, JobState.FAILED, JobState.CANCELLED})


class JobEngine:
    def __init__(
        self, backend: Backend, journal: Journal, store: RenderStore, config: EngineConfig | None = None
    ) -> None:
        self.config = config or EngineConfig()
        self.backend, self.journal, self.store = backend, journal, store
        self.recovery: RecoveryReport = recover(journal, store)
        log_report(self.recovery)
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._jobs: dict[str, RunningJob] = {r.id: RunningJob(r) for r in journal.jobs()}
        self._queue = FairQueue()
        self._throughput = Throughput(self.config.throughput_window)
        self._control: deque[tuple[str, str]] = deque()  # ("load" | "unload", model name)
        self._model_state: dict[str, tuple[str, str | None]] = {}  # name -> (loading|failed, error)
        self._current: RunningJob | None = None
        self._closing = False
        self._stop_worker = False
        self._hub = EventHub(journal, tick_s=0.05, on_tick=self._heartbeat)
        self._runner = Runner(self, backend, store, self.config, self._lock)
        self._next_prune = 0.0  # time.monotonic() of the next retention check
        self.prune()
        self._worker = threading.Thread(target=self._work, name="segue-worker", daemon=True)
        self._worker.start()

    # -- jobs -----------------------------------------------------------------------------------
    def submit(self, spec: JobSpec, owner: str | None = None, open_input: Opener | None = None) -> JobInfo:
        """Queue a job; raises ``QueueFull`` (code busy), ``JobNotFound`` (unknown model), ``EngineClosed``.
        ``owner``: who gets its events (see ``owner``). ``open_input``: the daemon's checked opener of
        client paths (``Guard.open_input``); given, path inputs are copied into the store now, read once
        through a checked descriptor (see ``RenderStore.spool_input``)."""
        self._check_admission(spec)
        job_id = uuid.uuid4().hex[:16]
        try:
            spec = self._resolve(job_id, spec, open_input)  # file I/O outside the lock
        except BaseException:
            self.store.discard_inputs(job_id)
            raise
        with self._lock:
            try:
                self._check_admission(spec)
            except SegueError:
                self.store.discard_inputs(job_id)
                raise
            record = JobRecord(job_id, spec, JobState.QUEUED, time.time())
            self.journal.add_job(record)
            job = self._jobs[job_id] = RunningJob(record)
            job.owner = owner
            self._enqueue(job)
            return self._info(job)

    def cancel(self, job_id: str) -> JobInfo:
        """Cancel a job: a waiting one at once, a running one at its next token (within 200 ms).
        Cancelling a finished job changes nothing."""
        with self._lock:
            job = self._job(job_id)
            if job_id in self._queue:
                self._queue.remove(job_id)
                self.finish(job, JobState.CANCELLED, "cancelled", "cancelled by the client")
                self._announce_queue()
            elif job.state in (JobState.LOADING, JobState.RUNNING) and job.token is not None:
                job.token.cancel("cancelled by the client")
                if job.state is JobState.LOADING:  # no model code of this job runs yet
                    self.finish(job, JobState.CANCELLED, "cancelled", "cancelled by the client")
            return self._info(job)

    def resubmit(self, job_id: str, owner: str | None = None, open_input: Opener | None = None) -> JobInfo:
        """Run an interrupted, failed or cancelled job again with the same spec (and seeds), same id;
        ``owner`` (the resubmitting client) gets its events from now on. The job's spooled inputs are
        reused; a client path still in its spec (a job journaled before paths were spooled) is read
        once more through ``open_input``, outside the lock, and spooled."""
        with self._lock:
            spec = self._resubmittable(job_id).record.spec
        spec = self._resolve(job_id, spec, open_input)  # seeds for a job journaled without them
        with self._lock:
            job = self._resubmittable(job_id)  # again: another resubmit may have won meanwhile
            record = job.record
            record.spec = spec
            record.state, record.started, record.finished = JobState.QUEUED, None, None
            record.error_code = record.error_message = None
            record.results, record.attempts = (), record.attempts + 1
            self.journal.update_job(record, reason="resubmitted")
            job.reset()
            job.owner = owner
            self._enqueue(job)
            return self._info(job)

    def status(self, job_id: str) -> JobInfo:
        with self._lock:
            return self._info(self._job(job_id))

    def list_jobs(self, client: str | None = None, states: Iterable[JobState] | None = None) -> list[JobInfo]:
        wanted = None if states is None else frozenset(states)
        with self._lock:
            positions = self._positions()
            return [
                self._info(job, positions)
                for job in self._jobs.values()
                if (client is None or job.record.spec.client == client) and (wanted is None or job.state in wanted)
            ]

    def result(self, job_id: str) -> tuple[ResultFile, ...]:
        with self._lock:
            job = self._job(job_id)
            if job.state is not JobState.DONE:
                raise JobStateError(f"job {job_id} is {job.state.value}; results exist once it is done")
            return job.record.results

    def events(self, job_id: str | None = None, after: int = 0) -> list[JobEvent]:
        """Stored events with ``seq > after`` (for a client that missed broadcasts)."""
        self._hub.flush(0.2)
        return self.journal.events(job_id, after)

    def events_since(self, job_id: str, after: int = 0, limit: int = 200) -> EventPage:
        """One page of ``job_id``'s stored events with ``seq > after``, oldest first; ``JobNotFound`` for a
        job the engine does not know (never submitted, or pruned). Does not wait for events still on
        their way to the journal: those are delivered after they are stored, so a client that
        subscribes first and then pages from its last ``seq`` misses none."""
        with self._lock:
            self._job(job_id)
        stored = self.journal.events(job_id, after, limit + 1)
        return EventPage(tuple(stored[:limit]), after, more=len(stored) > limit)

    def owner(self, job_id: str) -> str | None:
        """The ``owner`` given at the job's last submit or resubmit (``None``: unknown, e.g. after a
        restart). Called for every event on the event thread, so it takes no lock: a dict lookup and an
        attribute read are atomic, and the owner is set before the job's first event is emitted."""
        job = self._jobs.get(job_id)
        return None if job is None else job.owner

    def subscribe(self, callback: Callable[[JobEvent], None]) -> Callable[[], None]:
        """Call ``callback`` for every event, on the engine's event thread (keep it quick); returns unsubscribe."""
        return self._hub.subscribe(callback)

    # -- models ---------------------------------------------------------------------------------
    def models(self) -> list[ModelInfo]:
        loaded = set(self.backend.loaded())
        with self._lock:
            out = []
            for name in self.backend.models():
                state, error = self._model_state.get(name, ("loaded" if name in loaded else "available", None))
                try:
                    caps: dict[str, Any] | None = self.backend.capabilities(name).to_dict()
                except SegueError as exc:  # unreadable configs: listed, with the reason
                    caps, error = None, error or str(exc)
                out.append(ModelInfo(name, state, error, caps))
            return out

    def load_model(self, name: str) -> ModelInfo:
        """Load a model on the worker before the next job (state ``loading`` until it is in memory)."""
        return self._model_task("load", name)

    def unload_model(self, name: str) -> ModelInfo:
        """Free a model's memory before the next job (a later job that needs it loads it again)."""
        return self._model_task("unload", name)

    # -- retention ------------------------------------------------------------------------------
    def prune(self) -> tuple[str, ...]:
        """Forget ended jobs past the retention rules (``EngineConfig``): journal rows, transitions,
        events, then their store folders. Jobs that are waiting, loading or running are never pruned."""
        cfg = self.config
        with self._lock:
            self._next_prune = time.monotonic() + cfg.retention_interval_s
            if not cfg.retention_days and not cfg.retention_jobs:
                return ()
            active = [job_id for job_id, job in self._jobs.items() if job.state in ACTIVE]
            cutoff = time.time() - cfg.retention_days * 86400 if cfg.retention_days else None
            try:
                pruned = self.journal.prune(cutoff, cfg.retention_jobs or None, exclude=active)
            except Exception:  # a full disk must not stop the worker; the next check tries again
                log.exception("retention: could not prune the journal")
                return ()
            for job_id in pruned:
                self._jobs.pop(job_id, None)
        for job_id in pruned:  # outside the lock: no one can name these jobs any more
            self.store.remove_job(job_id)
        if pruned:
            log.info("retention: forgot %d ended jobs (older than %g days or beyond the newest %d)",
                     len(pruned), cfg.retention_days, cfg.retention_jobs)
        return tuple(pruned)

    def _prune_wait(self) -> float | None:
        """Seconds until the next retention check (``None``: retention is off)."""
        if not self.config.retention_days and not self.config.retention_jobs:
            return None
        return max(0.0, self._next_prune - time.monotonic())

    # -- shutdown -------------------------------------------------------------------------------
    def shutdown(self, timeout: float = 10.0) -> None:
        """Stop taking jobs; waiting jobs become ``interrupted``; the running one is cancelled (marked
        interrupted) or, with ``finish_running_on_shutdown``, given ``timeout`` seconds to finish."""
        deadline = time.monotonic() + timeout
        with self._lock:
            if self._closing:
                return
            self._closing = True
            for job_id in self._queue.order():
                self._queue.remove(job_id)
                self.finish(self._jobs[job_id], JobState.INTERRUPTED, "interrupted", "the daemon shut down")
            current = self._current
            if current is not None and current.token is not None and not self.config.finish_running_on_shutdown:
                current.token.cancel(SHUTDOWN)
                if current.state is JobState.LOADING:  # a model load cannot be cancelled; do not wait for it
                    self.finish(current, JobState.INTERRUPTED, "interrupted", "the daemon shut down")
            self._stop_worker = True
            self._wake.notify_all()
        self._worker.join(max(0.0, deadline - time.monotonic()))
        if self._worker.is_alive():
            with self._lock:
                if self._current is not None and self._current.token is not None:
                    self._current.token.cancel(SHUTDOWN)
            self._worker.join(max(0.2, deadline - time.monotonic()))
        self._hub.close(max(0.5, deadline - time.monotonic()))
        self.journal.checkpoint()

    # -- used by the runner (worker thread) -----------------------------------------------------
    def emit(self, job_id: str, kind: EventType, data: dict[str, Any] | None = None) -> JobEvent | None:
        """Send a job's event; ``None`` (nothing sent) once the job has ended: nothing follows a terminal
        event (a job cancelled while its model loads still reports the load's progress otherwise)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and job.record.state not in ACTIVE:
                log.debug("job %s has ended; its %s event is not sent", job_id, kind.value)
                return None
            return self._hub.emit(job_id, kind, data)

    def finish(
        self,
        job: RunningJob,
        state: JobState,
        code: str | None = None,
        message: str | None = None,
        results: tuple[ResultFile, ...] = (),
        run: CancelToken | None = None,
    ) -> None:
        """Move ``job`` to an end state, journal it and tell the clients. ``run``: the token of the run
        that reports, so a run that was cut off (and maybe resubmitted since) cannot end the new one."""
        with self._lock:
            record = job.record
            if record.state not in ACTIVE or (run is not None and job.token is not run):
                return  # already ended (e.g. cancelled while its model loaded)
            record.state, record.finished = state, time.time()
            record.error_code, record.error_message, record.results = code, message, results
            self.journal.update_job(record, reason=message)
            if state is JobState.DONE:
                self._hub.emit(job.id, EventType.RESULT_READY, {"results": [r.to_dict() for r in results]})
            elif state is JobState.FAILED:
                self._hub.emit(job.id, EventType.FAILED, {"code": code, "message": message})
            elif state is JobState.CANCELLED:
                self._hub.emit(job.id, EventType.CANCELLED, {"reason": message})
            elif state is JobState.INTERRUPTED:
                self._hub.emit(job.id, EventType.INTERRUPTED, {"reason": message})

    def set_state(self, job: RunningJob, state: JobState, reason: str, run: CancelToken | None = None) -> bool:
        """Journal a running state; ``False`` if the job already ended (cancelled while loading)."""
        with self._lock:
            if job.state not in ACTIVE or (run is not None and job.token is not run):
                return False
            job.record.state = state
            if state is JobState.RUNNING:
                job.record.started = time.time()
                job.run_started = time.monotonic()
            self.journal.update_job(job.record, reason=reason)
            return True

    def record_throughput(self, job: RunningJob, seconds: float) -> None:
        with self._lock:
            self._throughput.record(_work_of(job.record.spec), seconds)

    def eta_running(self, job: RunningJob) -> float | None:
        with self._lock:
            needed = self._throughput.seconds_for(_work_of(job.record.spec))
            if needed is None or job.run_started is None:
                return None
            return max(0.0, needed - (time.monotonic() - job.run_started))

    def model_changed(self, name: str, state: str | None, error: str | None = None) -> None:
        with self._lock:
            if state is None:
                self._model_state.pop(name, None)
            else:
                self._model_state[name] = (state, error)

    # -- internals ------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            with self._lock:
                while not (self._stop_worker or self._control or len(self._queue) or self._prune_wait() == 0.0):
                    self._wake.wait(self._prune_wait())
                if self._stop_worker:
                    return
                prune = self._prune_wait() == 0.0  # between jobs, never while one runs
                task: tuple[str, str] | None = None
                job: RunningJob | None = None
                if prune:
                    pass
                elif self._control:
                    task = self._control.popleft()
                else:
                    job = self._jobs[self._queue.pop() or ""]
                    job.start()
                    self._current = job
                    loading = job.record.spec.model not in self.backend.loaded()
                    self.set_state(job, JobState.LOADING if loading else JobState.RUNNING, "started")
                    self._announce_queue()
            try:
                if prune:
                    self.prune()
                elif task is not None:
                    self._runner.model_task(*task)
                elif job is not None:
                    self._runner.run(job)
            except Exception:  # the runner reports job failures itself; this keeps the worker alive
                log.exception("worker task failed")
            finally:
                with self._lock:
                    self._current = None

    def _resubmittable(self, job_id: str) -> RunningJob:
        job = self._job(job_id)
        if job.state not in RESUBMITTABLE:
            raise JobStateError(
                f"job {job_id} is {job.state.value}; only interrupted, failed or cancelled jobs can be resubmitted"
            )
        if job.record.unreadable is not None:
            raise JobStateError(f"job {job_id} could not be read from the journal, so it cannot run again;"
                                " submit it anew")
        self._check_admission(job.record.spec)
        return job

    def _check_admission(self, spec: JobSpec) -> None:
        if self._closing:
            raise EngineClosed("the daemon is shutting down and takes no new jobs")
        spec.check_seeds()
        models = self.backend.models()
        if spec.model not in models:
            raise JobNotFound(f"model {spec.model!r} is not known; available: {', '.join(models) or 'none'}")
        caps = self.backend.capabilities(spec.model)
        caps.check(
            spec.model, spec.kind.value, spec.length_s, midi=spec.midi is not None, stems=spec.stem_labels,
            guidance=spec.guidance,
        )  # fmt: skip
        spec.check_conditions(caps)
        if len(self._queue) >= self.config.queue_limit:
            raise QueueFull(
                f"the queue is full: {len(self._queue)} jobs are waiting and the limit is "
                f"{self.config.queue_limit}; retry when a job finishes"
            )

    def _resolve(self, job_id: str, spec: JobSpec, open_input: Opener | None) -> JobSpec:
        """Spool client bytes (and, with ``open_input``, the files client paths name) to the store and
        pick seeds, so the journaled spec reruns identically from the daemon's own copies."""

        def spool(index: int, item: AudioInput) -> AudioInput:
            return self.store.spool_input(job_id, index, item, open_input)

        seeds = spec.seeds or tuple(secrets.randbelow(2**31) for _ in range(spec.candidates))
        return replace(
            spec,
            region=None if spec.region is None else spool(0, spec.region),
            codes=None if spec.codes is None else spool(1, spec.codes),
            midi=None if spec.midi is None else spool(2, spec.midi),
            stems=tuple(spool(3 + i, s) for i, s in enumerate(spec.stems)),
            seeds=seeds,
        )

    def _enqueue(self, job: RunningJob) -> None:
        spec = job.record.spec
        self._queue.push(job.id, spec.client, spec.priority)
        self.emit(job.id, EventType.ACCEPTED, {"model": spec.model, "kind": spec.kind.value, "client": spec.client})
        self._announce_queue()
        self._wake.notify_all()

    def _announce_queue(self) -> None:
        """Emit ``queued`` (position, eta_s) for every waiting job whose position changed."""
        for job_id, (position, eta) in self._positions().items():
            job = self._jobs[job_id]
            if job.announced_position != position:
                job.announced_position = position
                self.emit(job_id, EventType.QUEUED, {"position": position, "eta_s": eta})

    def _positions(self) -> dict[str, tuple[int, float | None]]:
        """Queue position (1 = next) and seconds until the result, for every waiting job."""
        ahead: float | None = 0.0
        current = self._current
        if current is not None:
            ahead = self.eta_running(current)
        out = {}
        for i, job_id in enumerate(self._queue.order()):
            needed = self._throughput.seconds_for(_work_of(self._jobs[job_id].record.spec))
            ahead = None if ahead is None or needed is None else ahead + needed
            out[job_id] = (i + 1, None if ahead is None else round(ahead, 2))
        return out

    def _heartbeat(self) -> None:
        with self._lock:
            job = self._current
        if job is not None:
            self._runner.heartbeat(job)

    def _model_task(self, kind: str, name: str) -> ModelInfo:
        with self._lock:
            if name not in self.backend.models():
                raise JobNotFound(f"model {name!r} is not known; available: {', '.join(self.backend.models())}")
            if self._closing:
                raise EngineClosed("the daemon is shutting down")
            if kind == "load" and name not in self.backend.loaded():
                self._model_state[name] = ("loading", None)
            self._control.append((kind, name))
            self._wake.notify_all()
        return next(m for m in self.models() if m.name == name)

    def _job(self, job_id: str) -> RunningJob:
        job = self._jobs.get(job_id)
        if job is None:
            raise JobNotFound(f"no job with id {job_id!r}")
        return job

    def _info(self, job: RunningJob, positions: dict[str, tuple[int, float | None]] | None = None) -> JobInfo:
        position = eta = None
        if job.id in self._queue:
            position, eta = (positions or self._positions())[job.id]
        elif job is self._current and job.state is JobState.RUNNING:
            eta = self.eta_running(job)
        return job.info(queue_position=position, eta_s=eta)


def _work_of(spec: JobSpec) -> float:
    """Amount of work of a job for throughput: seconds of audio times candidates."""
    return spec.length_s * spec.candidates

