"""Job journal: durable settings, persistence across reopen, transitions and events."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.jobs import EventType, JobEvent, JobState, ResultFile
from bridge.state.journal import JobRecord, Journal, JournalError
from tests.bridge.tone_backend import spec


def test_wal_and_full_sync(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "deep" / "j.sqlite3")
    assert journal._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert journal._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_jobs_transitions_and_events_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    record = JobRecord("job1", spec(client="live", candidates=2), JobState.QUEUED, 100.0)
    journal.add_job(record)
    record.state, record.started = JobState.RUNNING, 101.0
    journal.update_job(record, reason="started")
    result = ResultFile("/r/candidate-0.wav", 48000, 480, seed=7)
    record.state, record.finished, record.results = JobState.DONE, 102.0, (result,)
    journal.update_job(record)
    journal.add_events([JobEvent(1, "job1", EventType.ACCEPTED, {"a": 1}, 100.0),
                        JobEvent(2, "job1", EventType.RESULT_READY, {"results": [result.to_dict()]}, 102.0),
                        JobEvent(3, "job2", EventType.QUEUED, {"position": 1}, 102.5)])
    del journal  # no close: as after a crash, the WAL holds the commits

    again = Journal(path)
    stored = again.job("job1")
    assert stored is not None and stored.spec == record.spec and stored.results == (result,)
    assert (stored.state, stored.started, stored.finished) == (JobState.DONE, 101.0, 102.0)
    assert [s for s, _, _ in again.transitions("job1")] == [JobState.QUEUED, JobState.RUNNING, JobState.DONE]
    assert [e.seq for e in again.events("job1")] == [1, 2]
    assert [e.seq for e in again.events(after=1)] == [2, 3]
    assert again.last_seq() == 3
    assert [r.id for r in again.jobs([JobState.DONE])] == ["job1"] and again.jobs([JobState.FAILED]) == []
    again.checkpoint()


def test_update_of_unknown_job_and_newer_schema_fail(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "j.sqlite3")
    with pytest.raises(JournalError, match="not in the journal"):
        journal.update_job(JobRecord("ghost", spec(), JobState.DONE, 1.0))
    journal._db.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    journal.close()
    with pytest.raises(JournalError, match="schema 99 is newer"):
        Journal(tmp_path / "j.sqlite3")


def test_not_a_database(tmp_path: Path) -> None:
    bad = tmp_path / "j.sqlite3"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match="cannot open the job journal"):
        Journal(bad)


def test_prune_deletes_ended_jobs_keeps_active_and_excluded_ones_and_the_event_numbering(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    journal = Journal(path)
    for i, state in enumerate([JobState.DONE, JobState.FAILED, JobState.QUEUED, JobState.CANCELLED]):
        journal.add_job(JobRecord(f"job{i}", spec(), state, 10.0 + i, finished=None if state is JobState.QUEUED else 20.0 + i))
        journal.add_events([JobEvent(i + 1, f"job{i}", EventType.ACCEPTED, {}, 10.0 + i)])
    assert journal.prune(finished_before=None, keep=None) == []
    assert journal.prune(finished_before=21.5, keep=None, exclude=["job0"]) == ["job1"]  # job0 is excluded
    assert journal.prune(finished_before=None, keep=1) == ["job0"]  # job3 ended last; job2 is queued
    assert [r.id for r in journal.jobs()] == ["job2", "job3"]
    assert journal.events("job0") == [] and journal.transitions("job1") == []
    assert journal.prune(finished_before=1e12, keep=None) == ["job3"]  # the newest event goes with it...
    journal.close()
    assert Journal(path).last_seq() == 4  # ...but its number is never used again
