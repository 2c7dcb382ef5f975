"""Start-up recovery: a daemon killed with SIGKILL mid-job loses nothing and shows no partial file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from bridge.engine.backend import Candidate
from bridge.engine.engine import JobEngine
from bridge.jobs import EventType, JobState
from bridge.state.journal import JobRecord, Journal
from bridge.state.recovery import recover
from bridge.state.store import RenderStore
from model.atomic import TEMP_PREFIX
from tests.bridge.test_engine import Rig
from tests.bridge.tone_backend import ToneBackend, spec, tone, tone_codes, wait_until

ROOT = Path(__file__).resolve().parents[2]

DAEMON = """
import sys, time
from bridge.engine.engine import JobEngine
from bridge.jobs import JobState
from bridge.state.journal import Journal
from bridge.state.store import RenderStore
from tests.bridge.tone_backend import ToneBackend, spec, wait_until
root = sys.argv[1]
backend = ToneBackend(token_s=0.001, tokens=(20, 10))
engine = JobEngine(backend, Journal(root + "/journal.sqlite3"), RenderStore(root + "/store"))
done = engine.submit(spec(candidates=2, tag="done")).id
wait_until(lambda: engine.status(done).state is JobState.DONE)
backend.token_s = 0.05
cut = engine.submit(spec(candidates=2, tag="cut")).id
waiting = engine.submit(spec(tag="waiting")).id
wait_until(lambda: engine.status(cut).level == 0)  # previews are on disk, the full render is not
print(done, cut, waiting, flush=True)
time.sleep(60)
"""


def test_sigkill_mid_job_then_restart(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", DAEMON, str(tmp_path)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert len(line) == 3, "the daemon did not reach the point to kill it"
    done, cut, waiting = line
    store = RenderStore(tmp_path / "store")
    assert (store.job_dir(cut) / "candidate-0.preview.wav").is_file()  # a partial job was on disk
    before = Journal(tmp_path / "journal.sqlite3").last_seq()

    r = Rig(tmp_path, ToneBackend(token_s=0.001, tokens=(20, 10)))
    assert set(r.engine.recovery.interrupted) == {cut, waiting}
    assert r.engine.status(done).state is JobState.DONE
    assert [j.job_id for j in r.store.list_results()] == [done]
    assert all(Path(f.path).is_file() for f in r.engine.result(done))
    assert not store.job_dir(cut).exists()  # no file of the cut job stays visible
    assert not list(tmp_path.rglob(f"{TEMP_PREFIX}*"))
    interrupted = r.engine.status(cut)
    assert interrupted.state is JobState.INTERRUPTED and interrupted.error_code == "interrupted"
    assert r.journal.events(cut)[-1].type is EventType.INTERRUPTED
    seeds = r.journal.job(cut).spec.seeds  # type: ignore[union-attr]

    again = r.engine.resubmit(cut)
    assert again.state is JobState.QUEUED
    r.wait_done(cut)
    assert r.engine.status(cut).state is JobState.DONE and len(r.engine.result(cut)) == 2
    assert r.backend.runs[-1].seeds == seeds
    assert min(e.seq for e in r.events) > before  # seq never repeats across the restart
    r.engine.shutdown(2.0)


def test_reconciles_journal_and_store(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    store = RenderStore(tmp_path / "store")
    job = spec()
    take = Candidate(0, 1, tone(1, 0.5, 22050), 22050)
    # finished on disk just before the crash, journal still says running
    journal.add_job(JobRecord("ran", job, JobState.RUNNING, 1.0))
    store.finish("ran", job, (store.write_take("ran", job, take),))
    # finished on disk, journal lost it
    store.finish("lost", job, (store.write_take("lost", job, take),))
    # done in the journal, files deleted by hand
    journal.add_job(JobRecord("gone", job, JobState.DONE, 1.0))
    (store.renders / "x").mkdir()
    (store.renders / "x" / f"{TEMP_PREFIX}abc.wav").write_bytes(b"half")

    report = recover(journal, store)
    assert report.completed == ("ran",) and report.imported == ("lost",) and report.missing == ("gone",)
    assert report.interrupted == () and len(report.temp_files_removed) == 1
    assert journal.job("ran").state is JobState.DONE  # type: ignore[union-attr]
    assert journal.job("lost").results == store.finished("lost").results  # type: ignore[union-attr]
    assert journal.events("ran")[-1].type is EventType.RESULT_READY
    assert recover(journal, store).completed == ()  # a second pass changes nothing


def test_a_codes_result_survives_a_crash_and_a_lost_journal(tmp_path: Path) -> None:
    from dataclasses import replace

    from bridge.jobs import AudioInput, JobKind

    journal = Journal(tmp_path / "journal.sqlite3")
    store = RenderStore(tmp_path / "store")
    job = replace(spec(), kind=JobKind.ENCODE, region=AudioInput(path=str(tmp_path / "riff.wav")))
    journal.add_job(JobRecord("ran", job, JobState.RUNNING, 1.0))
    store.finish("ran", job, (store.write_take("ran", job, tone_codes(3, 0.1)),))
    store.finish("lost", job, (store.write_take("lost", job, tone_codes(4, 0.1)),))
    report = recover(journal, store)
    assert report.completed == ("ran",) and report.imported == ("lost",)
    for job_id in ("ran", "lost"):
        (result,) = journal.job(job_id).results  # type: ignore[union-attr]
        assert result.kind == "codes" and result.path.endswith("candidate-0.codes.npz") and result.frames == 768
    assert journal.events("ran")[-1].data["results"][0]["kind"] == "codes"


def test_engine_lists_recovered_jobs(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    journal.add_job(JobRecord("q1", spec(client="live"), JobState.QUEUED, 1.0))
    engine = JobEngine(ToneBackend(), journal, RenderStore(tmp_path / "store"))
    listed = engine.list_jobs(client="live", states=[JobState.INTERRUPTED])
    assert [j.id for j in listed] == ["q1"]
    engine.resubmit("q1")
    wait_until(lambda: engine.status("q1").state is JobState.DONE)
    engine.shutdown(2.0)


def test_unreadable_journal_rows_fail_the_job_not_the_daemon(tmp_path: Path) -> None:
    import sqlite3

    import pytest

    from bridge.jobs import JobStateError

    path = tmp_path / "journal.sqlite3"
    journal = Journal(path)
    for job_id in ("ok", "badjson", "badspec", "badstate"):
        journal.add_job(JobRecord(job_id, spec(client="live"), JobState.QUEUED, 1.0))
    journal.close()
    db = sqlite3.connect(path)  # damage rows the way a hand edit or an older/newer segue could
    db.execute("UPDATE jobs SET spec='{\"kind\": \"generate\", \"mod' WHERE id='badjson'")
    db.execute("UPDATE jobs SET spec=json_set(spec, '$.candidates', 0) WHERE id='badspec'")
    db.execute("UPDATE jobs SET state='exploded', results='nope' WHERE id='badstate'")
    db.commit()
    damaged = "SELECT id, spec, results FROM jobs WHERE id != 'ok'"
    stored = db.execute(damaged).fetchall()
    db.close()

    r = Rig(tmp_path, ToneBackend())
    assert set(r.engine.recovery.unreadable) == {"badjson", "badspec", "badstate"}
    assert r.engine.recovery.interrupted == ("ok",)
    for job_id in ("badjson", "badspec", "badstate"):
        info = r.engine.status(job_id)
        assert info.state is JobState.FAILED and info.error_code == "bad_journal"
        assert info.error_message.startswith(f"job {job_id} could not be read from the journal: ")  # type: ignore[union-attr]
        assert r.journal.events(job_id)[-1].type is EventType.FAILED
        with pytest.raises(JobStateError, match="could not be read"):
            r.engine.resubmit(job_id)
    assert "candidates must be at least 1" in r.engine.status("badspec").error_message  # type: ignore[operator]
    assert r.engine.status("badspec").model == "tiny"  # what still parses is shown
    assert r.engine.status("badjson").model == "(unreadable)"
    listed = {j.id: j.state for j in r.engine.list_jobs(client="live")}
    assert listed == {"ok": JobState.INTERRUPTED, "badjson": JobState.FAILED, "badspec": JobState.FAILED,
                      "badstate": JobState.FAILED}
    r.engine.resubmit("ok")
    r.wait_done("ok")
    assert r.engine.status("ok").state is JobState.DONE  # the daemon works on
    r.engine.shutdown(2.0)
    r.journal.close()

    db = sqlite3.connect(path)
    assert db.execute(damaged).fetchall() == stored  # damaged rows kept as they were, for inspection
    db.close()
    again = Rig(tmp_path, ToneBackend())  # a second start marks nothing again
    assert again.engine.recovery.unreadable == ()
    assert again.engine.status("badstate").state is JobState.FAILED
    again.engine.shutdown(2.0)
