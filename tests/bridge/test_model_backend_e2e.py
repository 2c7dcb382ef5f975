"""ModelBackend behind a real JobEngine, the ZeroMQ and OSC front ends, and ``segue serve --models``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import soundfile as sf

from bridge.backend.models import ModelBackend, ModelBackendConfig
from bridge.engine.engine import EngineConfig, JobEngine
from bridge.jobs import TERMINAL, EventType, JobEvent, JobState
from bridge.server import Server
from bridge.state.journal import Journal
from bridge.state.store import RenderStore
from model.codes import load_codes
from plugin_host.client import RemoteError, SegueClient
from tests.bridge.daemon_rig import TRANSPORTS, connect, rig_config
from tests.bridge.model_rig import job, make_models, write_region
from tests.bridge.tone_backend import wait_until

pytestmark = [pytest.mark.timeout(60), pytest.mark.e2e]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("music")
    make_models(root / "models")
    write_region(root / "region.wav", 4410, 22050)  # 0.2 s at 22.05 kHz: read at the model's 44.1 kHz
    return root


@pytest.fixture
def engine(tmp_path: Path, music: Path) -> Iterator[tuple[JobEngine, list[JobEvent]]]:
    backend = ModelBackend(music / "models", ModelBackendConfig(precision="fp32"))
    e = JobEngine(backend, Journal(tmp_path / "journal.sqlite3"), RenderStore(tmp_path / "store"), EngineConfig())
    events: list[JobEvent] = []
    e.subscribe(events.append)
    yield e, events
    e.shutdown(3.0)


def _finish(engine: JobEngine, job_id: str) -> JobState:
    wait_until(lambda: engine.status(job_id).state in TERMINAL, 30.0)
    engine._hub.flush()
    return engine.status(job_id).state


def test_engine_renders_a_continuation_at_the_project_rate(engine: tuple[JobEngine, list[JobEvent]], music: Path) -> None:
    e, events = engine
    info = e.submit(job(region=music / "region.wav", seconds=0.05, candidates=2, seeds=(5, 6)))
    assert _finish(e, info.id) is JobState.DONE, e.status(info.id).error_message
    mine = [ev for ev in events if ev.job_id == info.id]
    types = [ev.type for ev in mine]
    assert types.index(EventType.PREVIEW_READY) < types.index(EventType.RESULT_READY)
    assert [ev.data["level"] for ev in mine if ev.type is EventType.LEVEL_DONE] == [2, 1, 0]
    results = e.status(info.id).results
    assert [(r.seed, r.level, r.sample_rate, r.frames) for r in results] == [(5, 0, 48000, 2400), (6, 0, 48000, 2400)]
    assert sf.info(results[0].path).samplerate == 48000


def test_engine_reports_bad_input_and_stays_up(engine: tuple[JobEngine, list[JobEvent]], music: Path) -> None:
    e, _ = engine
    bad = e.submit(job(region=music / "region.wav", artist="nobody at all"))
    assert _finish(e, bad.id) is JobState.FAILED
    failed = e.status(bad.id)
    assert failed.error_code == "bad_input" and "nobody at all" in (failed.error_message or "")
    good = e.submit(job("generate", seconds=0.02))
    assert _finish(e, good.id) is JobState.DONE


@pytest.mark.parametrize(
    "kw,words",
    [
        ({"midi": "region.wav"}, "model 'tiny' has no MIDI conditioner"),
        ({"stems": ("region.wav",)}, "model 'tiny' has no stem conditioners"),
        ({"guidance": (1.0,)}, "model 'tiny' has no conditioners to guide"),
        ({"model": "codec"}, "model 'codec' cannot run 'continue' jobs (it has no top-level prior (level 2))"),
        ({"seconds": 25.0}, "too long for model 'tiny': use less than 20 s"),
    ],
)
def test_what_a_model_cannot_do_is_refused_at_submit_without_loading_it(
    engine: tuple[JobEngine, list[JobEvent]], music: Path, kw: dict, words: str
) -> None:
    from bridge.jobs import AudioInput
    from common.errors import InputError

    e, _ = engine
    files = {k: (AudioInput(path=str(music / v)) if k == "midi" else tuple(AudioInput(path=str(music / f)) for f in v))
             for k, v in kw.items() if k in ("midi", "stems")}  # fmt: skip
    rest = {k: v for k, v in kw.items() if k not in files}
    with pytest.raises(InputError, match=re.escape(words)):
        e.submit(job(region=music / "region.wav", **{**rest, **files}))
    assert e.backend.loaded() == [] and e.list_jobs() == []  # refused at once: nothing loaded, no job kept


def test_models_report_their_capabilities(engine: tuple[JobEngine, list[JobEvent]]) -> None:
    e, _ = engine
    caps = {m.name: m.capabilities for m in e.models()}
    assert caps["tiny"] is not None and caps["tiny"]["kinds"] == ["generate", "continue", "extend", "upsample", "encode"]
    assert caps["tiny"]["levels"] == [0, 1, 2] and caps["tiny"]["lowest_level"] == 0 and caps["tiny"]["max_seconds"] == 20.0
    assert caps["tiny"]["conditioners"] == ["artist", "genre", "timing"] and caps["tiny"]["lyrics"] is False
    assert caps["sketch"]["kinds"] == ["generate", "continue", "extend", "encode"] and caps["sketch"]["lowest_level"] == 2  # type: ignore[index]
    assert caps["codec"] == {**caps["codec"], "kinds": ["encode"], "levels": [], "lowest_level": None}  # type: ignore[dict-item]
    assert caps["plain"]["conditioners"] == [] and caps["plain"]["lowest_level"] == 1  # type: ignore[index]


def test_engine_cancel_frees_the_worker_within_200_ms(engine: tuple[JobEngine, list[JobEvent]], music: Path) -> None:
    e, events = engine
    info = e.submit(job(region=music / "region.wav", seconds=1.0))
    wait_until(lambda: any(ev.job_id == info.id and ev.type is EventType.LEVEL_DONE for ev in events), 20.0)
    t0 = time.monotonic()
    e.cancel(info.id)
    wait_until(lambda: e.status(info.id).state is JobState.CANCELLED, 1.0)
    assert time.monotonic() - t0 < 0.2


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, music: Path) -> Iterator[Server]:
    state = tmp_path_factory.mktemp("state")
    backend = ModelBackend(music / "models", ModelBackendConfig(precision="fp32"))
    engine = JobEngine(backend, Journal(state / "journal.sqlite3"), RenderStore(state / "store"), EngineConfig())
    server = Server(rig_config(music), engine)
    server.startup()
    yield server
    server.shutdown(3.0)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_continue_over_each_transport(daemon: Server, music: Path, transport: str) -> None:
    c = connect(daemon, transport)
    try:
        assert {m["name"] for m in c.hello()["models"]} == {"codec", "plain", "sketch", "tiny"}
        project = {"sample_rate": 44100, "region_start_s": 0.0, "region_end_s": 0.2, "tempo_map": [0.0, 240.0],
                   "time_signature": [1, 16]}  # fmt: skip
        submitted = c.submit(kind="continue", model="tiny", length_bars=1, project=project, artist="bo", genre="pop",
                             region={"path": str(music / "region.wav")}, seeds=[9])  # fmt: skip
        assert submitted["length_s"] == pytest.approx(0.0625)  # one 1/16 bar at 240 bpm
        done = c.wait_for(submitted["id"], {"result_ready", "failed"}, timeout=30.0)
        assert done["type"] == "result_ready", done
        (result,) = done["data"]["results"]
        assert result["seed"] == 9 and result["frames"] == round(0.0625 * 44100) and Path(result["path"]).is_file()
        # the model backend's errors reach the client as they are
        bad = c.submit(kind="continue", model="tiny", length_s=0.05, artist="nobody at all",
                       region={"path": str(music / "region.wav")})  # fmt: skip
        failed = c.wait_for(bad["id"], {"failed", "result_ready"}, timeout=30.0)
        assert failed["type"] == "failed" and failed["data"]["code"] == "bad_input", failed
        assert "nobody at all" in failed["data"]["message"]
        # what a model cannot do is refused at submit, before anything loads
        with pytest.raises(RemoteError, match="bad_input: model 'codec' cannot run 'continue' jobs"):
            c.submit(kind="continue", model="codec", length_s=0.05, region={"path": str(music / "region.wav")})
        caps = {m["name"]: m["capabilities"] for m in c.hello()["models"]}
        assert caps["codec"]["kinds"] == ["encode"] and caps["tiny"]["lowest_level"] == 0
    finally:
        c.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_encode_gives_a_codes_file_that_an_upsample_job_renders(daemon: Server, music: Path, transport: str) -> None:
    c = connect(daemon, transport)
    try:
        assert {"encode", "extend"} <= set(c.hello()["capabilities"])  # (over OSC, hello also registers for events)
        project = {"sample_rate": 44100, "region_start_s": 0.0, "region_end_s": 0.2}
        primed = c.submit(kind="encode", model="tiny", length_s=0.2, project=project,
                          region={"path": str(music / "region.wav")})  # fmt: skip
        kinds = [e["type"] for e in _events(c, primed["id"])]
        assert kinds[-1] == "result_ready" and "progress" in kinds and "level_done" not in kinds, kinds
        fetched, frames = c.fetch_result(primed["id"], inline=transport == "zmq")
        (result,) = fetched["results"]
        assert result["kind"] == "codes" and result["path"].endswith("candidate-0.codes.npz")
        assert (result["sample_rate"], result["frames"]) == (44100, 8820)  # 0.2 s read at the model's rate
        if transport == "zmq":  # the file itself, as a binary frame
            assert frames == (Path(result["path"]).read_bytes(),)
        codes = load_codes(result["path"])
        assert [c.shape for c in codes.codes] == [(1, 1102), (1, 275), (1, 68)]  # 8820 // 8, // 32, // 128

        up = c.submit(kind="upsample", model="tiny", length_s=1.0, project=project, seeds=[3],
                      codes={"path": result["path"], "format": "codes"})  # the daemon's own result is an allowed input
        done = c.wait_for(up["id"], {"result_ready", "failed"}, timeout=30.0)
        assert done["type"] == "result_ready", done
        (audio,) = done["data"]["results"]
        assert audio["kind"] == "audio" and audio["frames"] == 68 * 128 and sf.info(audio["path"]).frames == 68 * 128
    finally:
        c.close()


def _events(c: SegueClient, job_id: str) -> list[dict]:
    seen: list[dict] = []
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        event = c.next_event(0.5)
        if event is not None and event["job_id"] == job_id:
            seen.append(event)
            if event["type"] in TERMINAL_EVENTS:
                return seen
    raise AssertionError(f"job {job_id} did not finish; saw {[e['type'] for e in seen]}")


TERMINAL_EVENTS = {"result_ready", "failed", "cancelled", "interrupted"}


def test_segue_serve_models_runs_the_model_backend(tmp_path: Path, music: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "segue", "serve", "--models", str(music / "models"), "--state-dir",
           str(tmp_path / "state"), "--root", str(music), "--request-port", "0", "--control-port", "0",
           "--events-port", "0", "--no-osc"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        addresses: dict[str, str] = {}
        while "Ctrl-C" not in "".join(addresses):
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            name, _, value = line.strip().partition(" ")
            addresses[name] = value.strip()
        c = SegueClient.over_zmq(addresses["zmq_request"], addresses["zmq_control"], addresses["zmq_events"])
        assert {m["name"] for m in c.hello()["models"]} == {"codec", "plain", "sketch", "tiny"}
        submitted = c.submit(kind="generate", model="sketch", length_s=0.05, seeds=[1])
        done = c.wait_for(submitted["id"], {"result_ready", "failed"}, timeout=30.0)
        assert done["type"] == "result_ready" and done["data"]["results"][0]["level"] == 2, done
        c.close()
    finally:
        proc.terminate()
        proc.wait(10)
