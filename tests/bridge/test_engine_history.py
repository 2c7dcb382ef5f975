"""Job history: reading stored events back (``events_since``) and retention of ended jobs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bridge.engine.backend import Candidate
from bridge.engine.config import EngineConfig
from bridge.engine.engine import JobEngine
from bridge.jobs import TERMINAL, AudioInput, EventType, JobEvent, JobNotFound, JobState
from bridge.state.journal import JobRecord, Journal
from bridge.state.store import RenderStore
from common.errors import ConfigError
from tests.bridge.tone_backend import ToneBackend, spec, tone, wait_until

DAY = 86400.0


def _engine(root: Path, backend: ToneBackend | None = None, **config: object) -> JobEngine:
    return JobEngine(backend or ToneBackend(), Journal(root / "journal.sqlite3"), RenderStore(root / "store"),
                     EngineConfig(**config))  # type: ignore[arg-type]


def _run(engine: JobEngine, **fields: object) -> str:
    job_id = engine.submit(spec(**fields)).id  # type: ignore[arg-type]
    wait_until(lambda: engine.status(job_id).state in TERMINAL)
    engine._hub.flush()
    return job_id


def test_events_since_pages_through_one_jobs_stored_events(tmp_path: Path) -> None:
    engine = _engine(tmp_path)
    try:
        first, second = _run(engine), _run(engine)
        stored = engine.journal.events(second)
        assert stored[0].type is EventType.ACCEPTED and stored[-1].type is EventType.RESULT_READY
        got: list[JobEvent] = []
        after = 0
        while True:
            page = engine.events_since(second, after, limit=3)
            assert len(page.events) <= 3 and all(e.job_id == second for e in page.events)
            got += page.events
            assert page.next_after == (page.events[-1].seq if page.events else after)
            if not page.more:
                break
            after = page.next_after
        assert got == stored  # every event once, oldest first, none of the first job's
        tail = engine.events_since(second, stored[-2].seq)
        assert [e.seq for e in tail.events] == [stored[-1].seq] and not tail.more
        assert engine.events_since(second, stored[-1].seq).events == ()
        assert engine.events_since(first).events[0].job_id == first
        with pytest.raises(JobNotFound, match="no job with id 'nope'"):
            engine.events_since("nope")
    finally:
        engine.shutdown(2.0)


def _ended(journal: Journal, store: RenderStore, job_id: str, finished: float, seq: int) -> None:
    """A done job, ``finished`` at that unix time, with one stored event and its files on disk."""
    s = spec()
    result = store.write_take(job_id, s, Candidate(0, 1, tone(1, 0.1, 8000), 8000))
    store.finish(job_id, s, (result,))
    store.spool_input(job_id, 0, AudioInput(data=b"x", format="wav"))
    journal.add_job(JobRecord(job_id, s, JobState.DONE, finished - 1, finished - 1, finished, results=(result,)))
    journal.add_events([JobEvent(seq, job_id, EventType.RESULT_READY, {}, finished)])


def test_start_up_prunes_jobs_older_than_retention_days_with_their_files(tmp_path: Path) -> None:
    journal, store = Journal(tmp_path / "journal.sqlite3"), RenderStore(tmp_path / "store")
    now = time.time()
    _ended(journal, store, "old", now - 31 * DAY, 1)
    _ended(journal, store, "recent", now - 29 * DAY, 2)
    engine = JobEngine(ToneBackend(), journal, store, EngineConfig())  # default: 30 days, 1000 jobs
    try:
        assert journal.job("old") is None and journal.events("old") == [] and journal.transitions("old") == []
        assert not store.job_dir("old").exists() and not (store.inputs / "old").exists()
        assert journal.job("recent") is not None and store.finished("recent") is not None
        with pytest.raises(JobNotFound):
            engine.status("old")
        assert engine.status("recent").state is JobState.DONE
        job_id = _run(engine)  # numbering goes on after the pruned events
        assert engine.journal.events(job_id)[0].seq == 3
    finally:
        engine.shutdown(2.0)


def test_only_the_newest_ended_jobs_are_kept_and_active_ones_never_pruned(tmp_path: Path) -> None:
    backend = ToneBackend(token_s=0.0)
    engine = _engine(tmp_path, backend, retention_jobs=2)
    try:
        done = [_run(engine) for _ in range(3)]
        backend.gate = threading.Event()  # the next job holds at its start
        running = engine.submit(spec()).id
        wait_until(lambda: engine.status(running).state is JobState.RUNNING)
        waiting = engine.submit(spec()).id
        assert engine.prune() == (done[0],)  # the oldest ended job goes; running and waiting stay
        assert {j.id for j in engine.list_jobs()} == {*done[1:], running, waiting}
        assert not engine.store.job_dir(done[0]).exists() and engine.store.finished(done[1]) is not None
        backend.gate.set()
        wait_until(lambda: engine.status(waiting).state is JobState.DONE)
        wait_until(lambda: engine.status(running).state is JobState.DONE)
        assert set(engine.prune()) == {done[1], done[2]}  # running and waiting ended last: they stay
    finally:
        engine.shutdown(2.0)


def test_the_worker_prunes_periodically(tmp_path: Path) -> None:
    engine = _engine(tmp_path, ToneBackend(token_s=0.0), retention_days=0.3 / DAY, retention_interval_s=0.1)
    try:
        job_id = _run(engine)
        assert engine.store.job_dir(job_id).is_dir()
        wait_until(lambda: engine.journal.job(job_id) is None, timeout=3.0)  # ended 0.3 s ago: forgotten
        wait_until(lambda: not engine.store.job_dir(job_id).exists(), timeout=1.0)
        with pytest.raises(JobNotFound):
            engine.status(job_id)
    finally:
        engine.shutdown(2.0)


def test_retention_off_keeps_everything(tmp_path: Path) -> None:
    journal, store = Journal(tmp_path / "journal.sqlite3"), RenderStore(tmp_path / "store")
    _ended(journal, store, "ancient", time.time() - 3650 * DAY, 1)
    engine = JobEngine(ToneBackend(), journal, store, EngineConfig(retention_days=0, retention_jobs=0))
    try:
        assert engine.prune() == () and engine.status("ancient").state is JobState.DONE
    finally:
        engine.shutdown(2.0)


@pytest.mark.parametrize(("option", "value"), [("retention_days", -1.0), ("retention_jobs", -1),
                                               ("retention_interval_s", 0.0)])
def test_bad_retention_options_name_themselves(option: str, value: float) -> None:
    with pytest.raises(ConfigError, match=option):
        EngineConfig(**{option: value})  # type: ignore[arg-type]
