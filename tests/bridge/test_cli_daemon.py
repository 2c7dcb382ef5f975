"""segue serve / status / jobs / cancel / keys against a real daemon process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from segue.cli import main
from tests.bridge.daemon_rig import connect, rig_config, running_daemon

pytestmark = pytest.mark.timeout(60)
REPO = Path(__file__).resolve().parents[2]


@pytest.mark.e2e
def test_status_jobs_cancel_talk_to_a_daemon(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_daemon(tmp_path / "s", rig_config(tmp_path)) as server:
        request = server.addresses["zmq_request"].rsplit(":", 1)[1]
        control = server.addresses["zmq_control"].rsplit(":", 1)[1]
        flags = ["--request-port", request, "--control-port", control]
        c = connect(server, "zmq", name="tester")
        job = c.submit(kind="generate", model="tiny", length_s=0.5)
        c.wait_for(job["id"], {"result_ready"})
        assert main(["status", *flags]) == 0
        assert "model tiny" in capsys.readouterr().out
        assert main(["jobs", *flags]) == 0
        assert job["id"] in capsys.readouterr().out
        assert main(["status", job["id"], *flags]) == 0
        assert "candidate 0:" in capsys.readouterr().out
        assert main(["cancel", job["id"], *flags]) == 0  # a finished job stays done
        assert "done" in capsys.readouterr().out
        assert main(["cancel", "nope", *flags]) == 2
        assert "not_found" in capsys.readouterr().err
        c.close()


def test_client_commands_say_when_no_daemon_answers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs", "--control-port", "1", "--request-port", "2", "--timeout", "0.2"]) == 2
    err = capsys.readouterr().err  # names where it looked, not a class name
    assert "no segue daemon answered at tcp://127.0.0.1:2 / tcp://127.0.0.1:1 within 0.2 s" in err


def test_keys_issue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "issue", "bob", "--keys-dir", str(tmp_path)]) == 0
    assert (tmp_path / "clients" / "bob.key").is_file() and "server.key" in capsys.readouterr().out


@pytest.mark.e2e
def test_serve_prints_addresses_and_stops_on_sigterm(tmp_path: Path) -> None:
    backend = tmp_path / "toy_backend.py"
    backend.write_text("from tests.bridge.tone_backend import ToneBackend\n\ndef make(tables):\n    return ToneBackend()\n")
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "segue", "serve", "--backend", "toy_backend:make", "--state-dir",
           str(tmp_path / "state"), "--root", str(tmp_path), "--request-port", "0", "--control-port", "0",
           "--events-port", "0", "--osc-port", "0"]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        assert proc.stdout is not None
        while not any("Ctrl-C" in line for line in lines):
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            lines.append(line)
        text = "".join(lines)
        assert "zmq_request" in text and "udp://127.0.0.1:" in text and str(tmp_path) in text
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
        assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
