"""OSC transport of the client library: one UDP socket that sends requests and receives replies and
events (the daemon sends both to the ``reply_port`` this socket registers with ``hello``). The daemon
sends it the events of the jobs it submits, or of every job with ``all_jobs`` (``hello`` ``events all``);
OSC has no per-job subscription, so ``watch`` answers ``False`` and the client reads other jobs' events
with ``events_since``."""

from __future__ import annotations

import socket
import time
from collections import deque
from typing import Any

from bridge.protocol import osc_wire
from bridge.protocol.schema import ProtocolError
from plugin_host.zmq_client import RawReply


class OscTransport:
    def __init__(self, host: str, port: int, bind_host: str = "127.0.0.1", all_jobs: bool = False) -> None:
        self.daemon = (host, port)
        self.all_jobs = all_jobs
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((bind_host, 0))
        self.reply_port: int = self.sock.getsockname()[1]
        self._next_id = 0
        self._events: deque[dict[str, Any]] = deque()
        self._parts: dict[tuple[str, Any], dict[int, list[tuple[str, Any]]]] = {}
        self._replies: dict[Any, tuple[str, str, dict[str, Any]]] = {}

    def request(
        self, msg_type: str, content: dict[str, Any], buffers: tuple[bytes, ...] = (), control: bool = False,
        timeout: float = 5.0,
    ) -> RawReply:
        if buffers:
            raise ValueError("OSC carries no binary buffers: pass files by path")
        del control  # OSC has one socket; requests never wait behind a job
        if msg_type == "hello":
            content = {"reply_port": self.reply_port, **({"events": "all"} if self.all_jobs else {}), **content}
        self._next_id += 1
        req_id = f"r{self._next_id}"
        self.send_raw(osc_wire.request_datagram(msg_type, req_id, content))
        deadline = time.monotonic() + timeout
        while req_id not in self._replies:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no OSC reply to {msg_type} within {timeout:g} s")
            self._receive(left)
        _, status, body = self._replies.pop(req_id)
        return RawReply(status, body)

    def watch(self, job_id: str) -> bool:
        """OSC cannot subscribe to one job: ``True`` only when this client gets every job's events."""
        del job_id
        return self.all_jobs

    def unwatch(self, job_id: str) -> None:
        del job_id

    def send_raw(self, datagram: bytes) -> None:
        self.sock.sendto(datagram, self.daemon)

    def receive_reply(self, timeout: float = 5.0) -> tuple[Any, str, str, dict[str, Any]]:
        """The next complete reply, whatever its request id: (req_id, msg_type, status, content)."""
        deadline = time.monotonic() + timeout
        while not self._replies:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no OSC reply within {timeout:g} s")
            self._receive(left)
        req_id = next(iter(self._replies))
        msg_type, status, content = self._replies.pop(req_id)
        return req_id, msg_type, status, content

    def next_event(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        while not self._events:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._receive(left)
        return self._events.popleft()

    def _receive(self, timeout: float) -> None:
        self.sock.settimeout(max(0.001, timeout))
        try:
            data, _ = self.sock.recvfrom(65535)
        except TimeoutError:
            return
        try:
            messages = osc_wire.parse_packet(data)
        except ProtocolError:
            return
        for m in messages:
            args = list(m.params)
            if m.address == osc_wire.REPLY and len(args) >= 5:
                req_id, msg_type, status, part, parts = args[:5]
                pairs = self._assemble(("reply", req_id), part, parts, args[5:])
                if pairs is not None:
                    self._replies[req_id] = (msg_type, status, osc_wire.unflatten(pairs))
            elif m.address == osc_wire.EVENT and len(args) >= 5:
                seq, job_id, kind, part, parts = args[:5]
                pairs = self._assemble(("event", (seq, job_id, kind)), part, parts, args[5:])
                if pairs is not None:
                    body = osc_wire.unflatten(pairs)
                    when = body.pop("time", None)
                    self._events.append({"seq": seq, "job_id": job_id, "type": kind, "time": when, "data": body})

    def _assemble(self, key: tuple[str, Any], part: int, parts: int, args: list[Any]) -> list[tuple[str, Any]] | None:
        got = self._parts.setdefault(key, {})
        got[part] = list(zip(args[0::2], args[1::2]))
        if len(got) < parts:
            return None
        del self._parts[key]
        return [pair for i in sorted(got) for pair in got[i]]

    def close(self) -> None:
        self.sock.close()

