"""The job journal: every job, every state change and every event, in one SQLite file.

Durability: the database runs in WAL mode with ``synchronous=FULL``. With WAL, ``NORMAL`` already
survives a crash of the daemon (``kill -9``), but the last commits can roll back after a power cut or
an OS crash. The daemon tells a client "accepted" or "result_ready" only after the matching commit, so
those promises must survive a power cut too: ``FULL`` fsyncs the WAL on every commit. That costs one
fsync per transaction (about 1-10 ms), which is small because state changes are few per job and
events are written in batches by the engine's event thread.

One connection is shared by all threads behind a lock; every public method is one short transaction.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.jobs import ACTIVE, EventType, JobEvent, JobKind, JobSpec, JobState, Length, ResultFile
from common.errors import SegueError

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    client TEXT NOT NULL,
    priority INTEGER NOT NULL,
    spec TEXT NOT NULL,              -- JobSpec.to_dict() as JSON; inputs are paths, never bytes
    state TEXT NOT NULL,             -- JobState value
    created REAL NOT NULL,           -- unix seconds
    started REAL,
    finished REAL,
    error_code TEXT,
    error_message TEXT,
    results TEXT NOT NULL DEFAULT '[]',  -- list of ResultFile.to_dict()
    attempts INTEGER NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS transitions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL,
    state TEXT NOT NULL,
    time REAL NOT NULL,
    reason TEXT
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,         -- the daemon-wide event number
    job_id TEXT NOT NULL,
    type TEXT NOT NULL,
    time REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_job ON events (job_id, seq);
CREATE INDEX IF NOT EXISTS transitions_by_job ON transitions (job_id, id);
"""


class JournalError(SegueError):
    """The journal file cannot be opened or was written by a newer segue."""

    code = "bad_journal"


@dataclass
class JobRecord:
    """One row of ``jobs``: the durable part of a job."""

    id: str
    spec: JobSpec
    state: JobState
    created: float
    started: float | None = None
    finished: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    results: tuple[ResultFile, ...] = ()
    attempts: int = 1
    unreadable: str | None = None  # why the stored row did not load; ``spec`` is then a stand-in


UNREADABLE_CODE = "bad_journal"

