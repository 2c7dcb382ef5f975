"""ZeroMQ specifics: audio as binary frames, inline results, malformed frames, size limits, control socket,
heartbeat options, CURVE."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import zmq

from bridge.protocol.zmq_wire import DELIMITER
from bridge.security import issue_client_keys
from bridge.server import Server
from bridge.transports.zmq import EVENTS_MAX_MESSAGE
from plugin_host.client import RemoteError, SegueClient
from plugin_host.zmq_client import ClientKeys, ZmqTransport
from tests.bridge.daemon_rig import connect, rig_config, running_daemon
from tests.bridge.tone_backend import ToneBackend

pytestmark = [pytest.mark.timeout(60), pytest.mark.e2e]


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "music").mkdir()
    with running_daemon(tmp_path / "state", rig_config(tmp_path / "music"), ToneBackend()) as server:
        yield server


@pytest.fixture
def client(daemon: Server) -> Iterator[SegueClient]:
    c = connect(daemon, "zmq")
    c.hello()
    yield c
    c.close()


def _wav_bytes(seconds: float = 0.25, rate: int = 22050) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.zeros((int(seconds * rate), 2), np.float32), rate, format="WAV")
    return buf.getvalue()


def test_region_as_binary_frame_and_inline_result(client: SegueClient) -> None:
    job = client.submit((_wav_bytes(),), kind="continue", model="tiny", length_s=0.5,
                        region={"buffer": 0, "format": "wav"})
    client.wait_for(job["id"], {"result_ready"})
    content, buffers = client.fetch_result(job["id"], inline=True)
    assert len(buffers) == len(content["results"]) == 1
    assert buffers[0] == Path(content["results"][0]["path"]).read_bytes()
    audio, rate = sf.read(io.BytesIO(buffers[0]))
    assert rate == 44100 and len(audio) == 22050


def test_midi_and_stems_as_frames(client: SegueClient) -> None:
    midi = b"MThd\0\0\0\6\0\0\0\1\0\x60"
    job = client.submit((_wav_bytes(), midi, _wav_bytes()), kind="continue", model="tiny", length_s=0.3,
                        region={"buffer": 0, "format": "wav"}, midi={"buffer": 1, "format": "mid"},
                        stems=[{"buffer": 2, "format": "wav", "label": "bass"}])
    assert client.wait_for(job["id"], {"result_ready", "failed"})["type"] == "result_ready"


def test_buffer_index_must_name_a_frame(client: SegueClient) -> None:
    with pytest.raises(RemoteError) as err:
        client.submit((), kind="continue", model="tiny", length_s=0.5, region={"buffer": 0})
    assert err.value.code == "bad_request"


def test_oversize_input_and_message_are_too_large(client: SegueClient) -> None:
    big = b"\0" * (3 << 20)  # over max_input_bytes (2 MiB), under max_message_bytes (4 MiB)
    with pytest.raises(RemoteError) as err:
        client.submit((big,), kind="continue", model="tiny", length_s=0.5, region={"buffer": 0})
    assert err.value.code == "too_large"
    with pytest.raises(RemoteError) as err:  # two frames, each under the frame limit, 6 MiB in all
        client.submit((big, big), kind="continue", model="tiny", length_s=0.5, region={"buffer": 0})
    assert err.value.code == "too_large"
    assert client.hello()


def test_malformed_frames_get_error_replies(daemon: Server) -> None:
    t = ZmqTransport(daemon.addresses["zmq_request"], daemon.addresses["zmq_control"])
    cases = [
        [b"no delimiter"],
        [DELIMITER, b"not json", b"{}", b"{}", b"{}"],
        [DELIMITER, b"{}", b"{}", b"{}", b"{}"],
        [DELIMITER, json.dumps({"msg_id": "1", "msg_type": "status"}).encode(), b"{}", b"{}", b"[1]"],
        [DELIMITER, json.dumps({"msg_id": "1", "msg_type": "status", "version": "9.0"}).encode(), b"{}", b"{}", b"{}"],
    ]
    codes = []
    for frames in cases:
        t.send_frames(frames)
        reply = t.receive_reply(2.0)
        assert reply.content["status"] == "error"
        codes.append(reply.content["code"])
    assert codes == ["bad_request", "bad_request", "bad_request", "bad_request", "version_mismatch"]
    t.close()


def test_control_socket_serves_only_control_requests(client: SegueClient) -> None:
    assert client.call("list_jobs", control=True)["jobs"] == []
    with pytest.raises(RemoteError) as err:
        client.call("submit", {"kind": "generate", "model": "tiny", "length_s": 1.0}, control=True)
    assert err.value.code == "not_allowed"


def test_control_answers_while_a_job_runs(tmp_path: Path) -> None:
    backend = ToneBackend(token_s=0.01, tokens=(200, 50))
    with running_daemon(tmp_path / "s", rig_config(tmp_path), backend) as server:
        c = connect(server, "zmq")
        job = c.submit(kind="generate", model="tiny", length_s=1.0)
        c.wait_for(job["id"], {"level_done"})
        assert c.status(job["id"])["state"] == "running"
        assert c.cancel(job["id"])["id"] == job["id"]
        c.close()


def test_sockets_have_heartbeats_and_size_limits(daemon: Server) -> None:
    assert daemon.zmq is not None
    for name in ("request", "control", "events"):
        sock = daemon.zmq._sockets[name]
        assert sock.getsockopt(zmq.HEARTBEAT_IVL) == 100
        assert sock.getsockopt(zmq.HEARTBEAT_TIMEOUT) == 1000
        # the events socket takes nothing longer than a subscription (its peers only subscribe)
        assert sock.getsockopt(zmq.MAXMSGSIZE) == (4 << 20 if name != "events" else EVENTS_MAX_MESSAGE)


def test_curve_admits_issued_keys_and_refuses_others(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    secret_file, server_public = issue_client_keys(keys_dir, "alice")
    config = rig_config(tmp_path, keys_dir=str(keys_dir))
    with running_daemon(tmp_path / "s", config) as server:
        a = server.addresses
        keys = ClientKeys.load(secret_file, server_public)
        alice = SegueClient.over_zmq(a["zmq_request"], a["zmq_control"], a["zmq_events"], keys=keys, timeout=3.0)
        assert alice.hello()["protocol_version"] == "1.4"
        alice.close()
        plain = SegueClient.over_zmq(a["zmq_request"], a["zmq_control"], None, timeout=0.5)
        with pytest.raises(TimeoutError):
            plain.hello()
        plain.close()
        public, secret = zmq.curve_keypair()  # well-formed CURVE keys the owner never issued
        stranger = SegueClient.over_zmq(a["zmq_request"], a["zmq_control"], None, timeout=0.5,
                                        keys=ClientKeys(public, secret, keys.server_public))
        with pytest.raises(TimeoutError):
            stranger.hello()
        stranger.close()


def test_events_go_out_on_the_job_topic_and_once_more_on_the_submitters_session_topic(daemon: Server) -> None:
    from bridge.protocol.zmq_wire import DAEMON_TOPIC, job_topic, session_topic, unpack

    c = connect(daemon, "zmq")
    subs = {}
    for prefix in (b"job.", session_topic(c.transport.session)):  # type: ignore[attr-defined]
        sub = zmq.Context.instance().socket(zmq.SUB)
        sub.linger = 0
        sub.connect(daemon.addresses["zmq_events"])
        sub.setsockopt(zmq.SUBSCRIBE, prefix)
        sub.setsockopt(zmq.SUBSCRIBE, DAEMON_TOPIC)
        assert sub.poll(3000)  # the first heartbeat: both subscriptions are in place
        subs[prefix] = sub
    job = c.submit(kind="generate", model="tiny", length_s=0.2)["id"]
    c.wait_for(job, {"result_ready"})
    stored = [e["seq"] for e in c.events_since(job, limit=1000)["events"]]
    for prefix, sub in subs.items():
        got: list[int] = []
        deadline = time.monotonic() + 3
        while stored[-1] not in got and time.monotonic() < deadline and sub.poll(300):  # (heartbeats too)
            topic, *frames = sub.recv_multipart()
            if topic != DAEMON_TOPIC:
                assert topic == (job_topic(job) if prefix == b"job." else prefix + job_topic(job))
                got.append(unpack(frames[1:]).content["seq"])
        assert got == stored, prefix  # each event once on each topic
        sub.close(0)
    c.close()
