"""One end-to-end suite, run over every transport, against a real Server with the tone backend."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.engine.engine import EngineConfig
from bridge.server import Server
from model.codes import load_codes
from plugin_host.client import RemoteError, SegueClient
from plugin_host.osc_client import OscTransport
from tests.bridge.daemon_rig import TRANSPORTS, connect, rig_config, running_daemon
from tests.bridge.tone_backend import ToneBackend

pytestmark = [pytest.mark.timeout(60), pytest.mark.e2e]


@pytest.fixture
def roots(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    root.mkdir()
    t = np.arange(22050) / 22050
    sf.write(root / "take.wav", np.stack([np.sin(2 * np.pi * 220 * t)] * 2, axis=1) * 0.3, 22050)
    return root


@pytest.fixture
def daemon(tmp_path: Path, roots: Path) -> Iterator[Server]:
    backend = ToneBackend(token_s=0.004, tokens=(20, 10))
    with running_daemon(tmp_path / "state", rig_config(roots), backend) as server:
        yield server


@pytest.fixture(params=TRANSPORTS)
def client(request: pytest.FixtureRequest, daemon: Server) -> Iterator[SegueClient]:
    c = connect(daemon, request.param)
    c.hello()
    yield c
    c.close()


def _events_until(c: SegueClient, job_id: str, last: set[str], timeout: float = 10.0) -> list[dict]:
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        e = c.next_event(0.5)
        if e is not None and e["job_id"] == job_id:
            seen.append(e)
            if e["type"] in last:
                return seen
    raise AssertionError(f"no {last} for {job_id}; saw {[e['type'] for e in seen]}")


def test_hello_reports_versions_models_and_limits(client: SegueClient) -> None:
    hello = client.hello()
    assert hello["protocol_version"] == "1.4"
    assert {m["name"] for m in hello["models"]} == {"tiny", "other"}
    assert hello["limits"]["max_seconds"] == 30.0
    assert "continue" in hello["capabilities"]


def test_hello_with_other_major_version_is_refused(client: SegueClient) -> None:
    with pytest.raises(RemoteError) as err:
        client.hello(protocol_version="2.0")
    assert err.value.code == "version_mismatch"


def test_continue_region_gets_every_event_and_a_result(client: SegueClient, roots: Path) -> None:
    project = {"sample_rate": 32000, "region_start_s": 2.0, "region_end_s": 3.0, "tempo_map": [0.0, 120.0],
               "time_signature": [4, 4]}
    job = client.submit(kind="continue", model="tiny", length_bars=1, project=project,
                        region={"path": str(roots / "take.wav")}, candidates=2, seeds=[5, 6], artist="a")
    assert job["state"] in ("queued", "accepted")
    assert job["length_s"] == pytest.approx(2.0)  # one 4/4 bar at 120 bpm
    events = _events_until(client, job["id"], {"result_ready", "failed"})
    types = [e["type"] for e in events]
    assert types[0] == "accepted" and types[-1] == "result_ready", types
    assert {"progress", "preview_ready", "level_done"} <= set(types)
    progress = [e["data"] for e in events if e["type"] == "progress" and e["data"].get("stage") == "sample"]
    assert progress and all(p["tokens_total"] > 0 and p["level"] in (0, 1) for p in progress)
    results = events[-1]["data"]["results"]
    assert sorted(r["seed"] for r in results) == [5, 6]
    for r in results:
        assert r["sample_rate"] == 32000 and Path(r["path"]).is_file()
        assert sf.info(r["path"]).samplerate == 32000
    fetched, _ = client.fetch_result(job["id"])
    assert [r["path"] for r in fetched["results"]] == [r["path"] for r in results]


def test_status_at_any_time_and_list_jobs(client: SegueClient) -> None:
    job = client.submit(kind="generate", model="tiny", length_s=0.5)
    states = {client.status(job["id"])["state"]}
    _events_until(client, job["id"], {"result_ready"})
    final = client.status(job["id"])
    states.add(final["state"])
    assert final["state"] == "done" and final["results"]
    assert states <= {"accepted", "queued", "loading", "running", "done"}
    listed = {j["id"]: j for j in client.list_jobs(client="test")}
    assert listed[job["id"]]["state"] == "done"


def test_cancel_mid_job_takes_effect_within_200_ms(tmp_path: Path, roots: Path) -> None:
    backend = ToneBackend(token_s=0.01, tokens=(400, 100))
    with running_daemon(tmp_path / "slow", rig_config(roots), backend) as server:
        for transport in TRANSPORTS:
            c = connect(server, transport)
            c.hello()
            job = c.submit(kind="generate", model="tiny", length_s=1.0)
            _events_until(c, job["id"], {"progress"})
            t0 = time.monotonic()
            c.cancel(job["id"])
            _events_until(c, job["id"], {"cancelled"}, timeout=2.0)
            assert time.monotonic() - t0 < 0.2
            assert c.status(job["id"])["state"] == "cancelled"
            c.close()


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/etc/passwd", "path_not_allowed"),
        ("{root}/../escape.wav", "path_not_allowed"),
        ("{root}/link.wav", "path_not_allowed"),
        ("{root}/missing.wav", "not_found"),
        ("relative.wav", "path_not_allowed"),
        ("{root}", "path_not_allowed"),
    ],
)
def test_bad_paths_are_refused(client: SegueClient, roots: Path, path: str, code: str) -> None:
    outside = roots.parent / "escape.wav"
    outside.write_bytes(b"x")
    if not (roots / "link.wav").exists():
        os.symlink(outside, roots / "link.wav")
    with pytest.raises(RemoteError) as err:
        client.submit(kind="continue", model="tiny", length_s=1.0, region={"path": path.format(root=roots)})
    assert err.value.code == code


def test_request_errors_have_stable_codes(client: SegueClient) -> None:
    cases = [
        (("submit", {"kind": "generate", "model": "tiny", "length_s": 31.0}), "too_large"),
        (("submit", {"kind": "generate", "model": "tiny", "length_s": 1.0, "candidates": 5}), "too_large"),
        (("submit", {"kind": "generate", "model": "tiny"}), "bad_request"),
        (("submit", {"kind": "remix", "model": "tiny", "length_s": 1.0}), "bad_request"),
        (("submit", {"kind": "generate", "model": "nope", "length_s": 1.0}), "not_found"),
        (("submit", {"kind": "continue", "model": "tiny", "length_s": 1.0}), "bad_input"),
        (("status", {"job_id": "nope"}), "not_found"),
        (("fetch_result", {"job_id": "nope"}), "not_found"),
        (("dance", {}), "unknown_type"),
        (("status", {}), "bad_request"),
        (("status", {"job_id": "x", "extra": 1}), "bad_request"),
    ]
    for (msg_type, content), code in cases:
        with pytest.raises(RemoteError) as err:
            client.call(msg_type, content)
        assert err.value.code == code, (msg_type, content, err.value)
    assert client.hello()["protocol_version"]  # still serving


def test_models_load_with_a_loading_state(client: SegueClient) -> None:
    state = client.load_model("other")
    assert state["name"] == "other" and state["state"] in ("loading", "loaded")
    deadline = time.monotonic() + 5
    while {m["name"]: m["state"] for m in client.list_models()}["other"] != "loaded":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    client.unload_model("other")


def test_resubmit_a_job_cancelled_while_running(client: SegueClient) -> None:
    job = client.submit(kind="generate", model="tiny", length_s=0.5, seeds=[9])
    seen = _events_until(client, job["id"], {"level_done", "result_ready"})
    assert seen[-1]["type"] == "level_done"  # the top level is done, the bottom one runs
    client.cancel(job["id"])
    if _events_until(client, job["id"], {"cancelled", "result_ready"})[-1]["type"] == "cancelled":
        again = client.resubmit(job["id"])
        assert again["id"] == job["id"]
        done = _events_until(client, job["id"], {"result_ready"})[-1]
        assert done["data"]["results"][0]["seed"] == 9
    with pytest.raises(RemoteError) as err:
        client.resubmit(job["id"])  # done jobs cannot be resubmitted
    assert err.value.code == "bad_state"


def test_resubmit_a_job_cancelled_before_it_ran(client: SegueClient) -> None:
    job = client.submit(kind="generate", model="tiny", length_s=0.5, seeds=[4])
    client.cancel(job["id"])
    if _events_until(client, job["id"], {"cancelled", "result_ready"})[-1]["type"] == "cancelled":
        client.resubmit(job["id"])
        assert _events_until(client, job["id"], {"result_ready"})[-1]["data"]["results"][0]["seed"] == 4
    assert client.status(job["id"])["state"] == "done"


def test_full_queue_answers_busy(tmp_path: Path, roots: Path) -> None:
    gate = threading.Event()
    with running_daemon(tmp_path / "busy", rig_config(roots), ToneBackend(gate=gate),
                        EngineConfig(queue_limit=1)) as server:
        for transport in TRANSPORTS:
            c = connect(server, transport)
            c.hello()
            running = c.submit(kind="generate", model="tiny", length_s=0.2)["id"]
            deadline = time.monotonic() + 5
            while c.status(running)["state"] not in ("loading", "running"):  # held at the gate
                assert time.monotonic() < deadline
                time.sleep(0.01)
            waiting = c.submit(kind="generate", model="tiny", length_s=0.2)["id"]
            with pytest.raises(RemoteError) as err:
                c.submit(kind="generate", model="tiny", length_s=0.2)
            assert err.value.code == "busy" and "limit is 1" in err.value.message
            c.cancel(waiting)
            c.cancel(running)
            c.wait_for(running, {"cancelled"})
            c.close()


def test_shutdown_request_stops_the_daemon(tmp_path: Path, roots: Path) -> None:
    for transport in TRANSPORTS:
        with running_daemon(tmp_path / transport, rig_config(roots)) as server:
            c = connect(server, transport)
            c.hello()
            c.shutdown()
            assert server.wait(2.0)
            c.close()


@pytest.mark.parametrize("kind", ["encode", "prime", "upsample"])  # prime: the old name of encode
def test_encode_and_upsample_carry_their_inputs(client: SegueClient, roots: Path, kind: str) -> None:
    (roots / "take.codes.npz").write_bytes(b"PK\x03\x04 codes")
    inputs = {"region": {"path": str(roots / "take.wav")}} if kind != "upsample" else {
        "codes": {"path": str(roots / "take.codes.npz"), "format": "codes"}}
    job = client.submit(kind=kind, model="tiny", length_s=0.5, stems=[{"path": str(roots / "take.wav"), "label": "drums"}],
                        **inputs)
    assert job["kind"] == ("encode" if kind == "prime" else kind)
    done = _events_until(client, job["id"], {"result_ready", "failed"})[-1]
    assert done["type"] == "result_ready", done
    assert done["data"]["results"][0]["kind"] == ("audio" if kind == "upsample" else "codes")


def test_an_encode_result_is_a_codes_file_fetched_whole_and_usable_as_upsample_input(client: SegueClient, roots: Path) -> None:
    inline = not isinstance(client.transport, OscTransport)  # files travel as frames over ZeroMQ only
    job = client.submit(kind="encode", model="tiny", length_s=0.2, seeds=[4], region={"path": str(roots / "take.wav")})
    _events_until(client, job["id"], {"result_ready"})
    fetched, frames = client.fetch_result(job["id"], inline=inline)
    (result,) = fetched["results"]
    assert result["kind"] == "codes" and result["path"].endswith(".codes.npz") and result["seed"] == 4
    assert load_codes(result["path"]).codes[2].shape == (1, 12)  # tone_codes: 0.2 s at 8 kHz in 128-sample tokens
    assert frames == ((Path(result["path"]).read_bytes(),) if inline else ())
    up = client.submit(kind="upsample", model="tiny", length_s=0.2, codes={"path": result["path"], "format": "codes"})
    assert _events_until(client, up["id"], {"result_ready", "failed"})[-1]["type"] == "result_ready"


def test_output_format_defaults_to_the_project(client: SegueClient) -> None:
    project = {"sample_rate": 22050, "bit_depth": 16}
    job = client.submit(kind="generate", model="tiny", length_s=0.3, project=project)
    result = _events_until(client, job["id"], {"result_ready"})[-1]["data"]["results"][0]
    info = sf.info(result["path"])
    assert (info.samplerate, info.subtype) == (22050, "PCM_16")
    job = client.submit(kind="generate", model="tiny", length_s=0.3, project=project,
                        output={"sample_rate": 48000, "bit_depth": 24})
    result = _events_until(client, job["id"], {"result_ready"})[-1]["data"]["results"][0]
    info = sf.info(result["path"])
    assert (info.samplerate, info.subtype) == (48000, "PCM_24")


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_named_client_is_named_from_its_first_request(daemon: Server, transport: str) -> None:
    from plugin_host.client import InvalidRequest

    with connect(daemon, transport, name="drum-bus") as c:  # no explicit hello
        job = c.submit(kind="generate", model="tiny", length_s=0.2)
        assert c.status(job["id"])["client"] == "drum-bus"
        assert [j["id"] for j in c.list_jobs(client="drum-bus")] == [job["id"]]
        for bad in (float("nan"), float("inf")):
            with pytest.raises(InvalidRequest, match=rf"bad_request: length_s must be finite \(got {bad}\)"):
                c.submit(kind="generate", model="tiny", length_s=bad)
        with pytest.raises(InvalidRequest, match=r"project.tempo_map\[1\] must be finite"):
            c.submit(kind="generate", model="tiny", length_bars=1, project={"tempo_map": [0.0, float("nan")]})
        assert c.status(job["id"])["state"] in ("queued", "loading", "running", "done")  # still talking


def test_waiting_for_one_job_keeps_the_other_jobs_events(client: SegueClient) -> None:
    first = client.submit(kind="generate", model="tiny", length_s=0.2)
    second = client.submit(kind="generate", model="tiny", length_s=0.2)
    client.wait_for(second["id"], {"result_ready"})  # the first job ran and ended meanwhile
    assert client.wait_for(first["id"], {"accepted"}, timeout=1.0)["job_id"] == first["id"]
    assert client.wait_for(first["id"], {"result_ready"}, timeout=1.0)["type"] == "result_ready"
    assert client.dropped_events == 0


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_client_receives_only_its_own_jobs_events(daemon: Server, transport: str) -> None:
    with connect(daemon, transport, name="a") as a, connect(daemon, transport, name="b") as b:
        a.hello()
        b.hello()
        mine = b.submit(kind="generate", model="tiny", length_s=0.2)["id"]
        theirs = a.submit(kind="generate", model="tiny", length_s=0.2)["id"]
        b.wait_for(mine, {"result_ready"})
        a.wait_for(theirs, {"result_ready"})  # every event of a's job is out now
        for c, own in ((b, mine), (a, theirs)):
            stray = []
            while (event := c.next_event(0.3)) is not None:
                stray.append(event)
            assert {e["job_id"] for e in stray} <= {own}, [(e["job_id"], e["type"]) for e in stray]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_client_can_follow_another_clients_job(daemon: Server, transport: str) -> None:
    with connect(daemon, transport, name="a") as a, connect(daemon, transport, name="b") as b:
        job = a.submit(kind="generate", model="tiny", length_s=0.3)["id"]
        a.wait_for(job, {"progress"})
        events = list(b.job_events(job, timeout=10.0))  # stored ones first, then live (ZeroMQ) or polled (OSC)
        types = [e["type"] for e in events]
        assert types[0] == "accepted" and types[-1] == "result_ready", types
        seqs = [e["seq"] for e in events]
        assert seqs == sorted(set(seqs))  # each event once, in order


def test_events_since_lets_a_late_client_catch_up(client: SegueClient) -> None:
    job = client.submit(kind="generate", model="tiny", length_s=0.2)["id"]
    live = list(client.job_events(job))
    page = client.events_since(job, limit=2)
    assert page["job_id"] == job and len(page["events"]) == 2 and page["more"] is True
    assert page["next_after"] == page["events"][-1]["seq"]
    rest = client.events_since(job, after=page["next_after"], limit=1000)
    assert rest["more"] is False
    stored = page["events"] + rest["events"]
    assert [(e["seq"], e["type"]) for e in stored] == [(e["seq"], e["type"]) for e in live]
    assert stored[-1]["data"]["results"][0]["path"] == live[-1]["data"]["results"][0]["path"]
    assert client.events_since(job, after=stored[-1]["seq"])["events"] == []
    with pytest.raises(RemoteError) as err:
        client.events_since("nope")
    assert err.value.code == "not_found"