class Journal:
    """SQLite journal at ``path`` (created with its directory if missing)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path}: cannot open the job journal ({exc})") from exc
        self._lock = threading.Lock()
        version = self._meta("schema_version")
        if version is None:
            self._set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(version) > SCHEMA_VERSION:
            raise JournalError(
                f"{self.path}: journal schema {version} is newer than this segue understands ({SCHEMA_VERSION})"
            )

    # -- jobs -----------------------------------------------------------------------------------
    def add_job(self, record: JobRecord, reason: str = "submitted") -> None:
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT INTO jobs (id, client, priority, created, spec, state, started, finished,"
                " error_code, error_message, results, attempts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (record.id, record.spec.client, record.spec.priority, record.created, *_changing_columns(record)),
            )
            self._transition(record.id, record.state, reason)

    def update_job(self, record: JobRecord, reason: str | None = None) -> None:
        """Write the record's spec, state, times, error and results, and log the state change."""
        if record.unreadable is not None:  # its spec is a stand-in: writing it would lose the stored row
            raise JournalError(f"{self.path}: job {record.id} could not be read from the journal; it cannot change")
        with self._lock, self._db:
            self._db.execute("BEGIN")
            cur = self._db.execute(
                "UPDATE jobs SET spec=?, state=?, started=?, finished=?, error_code=?, error_message=?,"
                " results=?, attempts=? WHERE id=?",
                (*_changing_columns(record), record.id),
            )
            if cur.rowcount != 1:
                raise JournalError(f"{self.path}: job {record.id} is not in the journal")
            self._transition(record.id, record.state, reason)

    def mark_unreadable(self, record: JobRecord) -> None:
        """Mark a row that no longer loads as failed (``bad_journal``), keeping its stored spec and
        results untouched for inspection."""
        record.state, record.finished = JobState.FAILED, record.finished or time.time()
        record.error_code = UNREADABLE_CODE
        record.error_message = f"job {record.id} could not be read from the journal: {record.unreadable}"
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.execute(
                "UPDATE jobs SET state=?, finished=?, error_code=?, error_message=? WHERE id=?",
                (record.state.value, record.finished, record.error_code, record.error_message, record.id),
            )
            self._transition(record.id, record.state, "could not be read from the journal")

    def jobs(self, states: Iterable[JobState] | None = None) -> list[JobRecord]:
        """Every job (or those in ``states``). A row that no longer loads (a spec a newer rule
        rejects, a damaged JSON column) comes back with ``unreadable`` set and a stand-in spec."""
        query = "SELECT id, client, priority, spec, state, created, started, finished, error_code," \
            " error_message, results, attempts FROM jobs"
        args: list[str] = []
        if states is not None:
            wanted = [s.value for s in states]
            query += f" WHERE state IN ({','.join('?' * len(wanted))})"
            args = wanted
        with self._lock:
            rows = self._db.execute(query + " ORDER BY created, id", args).fetchall()
        return [_record(row) for row in rows]

    def job(self, job_id: str) -> JobRecord | None:
        with self._lock:
            row = self._db.execute(
                "SELECT id, client, priority, spec, state, created, started, finished, error_code,"
                " error_message, results, attempts FROM jobs WHERE id=?",
                (job_id,),
            ).fetchone()
        return None if row is None else _record(row)

    def transitions(self, job_id: str) -> list[tuple[JobState, float, str | None]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT state, time, reason FROM transitions WHERE job_id=? ORDER BY id", (job_id,)
            ).fetchall()
        return [(JobState(s), float(t), r) for s, t, r in rows]

    # -- events ---------------------------------------------------------------------------------
    def add_events(self, events: Iterable[JobEvent]) -> None:
        """Append events in one transaction (the event thread batches them)."""
        rows = [(e.seq, e.job_id, e.type.value, e.time, json.dumps(e.data)) for e in events]
        if not rows:
            return
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT INTO events (seq, job_id, type, time, data) VALUES (?,?,?,?,?)", rows)

    def events(self, job_id: str | None = None, after: int = 0, limit: int = 10_000) -> list[JobEvent]:
        """Stored events with ``seq > after``, oldest first (one job's, or all)."""
        query = "SELECT seq, job_id, type, time, data FROM events WHERE seq > ?"
        args: list[Any] = [after]
        if job_id is not None:
            query += " AND job_id = ?"
            args.append(job_id)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY seq LIMIT ?", [*args, limit]).fetchall()
        return [JobEvent(int(s), str(j), EventType(t), json.loads(d), float(tm)) for s, j, t, tm, d in rows]

    def last_seq(self) -> int:
        """The highest event number ever stored, also when ``prune`` has deleted that event since."""
        with self._lock:
            row = self._db.execute("SELECT MAX(seq) FROM events").fetchone()
            pruned = self._meta("pruned_seq")
        return max(int(row[0] or 0), int(pruned or 0))

    # -- retention ------------------------------------------------------------------------------
    def prune(self, finished_before: float | None, keep: int | None, exclude: Iterable[str] = ()) -> list[str]:
        """Delete ended jobs (every state but accepted/queued/loading/running) with their transitions
        and events: those that ended before ``finished_before`` (unix seconds) and those beyond the
        ``keep`` most recently ended. ``None`` turns a rule off; jobs in ``exclude`` are never deleted.
        Returns the deleted ids, in one transaction."""
        active = [s.value for s in ACTIVE]
        ended = f"state NOT IN ({','.join('?' * len(active))})"
        when = "COALESCE(finished, created)"
        skip = set(exclude)
        with self._lock, self._db:
            self._db.execute("BEGIN")
            doomed: set[str] = set()
            if finished_before is not None:
                rows = self._db.execute(f"SELECT id FROM jobs WHERE {ended} AND {when} < ?", [*active, finished_before])
                doomed.update(str(r[0]) for r in rows)
            if keep is not None:
                rows = self._db.execute(
                    f"SELECT id FROM jobs WHERE {ended} ORDER BY {when} DESC, id DESC LIMIT -1 OFFSET ?", [*active, keep]
                )
                doomed.update(str(r[0]) for r in rows)
            ids = sorted(doomed - skip)
            if not ids:
                return []
            top = self._db.execute("SELECT MAX(seq) FROM events").fetchone()[0]
            if top is not None and int(top) > int(self._meta("pruned_seq") or 0):
                self._set_meta("pruned_seq", str(int(top)))  # numbering goes on from here after a restart
            for start in range(0, len(ids), 500):  # SQLite limits the number of parameters per statement
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for table, column in (("events", "job_id"), ("transitions", "job_id"), ("jobs", "id")):
                    self._db.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", chunk)
        return ids

    # -- housekeeping ---------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Fold the WAL into the main file (at shutdown, so a copy of the .sqlite3 file is complete)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _transition(self, job_id: str, state: JobState, reason: str | None) -> None:
        self._db.execute(
            "INSERT INTO transitions (job_id, state, time, reason) VALUES (?,?,?,?)",
            (job_id, state.value, time.time(), reason),
        )

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))


