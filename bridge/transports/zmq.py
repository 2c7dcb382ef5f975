"""ZeroMQ front end: a request ROUTER, a control ROUTER, an event PUB, libzmq heartbeats, optional CURVE.

Two threads, each with its own ``zmq.Poller`` loop and its own sockets (ZeroMQ sockets are not shared
between threads):

- ``zmq-requests`` serves the request ROUTER (every request type);
- ``zmq-control`` serves the control ROUTER (hello, status, cancel, list_jobs, events_since, shutdown),
  forwards engine events from an inproc PULL to the PUB and publishes a ``heartbeat`` event every
  ``heartbeat_ivl_ms``. A slow request (an inline fetch_result reading files) never delays a cancel.

Every message is answered, malformed ones with ``bad_request`` (``zmq_wire`` parses strictly); a loop
that raises anyway is restarted by its ``Supervisor``, and no heartbeat goes out while one is down.

Engine events arrive on the engine's thread through ``publish``, which pushes them onto the inproc
PUSH under a lock. Each job event is published on its job's topic and, when the job's owner is a
ZeroMQ session, once more on that session's topic (``zmq_wire.job_topic``, ``session_topic``), so a
client subscribes to its own jobs before it submits them and misses none of their events. Every frame and the whole message are size-checked (``zmq.MAXMSGSIZE`` drops
oversize frames inside libzmq; the loop answers ``too_large`` for oversize messages it sees).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from typing import Any

import zmq
from zmq.utils.monitor import recv_monitor_message

from bridge import roles
from bridge.config import BridgeConfig, is_loopback
from bridge.dispatcher import Dispatcher, Reply, Request
from bridge.jobs import JobEvent, JobNotFound
from bridge.keyring import KeyRing, start_authenticator
from bridge.protocol.schema import PROTOCOL_VERSION, ProtocolError
from bridge.protocol.zmq_wire import (
    DAEMON_TOPIC,
    WireMessage,
    job_topic,
    new_header,
    pack,
    partial_header,
    session_topic,
    split_routing,
    unpack,
)
from bridge.security import make_curve_server
from bridge.transports.supervise import Supervisor
from bridge.transports.zmq_subscriptions import SessionBook, SubscriptionGate

log = logging.getLogger("segue.bridge.zmq")

EVENTS_HWM = 1_000  # events queued per subscriber that does not read; more are dropped (the journal keeps them)
EVENTS_MAX_MESSAGE = 1024  # the longest message a peer may send the events socket (subscriptions are < 100 B)
# libzmq's manual XPUB files every subscription a peer sends in a byte trie (about 50 bytes a byte of topic)
# until that peer's connection ends, applied or not; these bound what one connection can make it hold
PEER_REFUSALS = 16  # refused subscriptions one connection may send before it is disconnected
PEER_SUBSCRIPTIONS = 256  # subscriptions one connection may hold
SUBSCRIPTIONS_PER_TURN = 256  # subscriptions taken per turn of the control loop, so requests are not starved


def _source_fd(frame: zmq.Frame) -> int:
    """The descriptor of the connection a message came in on (libzmq's SRCFD), -1 if unknown."""
    try:
        return int(frame.get(zmq.SRCFD))
    except (zmq.ZMQError, AttributeError, ValueError):
        return -1


class ZmqFrontEnd:
    def __init__(self, config: BridgeConfig, dispatcher: Dispatcher, context: zmq.Context | None = None) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self._own_context = context is None  # its own context, so each daemon has its own ZAP handler
        self.context = context or zmq.Context()
        self.session = uuid.uuid4().hex
        self.addresses: dict[str, str] = {}
        self._stop = threading.Event()
        self._push_lock = threading.Lock()
        self._inproc = f"inproc://segue-events-{self.session}"
        self._threads: list[threading.Thread] = []
        self._auth: Any = None
        self._keys: KeyRing | None = None  # the authorised CURVE keys, read live (None: no CURVE)
        self._sockets: dict[str, zmq.Socket] = {}
        self._push: zmq.Socket | None = None
        self._supervisor = Supervisor(self._stop, log)  # restarts a loop that dies; no heartbeats meanwhile
        self._sessions = SessionBook()  # which principal each ZeroMQ session belongs to
        self._gate = SubscriptionGate(self._sessions, self._job_client, config.share_jobs)
        self._peer_counts: dict[int, list[int]] = {}  # events connection (fd) -> [subscriptions, refused]
        self._cut: set[int] = set()  # connections shut down whose end libzmq has not reported yet
        self.disconnected = 0
        self._cut_logged = -1e9  # events connections cut for sending too many (bad) subscriptions
        self._refusals = 0  # subscriptions refused since the last log line
        self._refusal_logged = 0.0

    # --- life cycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        cfg = self.config
        if cfg.keys_dir:
            self._keys = KeyRing(cfg.keys_dir)
            self._auth = start_authenticator(self.context, self._keys)
        for name, kind, port in (
            ("request", zmq.ROUTER, cfg.request_port),
            ("control", zmq.ROUTER, cfg.control_port),
            ("events", zmq.XPUB, cfg.events_port),
        ):
            sock = self.context.socket(kind)
            sock.linger = 0
            sock.maxmsgsize = cfg.max_message_bytes
            sock.setsockopt(zmq.HEARTBEAT_IVL, cfg.heartbeat_ivl_ms)
            sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, cfg.heartbeat_timeout_ms)
            sock.setsockopt(zmq.HEARTBEAT_TTL, cfg.heartbeat_timeout_ms)
            if kind == zmq.XPUB:
                # subscriptions come to the control loop, which applies only those SubscriptionGate allows;
                # a peer that sends a message much longer than a subscription is disconnected by libzmq
                # (not shorter: the limit also applies to CURVE's handshake commands, a few hundred bytes)
                sock.setsockopt(zmq.XPUB_MANUAL, 1)
                sock.setsockopt(zmq.XPUB_VERBOSER, 1)
                sock.maxmsgsize = EVENTS_MAX_MESSAGE
                sock.sndhwm = EVENTS_HWM
            if cfg.keys_dir:
                make_curve_server(sock, cfg.keys_dir)
            try:
                if port == 0:
                    bound = sock.bind_to_random_port(f"tcp://{cfg.host}")
                else:
                    sock.bind(f"tcp://{cfg.host}:{port}")
                    bound = port
            except zmq.ZMQError:
                sock.close(0)  # left open, it made stop()'s context.term() wait forever (port in use: a hang)
                raise
            self.addresses[name] = f"tcp://{cfg.host}:{bound}"
            self._sockets[name] = sock
            if kind == zmq.XPUB:  # connections come and go under the same descriptor numbers: the monitor
                # says when, so one connection's counts never pass to the next
                self._sockets["events-monitor"] = sock.get_monitor_socket(
                    zmq.EVENT_ACCEPTED | zmq.EVENT_DISCONNECTED)
        pull = self.context.socket(zmq.PULL)
        pull.bind(self._inproc)
        self._sockets["pull"] = pull
        self._push = self.context.socket(zmq.PUSH)
        self._push.linger = 0
        self._push.sndhwm = 100_000
        self._push.connect(self._inproc)
        self._threads = [
            threading.Thread(target=self._supervisor.run, args=("zmq-requests", self._serve_requests),
                             name="zmq-requests", daemon=True),
            threading.Thread(target=self._supervisor.run, args=("zmq-control", self._serve_control),
                             name="zmq-control", daemon=True),
        ]
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
        with self._push_lock:
            if self._push is not None:
                self._push.close(0)
                self._push = None
        if "events-monitor" in self._sockets:
            self._sockets["events"].disable_monitor()
        for sock in self._sockets.values():
            sock.close(0)
        self._sockets.clear()
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._own_context:
            self.context.term()

    @property
    def restarts(self) -> dict[str, int]:
        """Loop name -> how often its supervisor restarted it."""
        return dict(self._supervisor.restarts)

    def publish(self, event: JobEvent, owner: str | None = None) -> None:
        """Queue ``event`` for the PUB socket; safe from any thread. ``owner`` (``zmq:<session>``): the
        session that also gets it on its own topic."""
        if not event.job_id:
            self._publish_raw([DAEMON_TOPIC], event.to_dict())
            return
        topics = [job_topic(event.job_id)]
        if owner is not None and owner.startswith("zmq:"):
            topics.append(session_topic(owner[len("zmq:"):]) + topics[0])
        self._publish_raw(topics, event.to_dict())

    def _publish_raw(self, topics: list[bytes], content: dict[str, Any]) -> None:
        frames = [json.dumps(content, allow_nan=False).encode("utf-8"), *topics]
        with self._push_lock:
            if self._push is None:
                return
            try:  # never block the engine's event thread: a dropped event is still in the journal
                self._push.send_multipart(frames, zmq.NOBLOCK)
            except zmq.Again:
                log.warning("event queue to the PUB socket is full; event %s dropped", content.get("seq"))

    # --- loops --------------------------------------------------------------------------------------
    def _serve_requests(self) -> None:
        sock = self._sockets["request"]
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        while not self._stop.is_set():
            if poller.poll(100):
                self._answer(sock, control=False)

    def _serve_control(self) -> None:
        control, pull, pub = self._sockets["control"], self._sockets["pull"], self._sockets["events"]
        poller = zmq.Poller()
        poller.register(control, zmq.POLLIN)
        poller.register(pull, zmq.POLLIN)
        poller.register(pub, zmq.POLLIN)
        monitor = self._sockets["events-monitor"]
        poller.register(monitor, zmq.POLLIN)
        next_beat = time.monotonic()
        while not self._stop.is_set():
            ready = dict(poller.poll(50))
            if control in ready:
                self._answer(control, control=True)
            if monitor in ready:
                self._connections(monitor)
            if pub in ready:
                self._take_subscriptions(pub)
            while pull in ready and pull.poll(0):
                self._forward(pull.recv_multipart(), pub)
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + self.config.heartbeat_ivl_ms / 1000
                if not self._supervisor.down:  # a loop is gone: say nothing rather than claim all is well
                    pub.send_multipart(pack(self._event_message(self._heartbeat()), [DAEMON_TOPIC]))

    def _forward(self, frames: list[bytes], pub: zmq.Socket) -> None:
        """Publish one queued engine event on its topics; one that cannot be read is logged and dropped
        (it is still in the journal), never fatal to the control loop."""
        content, *topics = frames
        try:
            message = self._event_message(json.loads(content))
            packed = [pack(message, [topic]) for topic in topics]
        except (ValueError, TypeError, RecursionError) as exc:
            log.error("engine event dropped: it cannot be published (%s): %.200r", exc, content)
            return
        for frames_out in packed:
            pub.send_multipart(frames_out)

    def _take_subscriptions(self, pub: zmq.Socket) -> None:
        """Apply the (un)subscriptions that peers sent the events socket and ``SubscriptionGate`` allows.
        Each ``setsockopt`` applies to the peer whose message was received last (libzmq's manual mode)."""
        for _ in range(SUBSCRIPTIONS_PER_TURN):
            try:
                frame = pub.recv(zmq.NOBLOCK, copy=False)
            except zmq.Again:
                return
            data = frame.bytes
            if pub.rcvmore:  # not a subscription: a peer sent a message of several frames; drop all of it
                while pub.rcvmore:
                    pub.recv(copy=False)
                continue
            if not data or data[0] not in (0, 1):
                continue  # not a subscription either
            topic, fd = data[1:], _source_fd(frame)
            if fd in self._cut:
                continue  # what a connection we cut had already sent: libzmq is closing it
            counts = self._peer_counts.setdefault(fd, [0, 0])
            if data[0] == 0:
                pub.setsockopt(zmq.UNSUBSCRIBE, topic)
                counts[0] = max(0, counts[0] - 1)
                continue
            who = self._identity(frame)
            reason = "its CURVE key is no longer authorised" if who is None else self._gate.check(topic, *who)
            if reason is None and counts[0] >= PEER_SUBSCRIPTIONS:
                reason = f"the connection holds {PEER_SUBSCRIPTIONS} subscriptions already"
            if reason is None:
                pub.setsockopt(zmq.SUBSCRIBE, topic)
                counts[0] += 1
                continue
            counts[1] += 1
            self._refused(topic, reason, who)
            if counts[1] > PEER_REFUSALS and fd >= 0:
                self._disconnect(fd, who)

    def _connections(self, monitor: zmq.Socket) -> None:
        """Start and end the per-connection counts as the events socket accepts and loses connections."""
        while monitor.poll(0):
            event = recv_monitor_message(monitor)
            if event["event"] == zmq.EVENT_ACCEPTED:
                self._peer_counts[int(event["value"])] = [0, 0]
            else:
                self._peer_counts.pop(int(event["value"]), None)
            self._cut.discard(int(event["value"]))

    def _disconnect(self, fd: int, who: tuple[str, str] | None) -> None:
        """Cut one events connection: libzmq keeps every subscription a peer sends (even those never applied)
        until its connection ends, so a peer that keeps sending bad ones is disconnected; its memory is freed."""
        self._peer_counts.pop(fd, None)
        self._cut.add(fd)
        try:
            with socket.socket(fileno=os.dup(fd)) as conn:
                conn.shutdown(socket.SHUT_RDWR)
        except OSError as exc:
            log.warning("events connection (fd %d) could not be cut: %s", fd, exc)
            return
        self.disconnected += 1
        now = time.monotonic()
        if now - self._cut_logged >= 10.0:  # a peer that reconnects and floods again is one line per 10 s
            log.warning("events connection of %s cut: more than %d refused subscriptions (%d cut in all)",
                        who[1] if who and who[1] else "a local peer", PEER_REFUSALS, self.disconnected)
            self._cut_logged = now

    def _refused(self, topic: bytes, reason: str, who: tuple[str, str] | None) -> None:
        self._refusals += 1
        now = time.monotonic()
        if now - self._refusal_logged >= 10.0:  # a flood of bad subscriptions is one line per 10 s
            log.warning("events subscription %.60r refused (%s) for %s; %d refused since the last report",
                        topic, reason, who[1] if who and who[1] else "a local peer", self._refusals)
            self._refusals, self._refusal_logged = 0, now

    def _job_client(self, job_id: str) -> str | None:
        try:
            return str(self.dispatcher.engine.status(job_id).client)
        except JobNotFound:
            return None

    def _heartbeat(self) -> dict[str, Any]:
        return {"seq": 0, "job_id": "", "type": "heartbeat", "time": time.time(), "data": {}}

    def _event_message(self, content: dict[str, Any]) -> WireMessage:
        return WireMessage(new_header("event", self.session), {}, content)

    def _answer(self, sock: zmq.Socket, control: bool) -> None:
        try:
            parts = sock.recv_multipart(copy=False)
        except zmq.ZMQError as exc:  # e.g. a peer vanished mid-message
            log.warning("zmq receive failed: %s", exc)
            return
        ids, body = split_routing([p.bytes for p in parts])
        try:
            who = self._identity(parts[-1])
            reply = self._reply_for(body, control, *who) if who else Reply.error(
                "unknown", "not_allowed",
                "this client's CURVE key is no longer authorised on this daemon (revoked); ask the owner for a new one")
        except Exception as exc:  # a bug below the dispatcher: still answer, log, keep serving
            log.exception("zmq request failed")
            reply = Reply.error("unknown", "internal", f"internal error: {type(exc).__name__}: {exc}")
        parent = partial_header(body)
        try:
            frames_out = pack(WireMessage(new_header(reply.msg_type, self.session), parent,
                                          {"status": reply.status, **reply.content}, buffers=reply.buffers), ids)
        except (ValueError, TypeError, RecursionError) as exc:  # e.g. a NaN in a reply: answer that much
            log.exception("zmq reply to %s cannot be encoded", reply.msg_type)
            error = Reply.error(reply.msg_type.removesuffix("_reply"), "internal",
                                f"the reply cannot be encoded as JSON: {exc}")
            frames_out = pack(WireMessage(new_header(error.msg_type, self.session), {},
                                          {"status": error.status, **error.content}), ids)
        try:
            sock.send_multipart(frames_out)
        except zmq.ZMQError as exc:
            log.warning("zmq reply to a vanished peer dropped: %s", exc)

    def _identity(self, last: zmq.Frame) -> tuple[str, str] | None:
        """(role, principal) of a request's sender; None when its CURVE key is no longer authorised. With CURVE,
        every request is checked against the live key ring, so a peer whose key was revoked after it connected
        is refused from its next request on. Roles: bridge/roles.py."""
        if self._keys is None:
            return roles.OWNER, ""  # no CURVE: loopback only (BridgeConfig refuses anything else)
        try:
            key, address = str(last.get("User-Id")), str(last.get("Peer-Address"))
        except zmq.ZMQError:
            return None
        name = self._keys.name_of(key)
        if name is None:
            return None
        owner = self._keys.is_owner(name) or (self.config.local_owner and is_loopback(address))
        return (roles.OWNER if owner else roles.COLLABORATOR), name

    def _reply_for(self, body: list[bytes], control: bool, role: str = roles.OWNER, principal: str = "") -> Reply:
        total = sum(len(f) for f in body)
        if total > self.config.max_message_bytes:
            return Reply.error("unknown", "too_large",
                               f"message has {total} bytes; the limit is {self.config.max_message_bytes}")
        try:
            msg = unpack(body)
        except ProtocolError as exc:
            name = partial_header(body).get("msg_type")
            return Reply.error(name if isinstance(name, str) and len(name) < 64 else "unknown", exc.code, exc.message)
        version = msg.header.get("version", PROTOCOL_VERSION)
        if msg.msg_type != "hello" and isinstance(version, str) and version.split(".")[0] != PROTOCOL_VERSION.split(".")[0]:
            return Reply.error(msg.msg_type, "version_mismatch",
                               f"header.version {version!r} does not match the daemon's protocol {PROTOCOL_VERSION}")
        session = msg.header.get("session")
        if isinstance(session, str) and session and not self._sessions.claim(session, principal):
            return Reply.error(msg.msg_type, "not_allowed",
                               "this header.session is in use by another client; use a session id of your own")
        request = Request(
            msg_type=msg.msg_type,
            content=msg.content,
            buffers=msg.buffers,
            peer=session if isinstance(session, str) and session else "zmq-anonymous",
            transport="zmq",
            control=control,
            role=role,
            principal=principal,
        )
        return self.dispatcher.handle(request)
