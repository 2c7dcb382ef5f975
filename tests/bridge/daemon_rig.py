"""A real daemon on loopback for the bridge tests: tone backend, real engine/journal/store, ephemeral ports."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from bridge.config import BridgeConfig
from bridge.engine.engine import EngineConfig, JobEngine
from bridge.server import Server
from bridge.state.journal import Journal
from bridge.state.store import RenderStore
from plugin_host.client import SegueClient
from tests.bridge.tone_backend import ToneBackend

TRANSPORTS = ("zmq", "osc")


def rig_config(root: Path, **overrides: object) -> BridgeConfig:
    base = BridgeConfig(
        request_port=0, control_port=0, events_port=0, osc_port=0, roots=(str(root),),
        heartbeat_ivl_ms=100, heartbeat_timeout_ms=1000, shutdown_timeout_s=3.0,
        max_message_bytes=4 << 20, max_input_bytes=2 << 20, max_seconds=30.0, max_candidates=4,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


@contextmanager
def running_daemon(state: Path, config: BridgeConfig, backend: ToneBackend | None = None,
                   engine_config: EngineConfig | None = None) -> Iterator[Server]:
    engine = JobEngine(backend or ToneBackend(), Journal(state / "journal.sqlite3"), RenderStore(state / "store"),
                       engine_config or EngineConfig(queue_limit=64))
    server = Server(config, engine)
    server.startup()
    try:
        yield server
    finally:
        server.shutdown(3.0)


def connect(server: Server, transport: str, name: str = "test", timeout: float = 5.0) -> SegueClient:
    a = server.addresses
    if transport == "zmq":
        return SegueClient.over_zmq(a["zmq_request"], a["zmq_control"], a["zmq_events"], name=name, timeout=timeout)
    host, port = a["osc"].removeprefix("udp://").rsplit(":", 1)
    return SegueClient.over_osc(host, int(port), name=name, timeout=timeout)
