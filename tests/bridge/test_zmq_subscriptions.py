"""The events socket applies only the subscriptions SubscriptionGate allows (bridge/transports/zmq_subscriptions.py):
a collaborator cannot read other clients' events by subscribing to ``job.``, and a flood of random
subscriptions never reaches libzmq's subscription tree."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import zmq

from bridge import roles
from bridge.keyring import mark_owner
from bridge.protocol.zmq_wire import job_topic, session_topic
from bridge.security import issue_client_keys
from bridge.transports.zmq_subscriptions import SessionBook, SubscriptionGate
from plugin_host.client import RemoteError, SegueClient
from plugin_host.zmq_client import ClientKeys
from tests.bridge.daemon_rig import connect, rig_config, running_daemon
from tests.bridge.tone_backend import ToneBackend, wait_until

JOBS = {"a" * 16: "alice", "b" * 16: "bob"}
OWNER, COLLAB = roles.OWNER, roles.COLLABORATOR


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _gate(share: bool = False, rate: int = 256, clock: _Clock | None = None) -> SubscriptionGate:
    return SubscriptionGate(SessionBook(), JOBS.get, share, rate, clock or _Clock())


def test_anyone_may_hear_the_daemon_topic_and_only_the_owner_every_job() -> None:
    gate = _gate()
    for topic in (b"daemon", b"d", b"daem"):
        assert gate.check(topic, COLLAB, "alice") is None
    for topic in (b"", b"job.", b"session."):
        assert gate.check(topic, OWNER, "olga") is None
        assert "owner" in (gate.check(topic, COLLAB, "alice") or "")
    assert _gate(share=True).check(b"job.", COLLAB, "alice") is None  # shared jobs: every job's events


def test_job_topics_name_a_job_the_subscriber_may_see() -> None:
    gate = _gate()
    assert gate.check(job_topic("a" * 16), COLLAB, "alice") is None
    assert gate.check(job_topic("b" * 16), COLLAB, "alice") == f"no job with id {'b' * 16!r}"
    assert gate.check(job_topic("c" * 16), OWNER, "olga") == f"no job with id {'c' * 16!r}"  # no such job
    assert gate.check(job_topic("b" * 16), OWNER, "olga") is None
    assert _gate(share=True).check(job_topic("b" * 16), COLLAB, "alice") is None


def test_a_session_belongs_to_the_first_principal_that_uses_it() -> None:
    gate = _gate()
    assert gate.check(session_topic("s1"), COLLAB, "alice") is None
    assert gate.check(session_topic("s1") + job_topic("a" * 16), COLLAB, "alice") is None
    assert "another client" in (gate.check(session_topic("s1"), COLLAB, "bob") or "")
    assert gate.check(session_topic("s1"), OWNER, "olga") is None  # the owner may follow anyone
    assert gate.sessions.claim("s1", "alice") and not gate.sessions.claim("s1", "bob")


def test_new_sessions_are_rate_limited() -> None:
    clock = _Clock()
    gate = _gate(rate=3, clock=clock)
    assert [gate.check(session_topic(f"s{i}"), OWNER, "") for i in range(3)] == [None] * 3
    assert "new sessions a minute" in (gate.check(session_topic("s3"), OWNER, "") or "")
    assert gate.check(session_topic("s0"), OWNER, "") is None  # a known session costs nothing
    clock.now = 20.0  # a third of a minute: one more
    assert gate.check(session_topic("s3"), OWNER, "") is None
    assert gate.check(session_topic("s4"), OWNER, "") is not None


def test_topics_no_event_carries_are_refused() -> None:
    gate = _gate()
    for topic in (os.urandom(40), b"job", b"job.x", b"jo", b"job." + b"a" * 15, b"session.s1", b"session..",
                  b"session.s1.job.", b"daemonx", b"session." + b"s" * 65 + b".", b"x" * 97):  # fmt: skip
        assert gate.check(topic, OWNER, "") is not None, topic


def _sub(ctx: zmq.Context, address: str, topics: list[bytes], keys: ClientKeys | None = None) -> zmq.Socket:
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    if keys is not None:
        sock.curve_publickey, sock.curve_secretkey, sock.curve_serverkey = keys.public, keys.secret, keys.server_public
    for topic in topics:
        sock.setsockopt(zmq.SUBSCRIBE, topic)
    sock.connect(address)
    return sock


def _topics(sock: zmq.Socket, seconds: float) -> set[bytes]:
    seen: set[bytes] = set()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if sock.poll(int(left * 1000)):
            seen.add(sock.recv_multipart()[0])
    return seen


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_a_collaborator_cannot_subscribe_to_other_clients_jobs(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    for name in ("alice", "bob", "olga"):
        issue_client_keys(keys_dir, name)
    mark_owner(keys_dir, "olga")
    config = rig_config(tmp_path, keys_dir=str(keys_dir), local_owner=False)

    def keys(name: str) -> ClientKeys:
        return ClientKeys.load(keys_dir / "issued" / f"{name}.key_secret", keys_dir / "server.key")

    ctx = zmq.Context()
    with running_daemon(tmp_path / "s", config, ToneBackend(token_s=0.01)) as server:
        a = server.addresses
        bob = SegueClient.over_zmq(a["zmq_request"], a["zmq_control"], a["zmq_events"], keys=keys("bob"), name="bob")
        bob.hello()
        session = bob.transport.session  # type: ignore[attr-defined]
        snoop = _sub(ctx, a["zmq_events"], [b"", b"job.", b"session.", session_topic(session), b"daemon"], keys("alice"))
        owner = _sub(ctx, a["zmq_events"], [b"job."], keys("olga"))
        time.sleep(0.5)  # both subscriptions reach the daemon
        job = bob.submit(kind="generate", model="tiny", length_s=0.1)["id"]
        assert bob.wait_for(job, {"result_ready"})["type"] == "result_ready"  # bob still gets his own
        assert job_topic(job) in _topics(owner, 1.0)
        heard = _topics(snoop, 1.0)
        assert heard == {b"daemon"}, heard  # heartbeats only: none of bob's events
        # nor can alice take over bob's session for her requests
        alice = SegueClient.over_zmq(a["zmq_request"], a["zmq_control"], None, keys=keys("alice"), name="alice")
        alice.transport.session = session  # type: ignore[attr-defined]
        with pytest.raises(RemoteError) as err:
            alice.hello()
        assert err.value.code == "not_allowed"
        for c in (alice, bob):
            c.close()
        snoop.close()
        owner.close()
    ctx.term()


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_a_flood_of_random_subscriptions_is_refused_and_clients_go_on(tmp_path: Path) -> None:
    ctx = zmq.Context()
    with running_daemon(tmp_path / "s", rig_config(tmp_path)) as server:
        flood = ctx.socket(zmq.XSUB)
        flood.linger = 0
        flood.connect(server.addresses["zmq_events"])
        for _ in range(5000):
            flood.send(b"\x01" + os.urandom(1 + int.from_bytes(os.urandom(1), "big") % 150))
        flood.send_multipart([b"\x01job.", b"not a subscription"])  # several frames: dropped whole
        c = connect(server, "zmq")
        job = c.submit(kind="generate", model="tiny", length_s=0.1)["id"]
        assert c.wait_for(job, {"result_ready"})["type"] == "result_ready"
        assert server.zmq is not None and not server.zmq.restarts
        assert server.zmq._refusals > 0  # counted since the one line logged for the flood
        # libzmq keeps what a peer sent until its connection ends: the flooding connection is cut
        wait_until(lambda: server.zmq is not None and server.zmq.disconnected >= 1)
        c.close()
        flood.close()
    ctx.term()


@pytest.mark.e2e
@pytest.mark.timeout(60)
def test_counts_end_with_their_connection(tmp_path: Path) -> None:
    """Connections reuse descriptor numbers: a new connection must not inherit a closed one's refusals."""
    from bridge.transports.zmq import PEER_REFUSALS

    ctx = zmq.Context()
    with running_daemon(tmp_path / "s", rig_config(tmp_path)) as server:
        assert server.zmq is not None
        for _ in range(3):  # three short-lived connections, each refused just under the limit
            peer = ctx.socket(zmq.XSUB)
            peer.linger = 0
            peer.connect(server.addresses["zmq_events"])
            for i in range(PEER_REFUSALS - 2):
                peer.send(b"\x01not-a-topic-%d" % i)
            wait_until(lambda: server.zmq is not None and server.zmq._refusals >= 1)
            time.sleep(0.3)
            peer.close()
            time.sleep(0.3)  # the monitor reports the end; the next connection often gets the same fd
        assert server.zmq.disconnected == 0
    ctx.term()
