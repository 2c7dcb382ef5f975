"""OSC front end over UDP: one thread reads datagrams, parses them with python-osc, asks the dispatcher,
and sends replies. A job's events go to the address that got the reply to its ``submit`` (or
``resubmit``), and to every client registered with ``hello`` ``events all``.

A client registers with ``/segue/hello`` (``reply_port``, optionally ``reply_host`` which must be the
sender's own host); until then replies go to the datagram's source. Any other request may carry
``reply_port`` too (one-shot senders such as ``oscsend`` change source port every time): that reply goes
to the sender's host at that port. Nothing is dropped silently: a
datagram that is not OSC, or a message that is not a valid request, gets an error reply (request id
``""`` when none could be read). The only datagrams not answered come from senders outside
``osc_allowed_sources`` when the daemon listens beyond loopback (answering them would make the daemon a
reflector), and ``/segue/reply`` or ``/segue/event`` messages sent to the daemon (answering those could
loop forever); both are logged. Requests never block: the dispatcher's engine calls return at once.
"""

from __future__ import annotations

import ipaddress
import logging
import select
import socket
import threading
from collections import OrderedDict
from typing import Any

from bridge import roles
from bridge.config import BridgeConfig, is_loopback, plain_host
from bridge.dispatcher import Dispatcher, Reply, Request
from bridge.jobs import JobEvent
from bridge.protocol import osc_wire
from bridge.protocol import schema as protocol
from bridge.protocol.schema import ProtocolError
from bridge.transports import osc_paging
from bridge.transports.supervise import Supervisor

log = logging.getLogger("segue.bridge.osc")

Address = tuple[str, int]


