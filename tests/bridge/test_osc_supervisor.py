"""Issue 8: a front-end thread that dies anyway is restarted and logged. The OSC loop answers every
datagram inside it, so a death is a bug; one is injected here and the loop must come back."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bridge.server import Server
from plugin_host.osc_client import OscTransport
from tests.bridge.daemon_rig import rig_config, running_daemon
from tests.bridge.tone_backend import ToneBackend

pytestmark = [pytest.mark.timeout(60), pytest.mark.e2e]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Server]:
    with running_daemon(tmp_path / "state", rig_config(tmp_path), ToneBackend()) as server:
        yield server


def test_a_dead_osc_loop_is_restarted_and_logged(
    daemon: Server, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    front = daemon.osc
    assert front is not None and front.address is not None
    t = OscTransport("127.0.0.1", front.address[1])
    try:
        handle = front._handle

        def broken(data: bytes, source: tuple[str, int]) -> None:
            raise RuntimeError("injected bug in the OSC loop")

        monkeypatch.setattr(front, "_handle", broken)
        with caplog.at_level(logging.WARNING, logger="segue.bridge.osc"):
            t.send_raw(b"/segue/list_jobs\0\0\0\0,s\0\0r1\0\0")
            time.sleep(0.3)
            monkeypatch.setattr(front, "_handle", handle)
            t.send_raw(b"/segue/list_jobs\0\0\0\0,s\0\0r2\0\0")  # waits in the socket for the restart
            req_id, msg_type, status, _ = t.receive_reply(5.0)
            assert (req_id, msg_type, status) == ("r2", "list_jobs", "ok")
        messages = [r.getMessage() for r in caplog.records]
        assert any("front end osc died" in m for m in messages) and any(
            "osc restarted" in m for m in messages
        )
    finally:
        t.close()
