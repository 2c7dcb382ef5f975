"""Issue 8: malformed OSC datagrams (a nil reply port, deeply nested keys, wrong-typed arguments, ...) were
answered "internal error; see the daemon log". A seeded fuzz loop feeds a few thousand generated datagrams
straight to the OSC front end's handler (no sockets, so it is fast) and checks that every one is answered
with a specific error code and message, never ``internal``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pythonosc.osc_message import OscMessage

from bridge.protocol import osc_wire
from bridge.protocol import schema as protocol
from bridge.transports.osc import OscFrontEnd
from tests.bridge.daemon_rig import rig_config, running_daemon
from tests.bridge.tone_backend import ToneBackend
from tests.helpers import osc_fuzz
from tests.helpers.osc_fuzz import VALID, Blob, Nil

pytestmark = [pytest.mark.timeout(60)]
SOURCE = ("127.0.0.1", 40000)
COUNT = 3000
@pytest.fixture(scope="module")
def front(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OscFrontEnd]:
    tmp = tmp_path_factory.mktemp("oscfuzz")
    with running_daemon(tmp / "state", rig_config(Path(tmp)), ToneBackend(token_s=0.0005)) as server:
        assert server.osc is not None
        yield server.osc


def _answers(
    front: OscFrontEnd, data: bytes, monkeypatch: pytest.MonkeyPatch
) -> list[tuple[str, dict[str, Any]]]:
    """(status, content) of each reply the handler sends for ``data``, its parts merged."""
    sent: list[bytes] = []
    monkeypatch.setattr(front, "_send", lambda datagrams, address: sent.extend(datagrams))
    front._handle(data, SOURCE)
    replies: list[tuple[str, dict[str, Any]]] = []
    pairs: list[tuple[str, Any]] = []
    for datagram in sent:
        message = OscMessage(datagram)
        assert len(datagram) <= protocol.OSC_MAX_MESSAGE
        if message.address == osc_wire.EVENT:  # a valid submit got through: its job's events
            continue
        _, _, status, part, parts, *rest = message.params
        pairs = (pairs if part else []) + list(zip(rest[0::2], rest[1::2]))
        if part == parts - 1:
            replies.append((status, osc_wire.unflatten(pairs)))
    return replies


def test_every_malformed_datagram_gets_a_specific_error(
    front: OscFrontEnd, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(8)
    internal: list[tuple[bytes, dict[str, Any]]] = []
    unanswered = 0
    for _ in range(COUNT):
        data = osc_fuzz.datagram(rng)
        replies = _answers(front, data, monkeypatch)
        if not replies:
            unanswered += osc_fuzz.expects_answer(data)
        for status, content in replies:
            assert status in ("ok", "error"), content
            if status == "error":
                if content.get("code") == "internal" or content.get("code") not in protocol.ERROR_CODES:
                    internal.append((data[:120], content))
                assert content.get("message"), content
    assert not internal, f"{len(internal)} internal errors, e.g. {internal[:3]}"
    assert unanswered == 0


def test_the_reported_cases(front: OscFrontEnd, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shapes the attack run named: a nil reply port, deeply nested keys, wrong-typed arguments."""
    cases = {
        "nil reply port": osc_fuzz.message("/segue/status", ["r", "job_id", "x", "reply_port", Nil()]),
        "nil hello port": osc_fuzz.message("/segue/hello", ["r", *VALID["hello"], "reply_port", Nil()]),
        "string hello port": osc_fuzz.message("/segue/hello", ["r", *VALID["hello"], "reply_port", "80"]),
        "int hello host": osc_fuzz.message("/segue/hello", ["r", *VALID["hello"], "reply_host", 127]),
        "deep key": osc_fuzz.message("/segue/status", ["r", ".".join(["a"] * 5000), 1]),
        "deep index key": osc_fuzz.message("/segue/submit", ["r", ".".join(["0"] * 3000), 1]),
        "blob job id": osc_fuzz.message("/segue/status", ["r", "job_id", Blob(b"x")]),
        "array value": osc_fuzz.message("/segue/status", ["r", "job_id", [1, [2]]]),
        "midi value": osc_fuzz.message("/segue/list_jobs", ["r", "client", ("m", b"\1\2\3\4")]),
        "huge request id": osc_fuzz.message("/segue/status", ["r" * 1200, "job_id", "x"]),
        "gap in a list": osc_fuzz.message("/segue/submit", ["r", "stems.9999.path", "/x.wav"]),
    }
    for name, data in cases.items():
        replies = _answers(front, data, monkeypatch)
        assert replies, name
        status, content = replies[0]
        if name == "nil hello port":  # nil stands for "left out", as a JSON null does over ZeroMQ
            assert status == "ok", content
            continue
        assert status == "error" and content["code"] == "bad_request", (name, content)
