"""Issue 8: with ``osc_host = "::"`` (dual stack) IPv4 senders arrive as IPv4-mapped IPv6 addresses
(``::ffff:127.0.0.1``), and the allow-list and loopback checks refused listed IPv4 senders and IPv4
loopback. Addresses are normalised before those checks, and "::" really is dual stack (IPV6_V6ONLY off).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pythonosc.osc_message import OscMessage

from bridge.config import is_loopback, plain_host
from bridge.dispatcher import Dispatcher
from bridge.protocol import osc_wire
from bridge.server import Server
from bridge.transports.osc import OscFrontEnd
from tests.bridge.daemon_rig import rig_config, running_daemon
from tests.bridge.tone_backend import ToneBackend

pytestmark = [pytest.mark.timeout(60)]


def test_mapped_addresses_are_normalised() -> None:
    assert plain_host("::ffff:127.0.0.1") == "127.0.0.1"
    assert plain_host("::FFFF:192.0.2.7") == "192.0.2.7"
    assert plain_host("0:0:0:0:0:0:0:1") == "::1"
    assert plain_host("fe80::1%eth0") == "fe80::1%eth0"  # scoped: left as it is
    assert plain_host("localhost") == "localhost"
    assert is_loopback("::ffff:127.0.0.1") and is_loopback("::ffff:127.9.9.9")
    assert not is_loopback("::ffff:192.0.2.7")


def test_the_allow_list_sees_ipv4_senders_of_a_dual_stack_socket(tmp_path: Path) -> None:
    config = rig_config(tmp_path, osc_host="::", osc_allowed_sources=("192.0.2.7", "2001:db8::5"))
    front = OscFrontEnd(config, Dispatcher(None, config))
    assert front._allowed("::ffff:192.0.2.7")  # a listed IPv4 sender
    assert front._allowed("::ffff:127.0.0.1") and front._allowed("::1")  # loopback, either family
    assert front._allowed("2001:db8:0::5")  # another spelling of a listed IPv6 sender
    assert not front._allowed("::ffff:192.0.2.8") and not front._allowed("192.0.2.8")


def _ipv6_dual_stack_available() -> str | None:
    """None if this machine can bind "::" and reach it from IPv4 loopback, else why not."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            s.bind(("::", 0))
    except OSError as exc:
        return f"cannot bind a dual-stack IPv6 socket here: {exc}"
    return None


@pytest.fixture
def dual_stack_daemon(tmp_path: Path) -> Iterator[Server]:
    why = _ipv6_dual_stack_available()
    if why is not None:
        pytest.skip(why)
    config = rig_config(tmp_path, osc_host="::", osc_allowed_sources=("192.0.2.7",), enable_zmq=False)
    with running_daemon(tmp_path / "state", config, ToneBackend()) as server:
        yield server


def _ask(family: int, host: str, port: int, msg_type: str, content: dict[str, Any]) -> tuple[Any, ...]:
    """Send one request from a fresh socket of ``family`` and return the reply's arguments."""
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        s.settimeout(3.0)
        if msg_type == "hello":
            content = {"reply_port": s.getsockname()[1], **content}
        s.sendto(osc_wire.request_datagram(msg_type, "r1", content), (host, port))
        return tuple(OscMessage(s.recvfrom(65535)[0]).params)


def test_ipv4_loopback_reaches_a_dual_stack_daemon(dual_stack_daemon: Server) -> None:
    front = dual_stack_daemon.osc
    assert front is not None and front.address is not None and front._sock is not None
    assert front._sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
    port = front.address[1]
    hello = {"protocol_version": "1.0", "client": "dual"}
    for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
        assert _ask(family, host, port, "list_jobs", {})[:3] == ("r1", "list_jobs", "ok"), host
        assert _ask(family, host, port, "hello", hello)[:3] == ("r1", "hello", "ok"), host
    # an IPv4 reply_host named by an IPv4 sender: the reply goes out of the IPv6 socket, mapped
    reply = _ask(socket.AF_INET, "127.0.0.1", port, "hello", {**hello, "reply_host": "127.0.0.1"})
    assert reply[:3] == ("r1", "hello", "ok")
