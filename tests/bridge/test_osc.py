"""OSC specifics: liblo's oscsend/oscdump as an independent client, the 1,400-byte limit, split replies,
malformed datagrams answered, source filtering."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pythonosc.osc_message_builder import OscMessageBuilder

from bridge.protocol import osc_wire
from bridge.protocol.schema import OSC_MAX_MESSAGE
from bridge.server import Server
from plugin_host.client import SegueClient
from plugin_host.osc_client import OscTransport
from tests.bridge.daemon_rig import connect, rig_config, running_daemon
from tests.bridge.tone_backend import ToneBackend

pytestmark = [pytest.mark.timeout(60), pytest.mark.e2e]
LIBLO = shutil.which("oscsend") is not None and shutil.which("oscdump") is not None


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Server]:
    with running_daemon(tmp_path / "state", rig_config(tmp_path), ToneBackend()) as server:
        yield server


def _osc_port(server: Server) -> int:
    assert server.osc is not None and server.osc.address is not None
    return server.osc.address[1]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not LIBLO, reason="liblo-tools (oscsend, oscdump) not installed: apt-get install liblo-tools")
def test_liblo_oscsend_and_oscdump_talk_to_the_daemon(daemon: Server) -> None:
    port = _free_udp_port()
    dump = subprocess.Popen(["oscdump", "-L", str(port)], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)  # let oscdump bind
        target = ["127.0.0.1", str(_osc_port(daemon))]
        subprocess.run(["oscsend", *target, "/segue/hello", "ssssssi", "r1", "protocol_version", "1.0",
                        "client", "liblo", "reply_port", str(port)], check=True, timeout=5)
        subprocess.run(["oscsend", *target, "/segue/submit", "ssssssssfsi", "r2", "kind", "generate", "model",
                        "tiny", "artist", "x", "length_s", "0.5", "reply_port", str(port)], check=True, timeout=5)
        subprocess.run(["oscsend", *target, "/segue/dance", "ssi", "r3", "reply_port", str(port)], check=True, timeout=5)
        lines: list[str] = []
        deadline = time.monotonic() + 10
        assert dump.stdout is not None
        while time.monotonic() < deadline and not any('"result_ready"' in line for line in lines):
            lines.append(dump.stdout.readline())
        text = "".join(lines)
        assert '/segue/reply' in text and '"r1" "hello" "ok"' in text, text
        assert '"r2" "submit" "ok"' in text, text
        assert '"r3" "dance" "error"' in text and '"unknown_type"' in text, text
        assert '/segue/event' in text and '"result_ready"' in text, text
    finally:
        dump.terminate()
        dump.wait(5)


def test_every_datagram_fits_and_long_replies_are_split(daemon: Server) -> None:
    c = connect(daemon, "osc")
    c.hello()
    ids = [c.submit(kind="generate", model="tiny", length_s=0.2, artist="a" * 150, genre="g" * 150)["id"]
           for _ in range(12)]
    for job_id in ids:
        c.wait_for(job_id, {"result_ready"})
    jobs = c.list_jobs()  # 12 jobs with paths: several datagrams
    assert sorted(j["id"] for j in jobs) == sorted(ids)
    assert all(j["results"][0]["path"].endswith(".wav") for j in jobs)
    content = {"jobs": jobs}
    datagrams = osc_wire.reply_datagrams("r", "list_jobs", "ok", content)
    assert len(datagrams) > 1 and all(len(d) <= OSC_MAX_MESSAGE and len(d) % 4 == 0 for d in datagrams)
    c.close()


def test_malformed_datagrams_are_answered(daemon: Server) -> None:
    t = OscTransport("127.0.0.1", _osc_port(daemon))
    b = OscMessageBuilder("/segue/status")
    b.add_arg("r9")
    b.add_arg("job_id")  # key without value
    cases = [b"garbage", b"/segue/hello\0\0\0\0", b.build().dgram, b"#bundle\0" + b"\0" * 8]
    for raw in cases:
        t.send_raw(raw)
        req_id, _, status, content = t.receive_reply(2.0)
        assert status == "error" and content["code"] == "bad_request", (raw, content)
    assert req_id == ""
    t.close()


def test_registered_reply_host_must_be_the_sender(daemon: Server) -> None:
    c = SegueClient.over_osc("127.0.0.1", _osc_port(daemon))
    reply = c.transport.request("hello", {"protocol_version": "1.0", "reply_host": "10.1.2.3"})
    assert reply.status == "error" and reply.content["code"] == "not_allowed"
    c.close()


def test_open_osc_ignores_unlisted_senders(tmp_path: Path) -> None:
    config = rig_config(tmp_path, osc_host="0.0.0.0", osc_allowed_sources=("192.0.2.7",))
    with running_daemon(tmp_path / "s", config) as server:
        assert server.osc is not None
        assert server.osc._allowed("192.0.2.7") and server.osc._allowed("127.0.0.1")
        assert not server.osc._allowed("198.51.100.1")


def test_replies_sent_to_the_daemon_do_not_loop(daemon: Server) -> None:
    port = _osc_port(daemon)
    c = SegueClient.over_osc("127.0.0.1", port)
    reply = c.transport.request("hello", {"protocol_version": "1.0", "reply_port": port})
    assert reply.status == "error" and reply.content["code"] == "not_allowed"
    c.transport.send_raw(osc_wire.request_datagram("list_models", "r", {"reply_port": port}))  # mails itself
    c.transport.send_raw(osc_wire.reply_datagrams("r", "status", "ok", {})[0])  # a stray reply
    with pytest.raises(TimeoutError):
        c.transport.receive_reply(0.3)  # neither is answered...
    assert c.transport.request("list_models", {}).status == "ok"  # ...and the daemon keeps serving
    c.close()


def test_a_client_registered_for_all_events_gets_every_jobs_events(daemon: Server) -> None:
    with SegueClient.over_osc("127.0.0.1", _osc_port(daemon), all_jobs=True) as monitor, \
            connect(daemon, "osc", name="worker") as worker:
        monitor.hello()
        monitor.catch_up_s = None  # live events only
        job = worker.submit(kind="generate", model="tiny", length_s=0.2)["id"]
        seen: list[str] = []
        deadline = time.monotonic() + 5
        while "result_ready" not in seen and time.monotonic() < deadline:
            event = monitor.next_event(0.2)
            if event is not None and event["job_id"] == job:
                seen.append(event["type"])
        assert seen[0] == "accepted" and seen[-1] == "result_ready", seen
