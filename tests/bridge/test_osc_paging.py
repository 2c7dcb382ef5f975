"""Issue 8: a 28-byte OSC ``list_jobs`` drew 84 KB of replies, an amplifier for spoofed UDP sources.
Listings are paged (``offset``/``limit``, ``total``/``next``) and the replies to a non-loopback sender
total at most ``max(2048, 4 x the request's bytes)`` (``bridge.transports.osc_paging``). The handler is
driven directly with a forged non-loopback source, its sends captured.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pythonosc.osc_message import OscMessage

from bridge.protocol import osc_wire
from bridge.server import Server
from bridge.transports import osc_paging
from tests.bridge.daemon_rig import connect, rig_config, running_daemon
from tests.bridge.tone_backend import ToneBackend

pytestmark = [pytest.mark.timeout(60)]
REMOTE = ("192.0.2.7", 40000)  # what a forged source looks like to the handler
LOCAL = ("127.0.0.1", 40000)
JOBS = 30


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("paging")
    # the forged remote sender is a collaborator (bridge/roles.py): it sees the jobs the loopback client made only when they are shared
    with running_daemon(tmp / "state", rig_config(Path(tmp), share_jobs=True), ToneBackend(token_s=0.0005)) as server:
        c = connect(server, "zmq")
        c.hello()
        ids = [c.submit((), kind="generate", model="tiny", length_s=0.5)["id"] for _ in range(JOBS)]
        c.wait_for(ids[-1], {"result_ready"}, timeout=30)
        c.close()
        yield server


def _ask(
    daemon: Server, data: bytes, source: tuple[str, int], monkeypatch: pytest.MonkeyPatch
) -> list[bytes]:
    front = daemon.osc
    assert front is not None
    sent: list[bytes] = []
    monkeypatch.setattr(front, "_send", lambda datagrams, address: sent.extend(datagrams))
    front._handle(data, source)
    return sent


def _replies(sent: list[bytes]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    pairs: list[tuple[str, Any]] = []
    for datagram in sent:
        _, _, status, part, parts, *rest = OscMessage(datagram).params
        pairs = (pairs if part else []) + list(zip(rest[0::2], rest[1::2]))
        if part == parts - 1:
            out.append((status, osc_wire.unflatten(pairs)))
    return out


def _list(
    daemon: Server, source: tuple[str, int], mp: pytest.MonkeyPatch, **args: Any
) -> tuple[int, dict[str, Any]]:
    data = osc_wire.request_datagram("list_jobs", 1, args)
    sent = _ask(daemon, data, source, mp)
    assert source == LOCAL or sum(map(len, sent)) <= osc_paging.budget(len(data))
    [(status, content)] = _replies(sent)
    assert status == "ok", content
    return sum(map(len, sent)), content


def test_a_tiny_list_jobs_from_a_remote_sender_draws_a_bounded_reply(
    daemon: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = osc_wire.request_datagram("list_jobs", 1, {})
    assert len(data) <= 28
    sent = _ask(daemon, data, REMOTE, monkeypatch)
    assert sum(map(len, sent)) <= max(2048, 4 * len(data))
    [(status, content)] = _replies(sent)
    assert status == "ok" and content["total"] == JOBS and 0 < len(content["jobs"]) < JOBS
    assert content["next"] == len(content["jobs"])


def test_remote_pages_walk_the_whole_listing(daemon: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    offset: int | None = 0
    while offset is not None:
        _, content = _list(daemon, REMOTE, monkeypatch, offset=offset, limit=50)
        seen += [job["id"] for job in content["jobs"]]
        offset = content.get("next")
    _, full = _list(daemon, LOCAL, monkeypatch)
    assert seen == [job["id"] for job in full["jobs"]] and len(seen) == JOBS


def test_loopback_gets_the_full_listing_and_may_page(daemon: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    size, content = _list(daemon, LOCAL, monkeypatch)
    assert len(content["jobs"]) == content["total"] == JOBS and "next" not in content and size > 4096
    _, page = _list(daemon, LOCAL, monkeypatch, offset=25, limit=3)
    assert [j["id"] for j in page["jobs"]] == [j["id"] for j in content["jobs"][25:28]] and page["next"] == 28
    _, last = _list(daemon, LOCAL, monkeypatch, offset=28, limit=10)
    assert len(last["jobs"]) == 2 and "next" not in last


@pytest.mark.parametrize(
    "args", [{"offset": -1}, {"limit": 0}, {"limit": 1001}, {"offset": "x"}, {"limit": 1.5}]
)
def test_bad_page_arguments_are_refused(
    daemon: Server, monkeypatch: pytest.MonkeyPatch, args: dict[str, Any]
) -> None:
    [(status, content)] = _replies(
        _ask(daemon, osc_wire.request_datagram("list_jobs", 1, args), LOCAL, monkeypatch)
    )
    assert status == "error" and content["code"] == "bad_request" and next(iter(args)) in content["message"]


def test_hello_and_events_since_fit_the_budget(daemon: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    data = osc_wire.request_datagram("hello", 1, {"protocol_version": "1.0"})
    sent = _ask(daemon, data, REMOTE, monkeypatch)
    assert sum(map(len, sent)) <= osc_paging.budget(len(data))
    [(status, content)] = _replies(sent)
    assert status == "ok" and content["protocol_version"]
    _, jobs = _list(daemon, LOCAL, monkeypatch, limit=1)
    job_id, after = jobs["jobs"][0]["id"], 0
    events: list[dict[str, Any]] = []
    while True:
        data = osc_wire.request_datagram("events_since", 1, {"job_id": job_id, "after": after, "limit": 1000})
        sent = _ask(daemon, data, REMOTE, monkeypatch)
        assert sum(map(len, sent)) <= osc_paging.budget(len(data))
        [(status, page)] = _replies(sent)
        assert status == "ok", page
        events += page.get("events") or []
        if not page["more"]:
            break
        after = page["next_after"]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(set(seqs)) and {e["type"] for e in events} >= {"accepted", "result_ready"}


def test_a_bundle_shares_one_budget(daemon: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    inner = [osc_wire.request_datagram("list_jobs", i, {}) for i in range(40)]
    bundle = b"#bundle\0" + b"\0" * 7 + b"\1" + b"".join(struct.pack(">i", len(m)) + m for m in inner)
    sent = _ask(daemon, bundle, REMOTE, monkeypatch)
    error_room = 300  # the one too_large that says the budget is spent
    assert sum(map(len, sent)) <= osc_paging.budget(len(bundle)) + error_room
    replies = _replies(sent)
    assert replies[-1][0] == "error" and replies[-1][1]["code"] == "too_large"
