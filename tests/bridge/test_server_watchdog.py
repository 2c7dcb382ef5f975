"""A shutdown that hangs (a peer, a backend) still ends the process: ``Server.run``'s watchdog."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from bridge.server import Server
from tests.bridge.daemon_rig import rig_config


class _StuckEngine:
    """An engine whose shutdown never returns in time (the daemon once needed kill -9 after a flood)."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def subscribe(self, fn: object) -> object:
        return lambda: None

    def shutdown(self, timeout: float = 10.0) -> None:
        self.released.wait(30.0)


def test_run_exits_when_shutdown_hangs(tmp_path: Path) -> None:
    config = rig_config(tmp_path, enable_zmq=False, enable_osc=False, shutdown_timeout_s=0.5)
    engine = _StuckEngine()
    server = Server(config, engine)
    server.watchdog_grace_s = 0.3
    exits: list[int] = []

    def hard_exit(code: int) -> None:
        exits.append(code)
        engine.released.set()  # what os._exit would end; here the test's thread goes on

    server._hard_exit = hard_exit
    server.request_stop()
    t0 = time.monotonic()
    server.run()
    assert exits == [1] and time.monotonic() - t0 < 5.0


def test_a_clean_shutdown_cancels_the_watchdog(tmp_path: Path) -> None:
    config = rig_config(tmp_path, enable_zmq=False, enable_osc=False, shutdown_timeout_s=0.5)
    engine = _StuckEngine()
    engine.released.set()
    server = Server(config, engine)
    server.watchdog_grace_s = 0.1
    exits: list[int] = []
    server._hard_exit = exits.append
    server.request_stop()
    server.run()
    time.sleep(0.8)
    assert exits == []