def _changing_columns(record: JobRecord) -> tuple[Any, ...]:
    """Values of the columns a job's life changes, in the order spec, state, started, finished,
    error_code, error_message, results, attempts (both ``add_job`` and ``update_job`` write them)."""
    return (
        json.dumps(record.spec.to_dict()),
        record.state.value,
        record.started,
        record.finished,
        record.error_code,
        record.error_message,
        _results_json(record.results),
        record.attempts,
    )


def _results_json(results: Iterable[ResultFile]) -> str:
    return json.dumps([r.to_dict() for r in results])


def _record(row: tuple[Any, ...]) -> JobRecord:
    try:
        return _parse(row[:1] + row[3:])
    except (SegueError, ValueError, TypeError, KeyError, AttributeError) as exc:  # json errors are ValueErrors
        return _stand_in(row, f"{type(exc).__name__}: {exc}" if not isinstance(exc, SegueError) else str(exc))


def _parse(row: tuple[Any, ...]) -> JobRecord:
    job_id, spec, state, created, started, finished, code, message, results, attempts = row
    return JobRecord(
        id=str(job_id),
        spec=JobSpec.from_dict(json.loads(spec)),
        state=JobState(state),
        created=float(created),
        started=started,
        finished=finished,
        error_code=code,
        error_message=message,
        results=tuple(ResultFile.from_dict(r) for r in json.loads(results)),
        attempts=int(attempts),
    )


def _stand_in(row: tuple[Any, ...], why: str) -> JobRecord:
    """A record for a row that does not load: its id, client, priority and whatever else still
    parses, a minimal spec, and ``unreadable`` saying why."""
    job_id, client, priority, _spec, state, created, started, finished, code, message, _results, attempts = row

    def number(x: Any, default: Any = None) -> Any:
        return x if isinstance(x, (int, float)) and not isinstance(x, bool) else default

    try:
        known_state = JobState(state)
    except ValueError:
        known_state = JobState.FAILED
    try:  # keep the model name for 'jobs' listings when the JSON itself still parses
        raw = json.loads(_spec)
    except (ValueError, TypeError):
        raw = None
    raw = raw if isinstance(raw, dict) else {}
    stored_model = raw.get("model")
    model = stored_model if isinstance(stored_model, str) and stored_model else "(unreadable)"
    # 'generate' needs no input file, so the stand-in builds whatever the stored kind was
    spec = JobSpec(JobKind.GENERATE, model=model, length=Length(seconds=1.0), client=str(client),
                   priority=int(number(priority, 0)))
    return JobRecord(
        id=str(job_id),
        spec=spec,
        state=known_state,
        created=float(number(created, 0.0)),
        started=number(started),
        finished=number(finished),
        error_code=code if isinstance(code, str) else None,
        error_message=message if isinstance(message, str) else None,
        attempts=int(number(attempts, 1)),
        unreadable=why,
    )
