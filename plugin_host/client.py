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

Events. A client receives the events of the jobs it submits (or resubmits) and of the jobs it follows
(``follow``, which ``wait_for`` and ``job_events`` call for a job it did not submit): over ZeroMQ by
subscribing to its session's topic and to each followed job's topic, over OSC because the daemon sends
a job's events to the address of its submitter (``all_jobs=True`` asks for every job's events).
``wait_for`` and ``job_events`` take the events of one job and keep every other job's events in a
buffer, so a later ``wait_for``, ``job_events`` or ``next_event`` still sees them. The buffer holds
``max_buffered`` events (default 4096); past that the oldest is dropped and ``dropped_events`` counts
it (read it back with ``events_since``). An event is handed out once: duplicates (the same ``seq``
again, e.g. from a catch-up) are skipped. While a job it waits for is quiet for ``catch_up_s`` seconds
(default 2), the client asks ``events_since`` for what it may have missed (PUB/SUB and UDP both drop
under load; OSC cannot subscribe to another client's job).
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
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

    def watch(self, job_id: str) -> bool: ...

    def unwatch(self, job_id: str) -> None: ...

    def close(self) -> None: ...


TERMINAL_EVENTS = frozenset({"result_ready", "failed", "cancelled", "interrupted"})
"""The events after which a job sends nothing more (until it is resubmitted)."""

MAX_BUFFERED = 4096
CATCH_UP_S = 2.0
_REMEMBERED_JOBS = 4096  # jobs whose last seq (and followed state) a client remembers


class SegueClient:
    def __init__(self, transport: Transport, name: str = "", timeout: float = 5.0) -> None:
        self.transport = transport
        self.name = name
        self.timeout = timeout
        self.last_buffers: tuple[bytes, ...] = ()
        self.max_buffered = MAX_BUFFERED
        self.catch_up_s: float | None = CATCH_UP_S  # None: never ask events_since while waiting
        self.dropped_events = 0
        self._introduced = False  # the daemon knows ``name`` (hello answered ok)
        self._buffer: deque[dict[str, Any]] = deque()  # received, not yet handed out (oldest first)
        self._last_seq: OrderedDict[str, int] = OrderedDict()  # job id -> highest seq received
        self._followed: OrderedDict[str, None] = OrderedDict()  # jobs whose events reach this client

    @classmethod
    def over_zmq(
        cls, request: str, control: str, events: str | None = None, *, name: str = "", keys: ClientKeys | None = None,
        timeout: float = 5.0, wait_subscribed: bool = True, all_jobs: bool = False,
    ) -> SegueClient:
        transport = ZmqTransport(request, control, events, keys=keys, all_jobs=all_jobs)
        if events is not None and wait_subscribed:
            transport.wait_subscribed(timeout)
        return cls(transport, name, timeout)

    @classmethod
    def over_osc(cls, host: str, port: int, *, name: str = "", timeout: float = 5.0, all_jobs: bool = False) -> SegueClient:
        return cls(OscTransport(host, port, all_jobs=all_jobs), name, timeout)

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
        """Submit a job (fields as in docs/protocol.md); bytes for ``{"buffer": i}`` inputs go in ``buffers``.
        Conditions travel the same way: ``midi={"path": ...}`` or ``{"buffer": i}``, ``midi_start_s`` or
        ``midi_start_bar``/``midi_start_beat``, ``stems=[{"path": ..., "label": "drums", "start_s": 1.0}]``,
        ``guidance=[...]`` per level and ``condition_guidance=["midi=2", "drums@2=1.5"]``."""
        job = dict(self.call("submit", fields, buffers)["job"])
        self._remember(self._followed, job["id"], None)  # its events come on this client's own topic
        return job

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
        job = dict(self.call("resubmit", {"job_id": job_id})["job"])
        self._remember(self._followed, job_id, None)  # the daemon now sends its events to this client
        return job

    def events_since(self, job_id: str, after: int = 0, limit: int = 200) -> dict[str, Any]:
        """One page of the job's stored events with ``seq > after``: ``{job_id, events, next_after, more}``.
        Events come as from ``next_event`` (``data`` always present). Does not touch the event buffer."""
        content = self.call("events_since", {"job_id": job_id, "after": after, "limit": limit}, control=True)
        content["events"] = [_event(e) for e in content.get("events", [])]
        return content

    def shutdown(self) -> None:
        self.call("shutdown", control=True)

    # --- events -------------------------------------------------------------------------------------
    def next_event(self, timeout: float = 1.0) -> dict[str, Any] | None:
        """The oldest event not handed out yet, of any job this client receives; ``None`` after ``timeout``."""
        if self._buffer:
            return self._buffer.popleft()
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            event = self._receive(left)
            if event is not None:
                return event
        return None

    def wait_for(self, job_id: str, types: Iterable[str], timeout: float = 10.0) -> dict[str, Any]:
        """The next event of ``job_id`` whose type is in ``types`` (its events before it are used up, every
        other job's stay buffered); ``TimeoutError`` otherwise."""
        wanted = set(types)
        deadline = time.monotonic() + timeout
        while True:
            event = self._next_of(job_id, deadline)
            if event is None:
                raise TimeoutError(f"no {sorted(wanted)} event for job {job_id} within {timeout:g} s")
            if event["type"] in wanted:
                return event

    def job_events(self, job_id: str, timeout: float = 60.0) -> Iterator[dict[str, Any]]:
        """Every event of ``job_id`` not handed out yet, up to and including its end (``result_ready``,
        ``failed``, ``cancelled``, ``interrupted``); ``TimeoutError`` if none comes for ``timeout`` s."""
        while True:
            event = self._next_of(job_id, time.monotonic() + timeout)
            if event is None:
                raise TimeoutError(f"no event for job {job_id} within {timeout:g} s")
            yield event
            if event["type"] in TERMINAL_EVENTS:
                return

    def follow(self, job_id: str) -> None:
        """Receive the events of a job this client did not submit, from now on, and buffer the stored ones
        it has not seen (``events_since``). ``wait_for`` and ``job_events`` call it."""
        if job_id in self._followed:
            return
        self.transport.watch(job_id)  # subscribe first: what is stored after the catch-up comes live
        self._catch_up(job_id)
        self._remember(self._followed, job_id, None)

    def _next_of(self, job_id: str, deadline: float) -> dict[str, Any] | None:
        """The next event of ``job_id``, from the buffer or the transport; other jobs' events are buffered."""
        self.follow(job_id)
        quiet_since = time.monotonic()
        while True:
            for i, kept in enumerate(self._buffer):
                if kept["job_id"] == job_id:
                    del self._buffer[i]
                    return kept
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            step = left if self.catch_up_s is None else min(left, self.catch_up_s)
            event = self._receive(step)
            if event is None:
                if self.catch_up_s is not None and time.monotonic() - quiet_since >= self.catch_up_s:
                    self._catch_up(job_id)  # lost events of this job land in the buffer
                    quiet_since = time.monotonic()
            elif event["job_id"] == job_id:
                return event
            else:
                self._keep(event)

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        """The next event from the transport that this client has not seen (``None`` after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            raw = self.transport.next_event(max(0.0, deadline - time.monotonic()))
            if raw is None:
                return None
            event = _event(raw)
            if self._is_new(event):
                return event
            if time.monotonic() >= deadline:
                return None

    def _catch_up(self, job_id: str) -> None:
        """Buffer the stored events of ``job_id`` this client has not received (``events_since``)."""
        after = self._last_seq.get(job_id, 0)
        while True:
            page = self.events_since(job_id, after, 1000)
            for event in page["events"]:
                if self._is_new(event):
                    self._keep(event)
            if not page.get("more") or int(page["next_after"]) <= after:
                return
            after = int(page["next_after"])

    def _is_new(self, event: dict[str, Any]) -> bool:
        """Record ``event``'s seq; ``False`` if this client already received it (or a later one of its job)."""
        job_id, seq = event["job_id"], int(event["seq"])
        if seq <= self._last_seq.get(job_id, 0):
            return False
        self._remember(self._last_seq, job_id, seq)
        return True

    def _keep(self, event: dict[str, Any]) -> None:
        if len(self._buffer) >= self.max_buffered:
            self._buffer.popleft()
            self.dropped_events += 1
        self._buffer.append(event)

    @staticmethod
    def _remember(table: OrderedDict[str, Any], job_id: str, value: Any) -> None:
        table[job_id] = value
        table.move_to_end(job_id)
        while len(table) > _REMEMBERED_JOBS:
            table.popitem(last=False)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> SegueClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _event(raw: dict[str, Any]) -> dict[str, Any]:
    """An event in the one shape both transports hand out: ``{seq, job_id, type, data, time}``."""
    return {"seq": int(raw.get("seq", 0)), "job_id": str(raw.get("job_id", "")), "type": str(raw.get("type", "")),
            "data": dict(raw.get("data") or {}), "time": raw.get("time")}
