"""Start-up reconciliation of the journal with the render store, after a clean stop or a crash.

Run before the engine takes jobs, while no other segue process writes to the store:
1. temp files of writers that died mid-write are deleted (no partial file is ever visible);
2. a job the journal has as accepted/queued/loading/running whose manifest is on disk finished just
   before the crash: it becomes ``done`` with the results from the manifest;
3. any other such job becomes ``interrupted`` (its incomplete renders are removed); ``resubmit`` runs
   it again with the same spec and seeds;
4. a finished job on disk that the journal does not know (journal deleted or restored from an older
   copy) is added to the journal as ``done``;
5. a ``done`` job whose files were deleted by hand is reported in ``missing`` and left as it is;
6. a job whose row no longer loads (a spec a newer rule rejects, a damaged column) becomes ``failed``
   with code ``bad_journal``; its stored row is kept as it is for inspection, and the daemon starts.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from bridge.jobs import ACTIVE, EventType, JobEvent, JobState
from bridge.state.journal import UNREADABLE_CODE, JobRecord, Journal
from bridge.state.store import RenderStore

log = logging.getLogger(__name__)

INTERRUPTED_MESSAGE = "the daemon stopped while this job was {state}; resubmit it to run it again"


@dataclass(frozen=True)
class RecoveryReport:
    temp_files_removed: tuple[str, ...] = ()
    interrupted: tuple[str, ...] = ()  # job ids now 'interrupted'
    completed: tuple[str, ...] = ()  # job ids found finished on disk and marked 'done'
    imported: tuple[str, ...] = ()  # finished jobs on disk the journal did not know
    missing: tuple[str, ...] = ()  # 'done' jobs whose files are gone
    unreadable: tuple[str, ...] = ()  # job ids whose journal row did not load, now 'failed' (bad_journal)


def recover(journal: Journal, store: RenderStore) -> RecoveryReport:
    removed = tuple(str(p) for p in store.remove_temp_files())
    interrupted: list[str] = []
    completed: list[str] = []
    missing: list[str] = []
    unreadable: list[str] = []
    events: list[JobEvent] = []
    seq = journal.last_seq()
    now = time.time()
    known = set()
    for record in journal.jobs():
        known.add(record.id)
        if record.unreadable is not None:
            if record.error_code != UNREADABLE_CODE:  # marked once; later starts leave it as it is
                journal.mark_unreadable(record)
                seq += 1
                data = {"code": record.error_code, "message": record.error_message}
                events.append(JobEvent(seq, record.id, EventType.FAILED, data, now))
                unreadable.append(record.id)
        elif record.state in ACTIVE:
            stored = store.finished(record.id)
            if stored is not None:
                record.state, record.results, record.finished = JobState.DONE, stored.results, stored.finished
                journal.update_job(record, reason="recovered: finished on disk before the daemon stopped")
                seq += 1
                results = [r.to_dict() for r in stored.results]
                events.append(JobEvent(seq, record.id, EventType.RESULT_READY, {"results": results}, now))
                completed.append(record.id)
                continue
            store.clear(record.id)
            message = INTERRUPTED_MESSAGE.format(state=record.state.value)
            record.state, record.finished = JobState.INTERRUPTED, now
            record.error_code, record.error_message = "interrupted", message
            journal.update_job(record, reason="daemon restarted")
            seq += 1
            events.append(JobEvent(seq, record.id, EventType.INTERRUPTED, {"reason": message}, now))
            interrupted.append(record.id)
        elif record.state is JobState.DONE and store.finished(record.id) is None:
            missing.append(record.id)
    imported = []
    for stored in store.list_results():
        if stored.job_id not in known:
            journal.add_job(
                JobRecord(stored.job_id, stored.spec, JobState.DONE, stored.finished, None, stored.finished,
                          results=stored.results),
                reason="recovered from the render store",
            )
            imported.append(stored.job_id)
    journal.add_events(events)
    return RecoveryReport(removed, tuple(interrupted), tuple(completed), tuple(imported), tuple(missing),
                          tuple(unreadable))


def log_report(report: RecoveryReport) -> None:
    """Log what ``recover`` found and did at daemon start."""
    if report.temp_files_removed:
        log.info("removed %d temp files of interrupted writes", len(report.temp_files_removed))
    for job_id in report.interrupted:
        log.warning("job %s was cut off when the daemon stopped; it is 'interrupted' (resubmit to run it)", job_id)
    for job_id in report.completed + report.imported:
        log.info("job %s found finished in the render store", job_id)
    for job_id in report.unreadable:
        log.error("job %s could not be read from the journal; it is marked failed (bad_journal) and kept", job_id)
    for job_id in report.missing:
        log.warning("job %s is done but its files are gone from the render store", job_id)