class OscFrontEnd:
    def __init__(self, config: BridgeConfig, dispatcher: Dispatcher) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.address: Address | None = None
        self._sock: socket.socket | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        # source -> (reply address, wants every job's events)
        self._clients: OrderedDict[Address, tuple[Address, bool]] = OrderedDict()
        self._allowed_hosts = frozenset(plain_host(h) for h in config.osc_allowed_sources)
        self._supervisor = Supervisor(self._stop, log)  # restarts the loop should it die (a bug)

    def start(self) -> None:
        family = socket.AF_INET6 if ":" in self.config.osc_host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        if family == socket.AF_INET6 and ipaddress.ip_address(self.config.osc_host).is_unspecified:
            # "::" means both families whatever the system default (net.ipv6.bindv6only, BSD, Windows)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((self.config.osc_host, self.config.osc_port))
        self._sock = sock
        host, port = sock.getsockname()[:2]
        self.address = (host, port)
        self._thread = threading.Thread(target=self._supervisor.run, args=("osc", self._serve), name="osc",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @property
    def clients(self) -> list[Address]:
        with self._lock:
            return list(dict.fromkeys(address for address, _ in self._clients.values()))

    def publish(self, event: JobEvent, owner: str | None = None) -> None:
        """Send ``event`` to its job's owner (``osc:<host>:<port>``, the reply address of its submit) and
        to the clients registered for every job's events; safe from any thread."""
        with self._lock:
            targets = [address for address, every in self._clients.values() if every]
        if owner is not None and owner.startswith("osc:"):
            host, _, port = owner[len("osc:"):].rpartition(":")
            targets.insert(0, (host, int(port)))
        if targets:
            datagrams = osc_wire.event_datagrams(event.to_dict())
            for address in dict.fromkeys(targets):
                self._send(datagrams, address)

    # --- loop ---------------------------------------------------------------------------------------
    def _serve(self) -> None:
        assert self._sock is not None
        sock = self._sock
        while not self._stop.is_set():
            readable, _, _ = select.select([sock], [], [], 0.1)
            if not readable:
                continue
            try:
                data, source = sock.recvfrom(65535)
            except OSError as exc:  # e.g. ICMP port unreachable from an earlier send
                log.debug("osc receive failed: %s", exc)
                continue
            source = (source[0], source[1])
            if not self._allowed(source[0]):
                log.warning("osc datagram from %s refused: not in bridge.osc_allowed_sources", source[0])
                continue
            self._handle(data, source)

    def _handle(self, data: bytes, source: Address) -> None:
        """Answer one datagram from an allowed ``source``; never raises (a bug is logged and answered)."""
        try:
            self._datagram(data, source)
        except Exception:  # a bug must not stop the front end
            log.exception("osc datagram from %s failed", source)
            self._reply(source, "", Reply.error("unknown", "internal", "internal error; see the daemon log"))

    def _allowed(self, host: str) -> bool:
        """Whether a datagram from ``host`` is served: always on a loopback-only daemon, else loopback and
        ``osc_allowed_sources``, compared in one spelling (``plain_host``: IPv4 senders of a dual-stack
        socket arrive as ``::ffff:a.b.c.d``)."""
        if is_loopback(self.config.osc_host):
            return True
        return plain_host(host) in self._allowed_hosts or is_loopback(host)

    def _datagram(self, data: bytes, source: Address) -> None:
        # a non-loopback source may be forged: what its datagram draws in replies is bounded (osc_paging)
        spend = osc_paging.Budget(None if is_loopback(source[0]) else osc_paging.budget(len(data)))
        try:
            messages = osc_wire.parse_packet(data)
        except ProtocolError as exc:
            self._reply(source, "", Reply.error("unknown", exc.code, exc.message), spend=spend)
            return
        if not messages:
            self._reply(source, "", Reply.error("unknown", "bad_request", "the OSC bundle holds no message"), spend=spend)
        for n, message in enumerate(messages):
            if spend.spent:  # one too_large said so already: the rest of the bundle would only amplify
                log.warning("osc bundle from %s: reply budget spent, %d message(s) not answered", source,
                            len(messages) - n)
                break
            if message.address in (osc_wire.REPLY, osc_wire.EVENT):
                # a reply or event sent back to us (a client that registered the daemon's own port, or two
                # daemons pointed at each other): answering it would start an endless ping-pong
                log.warning("osc %s from %s ignored: replies and events are not requests", message.address, source)
                continue
            try:
                req_id, msg_type, content = osc_wire.request_from(message)
            except ProtocolError as exc:
                first = message.params[0] if message.params else ""
                req_id = first if osc_wire.is_request_id(first) else ""
                self._reply(source, req_id, Reply.error(message.address.rsplit("/", 1)[-1][:64], exc.code, exc.message), spend=spend)
                continue
            reply_to = source
            if msg_type != "hello" and "reply_port" in content:  # one-shot senders (oscsend) name a port
                port = content.pop("reply_port")
                if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
                    self._reply(source, req_id, Reply.error(msg_type, "bad_request", "reply_port must be 1..65535"), spend=spend)
                    continue
                reply_to = (source[0], port)
            try:
                page = osc_paging.page_args(msg_type, content, is_loopback(source[0]))
            except ProtocolError as exc:
                self._reply(source, req_id, Reply.error(msg_type, exc.code, exc.message), spend=spend)
                continue
            events_to = self._reply_address(source, reply_to)  # a job's events follow its submit's reply
            local = self.config.local_owner and is_loopback(plain_host(source[0]))  # roles: loopback is the owner
            request = Request(msg_type, content, (), peer=f"{source[0]}:{source[1]}", transport="osc",
                              events_to=f"{events_to[0]}:{events_to[1]}", role=roles.OWNER if local else roles.COLLABORATOR,
                              principal="" if local else f"osc:{plain_host(source[0])}")  # fmt: skip
            hello: dict[str, Any] = {}
            if msg_type == "hello":
                try:  # the registration reads reply_host/reply_port: only once they are checked (a nil port)
                    hello = protocol.validate_request("hello", content)
                except ProtocolError as exc:
                    self._reply(source, req_id, Reply.error("hello", exc.code, exc.message), spend=spend)
                    continue
                error = self._register_check(source, hello)
                if error is not None:
                    self._reply(source, req_id, error, spend=spend)
                    continue
            reply = self.dispatcher.handle(request)
            if msg_type == "hello" and reply.status == "ok":
                self._register(source, hello)
            if page is not None:
                reply = osc_paging.paged(reply, msg_type, page)
            self._reply(source, req_id, reply, reply_to, spend=spend, offset=0 if page is None else page.offset)

    def _register_check(self, source: Address, content: dict[str, Any]) -> Reply | None:
        host = content.get("reply_host", source[0])
        if plain_host(str(host)) != plain_host(source[0]) and not (is_loopback(str(host)) and is_loopback(source[0])):
            return Reply.error("hello", "not_allowed", f"reply_host {host!r} must be the sender's own address {source[0]}")
        if self.address is not None and content.get("reply_port") == self.address[1]:
            return Reply.error("hello", "not_allowed", f"reply_port {self.address[1]} is the daemon's own port")
        return None

    def _register(self, source: Address, content: dict[str, Any]) -> None:
        host = str(content.get("reply_host", source[0]))
        port = content.get("reply_port", source[1])
        with self._lock:
            self._clients.pop(source, None)
            self._clients[source] = ((host, int(port)), content.get("events") == "all")
            while len(self._clients) > self.config.max_osc_clients:
                self._clients.popitem(last=False)

    def _reply_address(self, source: Address, reply_to: Address | None) -> Address:
        """Where a reply to ``source`` goes: the request's own ``reply_port``, else its registered address."""
        if reply_to is not None and reply_to != source:
            return reply_to
        with self._lock:
            registered = self._clients.get(source)
        return source if registered is None else registered[0]

    def _reply(self, source: Address, req_id: str | int, reply: Reply, reply_to: Address | None = None,
               spend: osc_paging.Budget | None = None, offset: int = 0) -> None:
        """Send ``reply``; with ``spend`` (the datagram's reply budget) cut to fit it (``osc_paging.fit``;
        ``offset``: where the reply's page starts)."""
        address = self._reply_address(source, reply_to)
        msg_type = reply.msg_type[: -len("_reply")] if reply.msg_type.endswith("_reply") else reply.msg_type
        if spend is None:
            datagrams = osc_wire.reply_datagrams(req_id, msg_type, reply.status, reply.content)
        else:
            datagrams = osc_paging.fit(req_id, msg_type, reply, offset, spend)
        self._send(datagrams, address)
        if reply.shutdown:
            log.info("shutdown requested over OSC by %s", source)

    def _send(self, datagrams: list[bytes], address: Address) -> None:
        sock = self._sock
        if sock is None:
            return
        if sock.family == socket.AF_INET6 and "." in address[0] and ":" not in address[0]:
            address = (f"::ffff:{address[0]}", address[1])  # an IPv4 reply_host, out of a dual-stack socket
        for datagram in datagrams:
            try:
                sock.sendto(datagram, address)
            except OSError as exc:
                log.debug("osc send to %s failed: %s", address, exc)
