"""ZeroMQ transport of the client library: DEALER sockets for requests and control, a SUB for events.

Used from one thread at a time (a ZeroMQ socket belongs to one thread). Replies are matched to their
request by ``parent_header.msg_id``; stale replies (from a request that timed out) are skipped.
The SUB socket subscribes to this session's own jobs (``zmq_wire.session_topic``, set before the first
request, so no event of a job it submits is missed) and to heartbeats; ``watch`` adds another job's
topic; ``all_jobs`` subscribes to every job instead.
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zmq
import zmq.auth

from bridge.protocol.schema import ProtocolError
from bridge.protocol.zmq_wire import (
    DAEMON_TOPIC,
    WireMessage,
    job_topic,
    new_header,
    pack,
    session_topic,
    split_routing,
    unpack,
)


@dataclass(frozen=True)
class ClientKeys:
    """CURVE keys a daemon owner issued (``segue keys issue NAME``): the client's own pair and the
    daemon's public key."""

    public: bytes
    secret: bytes
    server_public: bytes

    @classmethod
    def load(cls, client_secret_file: str | Path, server_public_file: str | Path) -> ClientKeys:
        public, secret = zmq.auth.load_certificate(str(client_secret_file))
        server_public, _ = zmq.auth.load_certificate(str(server_public_file))
        if secret is None:
            raise ValueError(f"{client_secret_file} holds no secret key")
        return cls(public, secret, server_public)


@dataclass(frozen=True)
class RawReply:
    status: str
    content: dict[str, Any]
    buffers: tuple[bytes, ...] = ()


class ZmqTransport:
    def __init__(
        self,
        request: str,
        control: str,
        events: str | None = None,
        keys: ClientKeys | None = None,
        context: zmq.Context | None = None,
        heartbeat_ms: int = 1000,
        all_jobs: bool = False,
    ) -> None:
        self.context = context or zmq.Context.instance()
        self.session = uuid.uuid4().hex
        self._events: deque[dict[str, Any]] = deque()
        self.request_socket = self._socket(zmq.DEALER, request, keys, heartbeat_ms)
        self.control_socket = self._socket(zmq.DEALER, control, keys, heartbeat_ms)
        self.sub: zmq.Socket | None = None
        self._watched: set[str] = set()
        if events is not None:
            self.sub = self._socket(zmq.SUB, events, keys, heartbeat_ms)
            # own jobs first: the heartbeat that ``wait_subscribed`` waits for then proves both are in place
            self.sub.setsockopt(zmq.SUBSCRIBE, b"job." if all_jobs else session_topic(self.session))
            self.sub.setsockopt(zmq.SUBSCRIBE, DAEMON_TOPIC)

    def watch(self, job_id: str) -> bool:
        """Also receive the events of ``job_id`` (a job another client submitted); ``False`` without an
        events socket. Events published before the daemon sees the subscription are not received:
        read them with ``events_since``."""
        if self.sub is None:
            return False
        if job_id not in self._watched:
            self._watched.add(job_id)
            self.sub.setsockopt(zmq.SUBSCRIBE, job_topic(job_id))
        return True

    def unwatch(self, job_id: str) -> None:
        if self.sub is not None and job_id in self._watched:
            self._watched.discard(job_id)
            self.sub.setsockopt(zmq.UNSUBSCRIBE, job_topic(job_id))

    def _socket(self, kind: int, address: str, keys: ClientKeys | None, heartbeat_ms: int) -> zmq.Socket:
        sock = self.context.socket(kind)
        sock.linger = 0
        sock.setsockopt(zmq.HEARTBEAT_IVL, heartbeat_ms)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, heartbeat_ms * 3)
        if keys is not None:
            sock.curve_publickey = keys.public
            sock.curve_secretkey = keys.secret
            sock.curve_serverkey = keys.server_public
        sock.connect(address)
        return sock

    def wait_subscribed(self, timeout: float) -> bool:
        """Block until the first event (the daemon's heartbeat) arrives, so no later event is missed."""
        if self.sub is None:
            return False
        if self.sub.poll(int(timeout * 1000)):
            self._read_events()
            return True
        return False

    def request(
        self, msg_type: str, content: dict[str, Any], buffers: tuple[bytes, ...] = (), control: bool = False,
        timeout: float = 5.0,
    ) -> RawReply:
        sock = self.control_socket if control else self.request_socket
        header = new_header(msg_type, self.session)
        sock.send_multipart(pack(WireMessage(header, {}, content, buffers=buffers)))
        return self._reply_to(sock, header["msg_id"], timeout)

    def send_frames(self, frames: list[bytes], control: bool = False) -> None:
        """Send raw frames (tests of malformed input)."""
        (self.control_socket if control else self.request_socket).send_multipart(frames)

    def receive_reply(self, timeout: float = 5.0, control: bool = False) -> WireMessage:
        sock = self.control_socket if control else self.request_socket
        if not sock.poll(int(timeout * 1000)):
            raise TimeoutError(f"no reply from the daemon within {timeout:g} s")
        return unpack(split_routing(sock.recv_multipart())[1])

    def _reply_to(self, sock: zmq.Socket, msg_id: str, timeout: float) -> RawReply:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sock.poll(int(left * 1000)):
                raise TimeoutError(f"no reply from the daemon within {timeout:g} s")
            try:
                msg = unpack(split_routing(sock.recv_multipart())[1])
            except ProtocolError:
                continue
            if msg.parent_header.get("msg_id") != msg_id:
                continue  # a late reply to an earlier request
            content = dict(msg.content)
            status = str(content.pop("status", "error"))
            return RawReply(status, content, msg.buffers)

    def _read_events(self) -> None:
        assert self.sub is not None
        while self.sub.poll(0):
            frames = self.sub.recv_multipart()
            try:
                msg = unpack(split_routing(frames[1:])[1])
            except ProtocolError:
                continue
            if msg.content.get("type") != "heartbeat":
                self._events.append(msg.content)

    def next_event(self, timeout: float) -> dict[str, Any] | None:
        if self.sub is None:
            raise RuntimeError("this client was connected without an events address")
        deadline = time.monotonic() + timeout
        self._read_events()
        while not self._events:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sub.poll(max(1, int(left * 1000))):
                return None
            self._read_events()
        return self._events.popleft()

    def close(self) -> None:
        for sock in (self.request_socket, self.control_socket, self.sub):
            if sock is not None:
                sock.close(0)
