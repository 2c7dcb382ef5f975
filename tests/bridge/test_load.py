"""Several clients at once over both transports: every job accepted is finished, none is lost."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.bridge.daemon_rig import connect, rig_config, running_daemon
from tests.bridge.tone_backend import ToneBackend

pytestmark = [pytest.mark.timeout(60), pytest.mark.e2e]
CLIENTS, JOBS = 8, 5


def test_eight_clients_five_jobs_each_none_lost(tmp_path: Path) -> None:
    backend = ToneBackend(token_s=0.0005, tokens=(8, 4), load_s=0.01)
    with running_daemon(tmp_path / "state", rig_config(tmp_path), backend) as server:
        submitted: dict[str, list[str]] = {}
        finished: dict[str, dict[str, str]] = {}
        errors: list[BaseException] = []

        def client(i: int) -> None:
            name = f"client{i}"
            try:
                c = connect(server, "zmq" if i % 2 else "osc", name=name, timeout=10.0)
                c.hello()
                ids = [c.submit(kind="generate", model="tiny", length_s=0.25, seeds=[i * 10 + k])["id"]
                       for k in range(JOBS)]
                submitted[name] = ids
                deadline = time.monotonic() + 25
                states: dict[str, str] = {}
                while time.monotonic() < deadline:
                    states = {j: c.status(j)["state"] for j in ids}
                    if all(s in ("done", "failed", "cancelled") for s in states.values()):
                        break
                    c.next_event(0.1)
                finished[name] = states
                c.close()
            except BaseException as exc:  # surfaced below
                errors.append(exc)

        t0 = time.monotonic()
        threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        elapsed = time.monotonic() - t0
        assert not errors, errors
        assert sum(len(ids) for ids in submitted.values()) == CLIENTS * JOBS
        assert all(state == "done" for states in finished.values() for state in states.values()), finished
        c = connect(server, "zmq")
        jobs = c.list_jobs()
        assert len(jobs) == CLIENTS * JOBS
        assert all(Path(j["results"][0]["path"]).is_file() for j in jobs)
        assert {j["client"] for j in jobs} == {f"client{i}" for i in range(CLIENTS)}
        c.close()
        assert elapsed < 30
