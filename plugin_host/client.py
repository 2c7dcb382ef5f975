"""The client library a DAW integration uses: one API over ZeroMQ or OSC.

    client = SegueClient.over_zmq("tcp://127.0.0.1:5570", "tcp://127.0.0.1:5571", "tcp://127.0.0.1:5572")
    client.hello()
    job = client.submit(kind="continue", model="tiny", length_bars=4, region={"path": "/music/take.wav"})
    event = client.wait_for(job["id"], {"result_ready", "failed", "cancelled"})

Every method returns the reply content (dicts as in docs/protocol.md) or raises ``RemoteError`` with
the daemon's error ``code``; a request that cannot be sent at all (a NaN or infinite number, which
JSON cannot carry) raises ``InvalidRequest`` before anything is sent. A client given a ``name`` says
``hello`` with it before its first other request, so its jobs carry that name from the start. Events
are dicts ``{seq, job_id, type, data, time}``. A client object belongs to one thread.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any, Protocol

from bridge.protocol.schema import PROTOCOL_VERSION
from plugin_host.osc_client import OscTransport
from plugin_host.zmq_client import ClientKeys, RawReply, ZmqTransport


class RemoteError(Exception):
    """The daemon answered with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class InvalidRequest(ValueError):
    """A request the client refuses to send; ``code`` is what the daemon would answer (``bad_request``)."""

    code = "bad_request"

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.code}: {message}")
        self.message = message


def _check_finite(value: Any, where: str) -> None:
    """Refuse NaN and infinities anywhere in ``value`` (JSON has no way to write them)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidRequest(f"{where} must be finite (got {value})")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_finite(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_finite(item, f"{where}[{i}]")


class Transport(Protocol):
    def request(
        self, msg_type: str, content: dict[str, Any], buffers: tuple[bytes, ...] = (), control: bool = False,
        timeout: float = 5.0,
    ) -> RawReply: ...

    def next_event(self, timeout: float) -> dict[str, Any] | None: ...

    def close(self) -> None: ...


class SegueClient:
    def __init__(self, transport: Transport, name: str = "", timeout: float = 5.0) -> None:
        self.transport = transport
        self.name = name
        self.timeout = timeout
        self.last_buffers: tuple[bytes, ...] = ()
        self._introduced = False  # the daemon knows ``name`` (hello answered ok)

    @classmethod
    def over_zmq(
        cls, request: str, control: str, events: str | None = None, *, name: str = "", keys: ClientKeys | None = None,
        timeout: float = 5.0, wait_subscribed: bool = True,
    ) -> SegueClient:
        transport = ZmqTransport(request, control, events, keys=keys)
        if events is not None and wait_subscribed:
            transport.wait_subscribed(timeout)
        return cls(transport, name, timeout)

    @classmethod
    def over_osc(cls, host: str, port: int, *, name: str = "", timeout: float = 5.0) -> SegueClient:
        return cls(OscTransport(host, port), name, timeout)

    def call(self, msg_type: str, content: dict[str, Any] | None = None, buffers: tuple[bytes, ...] = (),
             control: bool = False) -> dict[str, Any]:
        content = content or {}
        _check_finite(content, "")
        if self.name and not self._introduced and msg_type != "hello":
            self.hello()  # the daemon names jobs after the hello of their connection, else its session id
        reply = self.transport.request(msg_type, content, buffers, control, self.timeout)
        if reply.status != "ok":
            raise RemoteError(str(reply.content.get("code", "internal")), str(reply.content.get("message", "")))
        self.last_buffers = reply.buffers
        return reply.content

    # --- requests -----------------------------------------------------------------------------------
    def hello(self, protocol_version: str = PROTOCOL_VERSION) -> dict[str, Any]:
        reply = self.call("hello", {"protocol_version": protocol_version, "client": self.name}, control=True)
        self._introduced = True
        return reply

    def list_models(self) -> list[dict[str, Any]]:
        return list(self.call("list_models").get("models", []))

    def load_model(self, model: str) -> dict[str, Any]:
        return dict(self.call("load_model", {"model": model})["model"])

    def unload_model(self, model: str) -> dict[str, Any]:
        return dict(self.call("unload_model", {"model": model})["model"])

    def submit(self, buffers: tuple[bytes, ...] = (), **fields: Any) -> dict[str, Any]:
        """Submit a job (fields as in docs/protocol.md); bytes for ``{"buffer": i}`` inputs go in ``buffers``."""
        return dict(self.call("submit", fields, buffers)["job"])

    def status(self, job_id: str) -> dict[str, Any]:
        return dict(self.call("status", {"job_id": job_id}, control=True)["job"])

    def cancel(self, job_id: str) -> dict[str, Any]:
        return dict(self.call("cancel", {"job_id": job_id}, control=True)["job"])

    def list_jobs(self, client: str | None = None) -> list[dict[str, Any]]:
        content = {} if client is None else {"client": client}
        return list(self.call("list_jobs", content, control=True).get("jobs", []))

    def fetch_result(self, job_id: str, inline: bool = False) -> tuple[dict[str, Any], tuple[bytes, ...]]:
        """(reply content with ``job`` and ``results``, file bytes per result if ``inline``)."""
        content = self.call("fetch_result", {"job_id": job_id, "inline": inline})
        return content, self.last_buffers

    def resubmit(self, job_id: str) -> dict[str, Any]:
        return dict(self.call("resubmit", {"job_id": job_id})["job"])

    def shutdown(self) -> None:
        self.call("shutdown", control=True)

    # --- events -------------------------------------------------------------------------------------
    def next_event(self, timeout: float = 1.0) -> dict[str, Any] | None:
        return self.transport.next_event(timeout)

    def wait_for(self, job_id: str, types: Iterable[str], timeout: float = 10.0) -> dict[str, Any]:
        """The next event of ``job_id`` whose type is in ``types``; ``TimeoutError`` otherwise."""
        wanted = set(types)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            event = self.next_event(max(0.0, left)) if left > 0 else None
            if event is None:
                raise TimeoutError(f"no {sorted(wanted)} event for job {job_id} within {timeout:g} s")
            if event.get("job_id") == job_id and event.get("type") in wanted:
                return event

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> SegueClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
