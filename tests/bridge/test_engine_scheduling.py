"""Job engine scheduling: priority, per-client fairness, queue limit, positions/ETA, cancel latency, load."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.engine.engine import EngineConfig
from bridge.engine.queue import FairQueue
from bridge.jobs import EventType, JobEvent, JobState, QueueFull
from tests.bridge.test_engine import Rig
from tests.bridge.tone_backend import ToneBackend, spec, wait_until


@pytest.fixture
def gated(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path, ToneBackend(gate=threading.Event(), token_s=0.0005, tokens=(4, 2), load_s=0.0),
            EngineConfig(queue_limit=12))
    yield r
    r.engine.shutdown(2.0)


def _hold_worker(r: Rig) -> str:
    blocker = r.engine.submit(spec(client="x", tag="blocker")).id
    wait_until(lambda: r.engine.status(blocker).state is JobState.RUNNING)
    return blocker


def test_priority_then_round_robin_across_clients(gated: Rig) -> None:
    _hold_worker(gated)
    for i in range(6):
        gated.engine.submit(spec(client="a", tag=f"a{i}"))
    for i in range(2):
        gated.engine.submit(spec(client="b", tag=f"b{i}"))
    gated.engine.submit(spec(client="c", tag="c0"))
    gated.engine.submit(spec(client="d", tag="d0", priority=5))
    queued = {j.id: j.queue_position for j in gated.engine.list_jobs(states=[JobState.QUEUED])}
    assert sorted(queued.values()) == list(range(1, 11))
    assert gated.backend.gate is not None
    gated.backend.gate.set()
    wait_until(lambda: len(gated.backend.runs) == 11 and not gated.engine.list_jobs(states=[JobState.QUEUED,
                                                                                          JobState.RUNNING]))
    order = [s.artist for s in gated.backend.runs[1:]]
    assert order == ["d0", "a0", "b0", "c0", "a1", "b1", "a2", "a3", "a4", "a5"]


def test_fair_queue_order_matches_pops() -> None:
    q = FairQueue()
    for i, (client, prio) in enumerate([("a", 0), ("a", 0), ("b", 0), ("a", 1), ("c", 0), ("b", 0)]):
        q.push(f"j{i}", client, prio)
    planned = q.order()
    assert q.remove("j4") and not q.remove("j4")
    planned.remove("j4")
    assert [q.pop() for _ in range(len(q))] == planned and q.pop() is None


def test_queue_limit_answers_busy(tmp_path: Path) -> None:
    r = Rig(tmp_path, ToneBackend(gate=threading.Event()), EngineConfig(queue_limit=3))
    _hold_worker(r)
    for _ in range(3):
        r.engine.submit(spec())
    with pytest.raises(QueueFull, match="limit is 3") as err:
        r.engine.submit(spec())
    assert err.value.code == "busy"
    r.engine.shutdown(2.0)


def test_an_encode_job_does_not_count_towards_the_sampling_throughput(gated: Rig, tmp_path: Path) -> None:
    from dataclasses import replace

    from bridge.jobs import AudioInput, JobKind

    assert gated.backend.gate is not None
    gated.backend.gate.set()
    region = tmp_path / "riff.wav"
    region.write_bytes(b"RIFF")  # the tone backend never reads it
    primed = gated.engine.submit(replace(spec(), kind=JobKind.ENCODE, region=AudioInput(path=str(region)))).id
    gated.wait_done(primed)
    assert gated.engine.status(primed).results[0].kind == "codes"
    assert gated.engine._throughput.rate is None  # the ETA still waits for a sampling job


def test_queued_events_carry_position_and_eta(gated: Rig) -> None:
    assert gated.backend.gate is not None
    gated.backend.gate.set()
    first = gated.engine.submit(spec()).id  # measures throughput
    gated.wait_done(first)
    gated.backend.gate.clear()
    _hold_worker(gated)
    ids = [gated.engine.submit(spec()).id for _ in range(3)]
    gated.engine._hub.flush()
    queued = [[e.data for e in gated.of(i) if e.type is EventType.QUEUED][-1] for i in ids]
    assert [q["position"] for q in queued] == [1, 2, 3]
    etas = [q["eta_s"] for q in queued]
    assert all(e is not None for e in etas) and etas == sorted(etas)
    # cancelling the first moves the others up, and they are told
    gated.engine.cancel(ids[0])
    gated.engine._hub.flush()
    assert [e.data["position"] for e in gated.of(ids[2]) if e.type is EventType.QUEUED][-1] == 2
    gated.backend.gate.set()


def _cancel_latency(r: Rig, job_id: str) -> float:
    seen = threading.Event()

    def watch(event: JobEvent) -> None:
        if event.job_id == job_id and event.type is EventType.CANCELLED:
            seen.set()

    r.engine.subscribe(watch)
    start = time.monotonic()
    r.engine.cancel(job_id)
    assert seen.wait(2.0)
    return time.monotonic() - start


def test_cancel_is_fast_and_frees_the_worker(tmp_path: Path) -> None:
    r = Rig(tmp_path, ToneBackend(token_s=0.02, tokens=(200, 50), load_s=0.0))
    running = r.engine.submit(spec(tag="long")).id
    queued = r.engine.submit(spec(tag="queued")).id
    after = r.engine.submit(spec(tag="after")).id
    wait_until(lambda: r.engine.status(running).tokens_done > 2)
    queued_latency = _cancel_latency(r, queued)
    running_latency = _cancel_latency(r, running)
    print(f"cancel latency: queued {queued_latency * 1000:.1f} ms, running {running_latency * 1000:.1f} ms")
    assert queued_latency < 0.2 and running_latency < 0.2
    assert r.engine.status(queued).state is JobState.CANCELLED
    assert r.engine.status(running).state is JobState.CANCELLED
    wait_until(lambda: r.engine.status(after).state is JobState.RUNNING, timeout=0.2)  # worker is free
    assert [s.artist for s in r.backend.runs] == ["long", "after"]
    assert r.engine.cancel(running).state is JobState.CANCELLED  # idempotent
    r.engine.shutdown(2.0)


def test_many_clients_submitting_at_once_lose_nothing(tmp_path: Path) -> None:
    r = Rig(tmp_path, ToneBackend(token_s=0.0, tokens=(2, 1), load_s=0.0), EngineConfig(queue_limit=200))
    submitted: list[str] = []
    lock = threading.Lock()

    def client(name: str) -> None:
        for i in range(10):
            job = r.engine.submit(spec(client=name, tag=f"{name}{i}", seconds=0.05, sample_rate=8000)).id
            with lock:
                submitted.append(job)

    start = time.monotonic()
    threads = [threading.Thread(target=client, args=(f"c{n}",)) for n in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wait_until(lambda: all(r.engine.status(j).state is JobState.DONE for j in submitted), timeout=19)
    elapsed = time.monotonic() - start
    print(f"50 jobs from 5 threads done in {elapsed:.2f} s")
    assert len(set(submitted)) == 50 and elapsed < 20
    assert r.backend.threads == {"segue-worker"}  # no model code on the submitting threads
    done = {rec.id for rec in r.journal.jobs([JobState.DONE])}
    assert done == set(submitted)
    assert {s.job_id for s in r.store.list_results()} == set(submitted)
    r.engine._hub.flush()
    results = [e.job_id for e in r.events if e.type is EventType.RESULT_READY]
    assert sorted(results) == sorted(submitted)
    r.engine.shutdown(2.0)
