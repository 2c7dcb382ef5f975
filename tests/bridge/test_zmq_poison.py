"""Issue 8: one ZeroMQ message must not take a front-end thread down.

Poison messages (a NaN in the header, JSON nested 100,000 deep) go over real sockets to a running daemon
on both ROUTER sockets; each is answered ``bad_request`` naming the problem, and ``status`` still answers
on the same socket afterwards. A loop that dies anyway is restarted by its supervisor (and logged), and
the daemon's heartbeat events stop while a loop is gone, so clients notice.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import zmq

from bridge.protocol.zmq_wire import DAEMON_TOPIC, DELIMITER, MAX_JSON_DEPTH, split_routing, unpack
from bridge.server import Server
from plugin_host.zmq_client import ZmqTransport
from tests.bridge.daemon_rig import rig_config, running_daemon
from tests.bridge.tone_backend import ToneBackend

pytestmark = [pytest.mark.timeout(60), pytest.mark.e2e]

DEEP = b"[" * 100_000 + b"]" * 100_000
NAN_HEADER = b'{"msg_id":"k","msg_type":"status","session":"s","x":NaN}'
STATUS = json.dumps({"msg_id": "ok", "msg_type": "status", "session": "s"}).encode()
POISON = {
    "nan header": ([DELIMITER, NAN_HEADER, b"{}", b"{}", b'{"job_id":"x"}'], "NaN is not allowed"),
    "infinity content": (
        [DELIMITER, STATUS, b"{}", b"{}", b'{"job_id":"x","y":-Infinity}'],
        "-Infinity is not allowed",
    ),
    "deep header": (
        [DELIMITER, DEEP, b"{}", b"{}", b"{}"],
        f"header nests deeper than {MAX_JSON_DEPTH} levels",
    ),
    "deep content": (
        [DELIMITER, STATUS, b"{}", b"{}", b'{"a":' + DEEP + b"}"],
        f"content nests deeper than {MAX_JSON_DEPTH} levels",
    ),
    "deep parent": (
        [DELIMITER, STATUS, b'{"p":' + DEEP + b"}", b"{}", b"{}"],
        f"parent_header nests deeper than {MAX_JSON_DEPTH} levels",
    ),
}


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Server]:
    with running_daemon(tmp_path / "state", rig_config(tmp_path), ToneBackend()) as server:
        yield server


@pytest.fixture
def transport(daemon: Server) -> Iterator[ZmqTransport]:
    t = ZmqTransport(daemon.addresses["zmq_request"], daemon.addresses["zmq_control"])
    yield t
    t.close()


def _status_answers(t: ZmqTransport, control: bool) -> None:
    reply = t.request("status", {"job_id": "nope"}, control=control, timeout=3.0)
    assert reply.status == "error" and reply.content["code"] == "not_found", reply


@pytest.mark.parametrize("control", [False, True], ids=["request", "control"])
@pytest.mark.parametrize("case", sorted(POISON))
def test_poison_messages_are_answered_and_the_socket_keeps_serving(
    transport: ZmqTransport, case: str, control: bool
) -> None:
    frames, problem = POISON[case]
    for _ in range(3):  # the attack sent 20 in a row
        transport.send_frames(frames, control=control)
        reply = transport.receive_reply(3.0, control=control)
        assert reply.content["status"] == "error"
        assert reply.content["code"] == "bad_request"
        assert problem in reply.content["message"]
    _status_answers(transport, control)


def _heartbeats(sub: zmq.Socket, seconds: float) -> int:
    """Heartbeat events received on ``sub`` within ``seconds``."""
    count, deadline = 0, time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if sub.poll(max(1, int(left * 1000))):
            msg = unpack(split_routing(sub.recv_multipart()[1:])[1])
            count += msg.content.get("type") == "heartbeat"
    return count


def _drain(sub: zmq.Socket) -> None:
    """Drop what ``sub`` has queued (heartbeats sent before the moment that matters)."""
    while sub.poll(0):
        sub.recv_multipart()


def test_a_bad_internal_event_does_not_stop_the_control_loop(daemon: Server, transport: ZmqTransport) -> None:
    assert daemon.zmq is not None and daemon.zmq._push is not None
    # what a bug in the engine's event path could queue
    daemon.zmq._push.send_multipart([b"not json", b"job.x"])
    time.sleep(0.3)
    _status_answers(transport, control=True)


def test_a_dead_loop_is_restarted_and_logged_and_heartbeats_pause_meanwhile(
    daemon: Server,
    transport: ZmqTransport,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    front = daemon.zmq
    assert front is not None
    sub: zmq.Socket = zmq.Context.instance().socket(zmq.SUB)
    sub.linger = 0
    sub.subscribe(DAEMON_TOPIC)
    sub.connect(daemon.addresses["zmq_events"])
    try:
        assert sub.poll(5000)  # the first heartbeat: subscribed (a loaded machine can take a while)
        assert _heartbeats(sub, 0.6) >= 2  # every 100 ms in the rig
        answer = front._answer

        def broken(sock: zmq.Socket, control: bool) -> None:
            if not control:
                raise RuntimeError("injected bug in the request loop")
            answer(sock, control)

        monkeypatch.setattr(front, "_answer", broken)
        with caplog.at_level(logging.ERROR, logger="segue.bridge.zmq"):
            transport.send_frames([DELIMITER, STATUS, b"{}", b"{}", b'{"job_id":"x"}'])
            time.sleep(0.2)
            _drain(sub)
            assert _heartbeats(sub, 0.5) == 0  # the request loop is gone: no heartbeat claims all is well
            _status_answers(transport, control=True)  # the control loop still serves
            monkeypatch.setattr(front, "_answer", answer)
            assert _heartbeats(sub, 2.0) >= 2  # restarted within its back-off: heartbeats resume
        assert any("zmq-requests" in r.getMessage() and "restart" in r.getMessage() for r in caplog.records)
        _status_answers(transport, control=False)
    finally:
        sub.close(0)
