"""Malformed OSC datagrams and ZeroMQ frames: the daemon never dies and answers every one it can attribute."""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bridge.protocol import schema as protocol
from bridge.protocol.zmq_wire import DELIMITER
from bridge.server import Server
from plugin_host.osc_client import OscTransport
from plugin_host.zmq_client import ZmqTransport
from tests.bridge.daemon_rig import connect, rig_config, running_daemon
from tests.bridge.tone_backend import ToneBackend

pytestmark = [pytest.mark.timeout(120), pytest.mark.e2e]
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# shutdown would end the daemon; hello could register another reply address (both are tested elsewhere)
TYPES = sorted(set(protocol.REQUESTS) - {"shutdown", "hello"}) + ["dance", "", "hello_reply"]
KEYS = sorted({f.name for m in protocol.REQUESTS.values() for f in m.fields} - {"reply_port", "reply_host"})

scalars = st.one_of(
    st.integers(-(2**31), 2**31 - 1), st.floats(allow_nan=True, width=32), st.text(max_size=40), st.booleans(),
    st.binary(max_size=40),
)
json_values = st.recursive(
    st.one_of(st.none(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20), st.booleans()),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("fuzz")
    with running_daemon(tmp / "state", rig_config(Path(tmp)), ToneBackend(token_s=0.0005)) as server:
        yield server


@pytest.fixture(scope="module")
def osc(daemon: Server) -> Iterator[OscTransport]:
    assert daemon.osc is not None and daemon.osc.address is not None
    t = OscTransport("127.0.0.1", daemon.osc.address[1])
    yield t
    t.close()


@pytest.fixture(scope="module")
def zmq_t(daemon: Server) -> Iterator[ZmqTransport]:
    t = ZmqTransport(daemon.addresses["zmq_request"], daemon.addresses["zmq_control"])
    yield t
    t.close()


def _osc_string(text: str) -> bytes:
    raw = text.encode("utf-8") + b"\0"
    return raw + b"\0" * (-len(raw) % 4)


def _osc_message(address: str, args: list) -> bytes:
    """Encoded by hand (python-osc's builder re-parses and refuses some of what we want to send)."""
    tags, body = ",", b""
    for a in args:
        if isinstance(a, bool):
            tags += "T" if a else "F"
        elif isinstance(a, int):
            tags, body = tags + "i", body + struct.pack(">i", a)
        elif isinstance(a, float):
            tags, body = tags + "f", body + struct.pack(">f", a)
        elif isinstance(a, bytes):
            tags, body = tags + "b", body + struct.pack(">i", len(a)) + a + b"\0" * (-len(a) % 4)
        else:
            tags, body = tags + "s", body + _osc_string(a)
    return _osc_string(address) + _osc_string(tags) + body


osc_datagrams = st.one_of(
    st.binary(min_size=1, max_size=300),
    st.builds(
        _osc_message,
        st.sampled_from([f"/segue/{t}" for t in TYPES] + ["/", "/other", "segue"]),
        st.lists(st.one_of(scalars, st.sampled_from(KEYS)), max_size=12),
    ),
)


@FUZZ
@given(datagram=osc_datagrams)
def test_osc_fuzz_every_datagram_is_answered(osc: OscTransport, datagram: bytes) -> None:
    osc.send_raw(datagram)
    _, _, status, content = osc.receive_reply(3.0)
    assert status in ("ok", "error")
    if status == "error":
        assert content["code"] in protocol.ERROR_CODES, content


def _frames(header: object, content: object, extra: list[bytes]) -> list[bytes]:
    enc = [json.dumps(x).encode() if not isinstance(x, bytes) else x for x in (header, {}, {}, content)]
    return [DELIMITER, *enc, *extra]


zmq_messages = st.one_of(
    st.lists(st.binary(max_size=60), min_size=1, max_size=6),
    st.builds(
        _frames,
        st.one_of(json_values, st.binary(max_size=30),
                  st.fixed_dictionaries({"msg_id": st.text(min_size=1, max_size=8), "msg_type": st.sampled_from(TYPES)})),
        st.one_of(json_values, st.binary(max_size=30)),
        st.lists(st.binary(max_size=30), max_size=2),
    ),
)


@FUZZ
@given(frames=zmq_messages)
def test_zmq_fuzz_every_message_is_answered(zmq_t: ZmqTransport, frames: list[bytes]) -> None:
    zmq_t.send_frames(frames)
    reply = zmq_t.receive_reply(3.0)
    assert reply.content["status"] in ("ok", "error")
    if reply.content["status"] == "error":
        assert reply.content["code"] in protocol.ERROR_CODES, reply.content


def test_daemon_still_serves_after_fuzzing(daemon: Server, osc: OscTransport, zmq_t: ZmqTransport) -> None:
    for transport in ("zmq", "osc"):
        c = connect(daemon, transport)
        assert c.hello()["protocol_version"] == protocol.PROTOCOL_VERSION
        c.close()
