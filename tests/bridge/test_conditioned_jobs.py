"""MIDI, stems and guidance through the daemon: a real ModelBackend on a tiny conditioned model directory."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import mido
import numpy as np
import pytest
import soundfile as sf

from bridge.backend.conditions import job_conditions, job_guidance, midi_start_s, take_start_s, tempo_of
from bridge.backend.models import ModelBackend, ModelBackendConfig
from bridge.engine.engine import EngineConfig, JobEngine
from bridge.jobs import TERMINAL, AudioInput, JobKind, JobSpec, JobState, Length, ProjectContext, TempoChange
from bridge.server import Server
from bridge.state.journal import Journal
from bridge.state.store import RenderStore
from common.errors import InputError
from model.conditioners.config import ConditionerConfig
from model.sampling.params import Guidance
from plugin_host.client import RemoteError, SegueClient
from tests.bridge.daemon_rig import TRANSPORTS, connect, rig_config
from tests.bridge.model_rig import write_region
from tests.bridge.tone_backend import wait_until
from tests.helpers.factories import tiny_conditioned_model_dir, tiny_model_dir

pytestmark = [pytest.mark.timeout(90), pytest.mark.e2e]
PROJECT = {"sample_rate": 44100, "region_start_s": 1.0, "region_end_s": 1.2, "tempo_map": [0.0, 120.0],
           "time_signature": [4, 4]}  # fmt: skip


def midi_bytes(notes: int = 4) -> bytes:
    """A type-0 clip at 120 bpm: ``notes`` eighth notes from time 0, and a kick on each."""
    track = mido.MidiTrack()
    for i in range(notes):
        track += [mido.Message("note_on", note=60 + i % 12, velocity=100, time=0),
                  mido.Message("note_on", channel=9, note=36, velocity=110, time=0),
                  mido.Message("note_off", note=60 + i % 12, velocity=0, time=240),
                  mido.Message("note_off", channel=9, note=36, velocity=0, time=0)]  # fmt: skip
    f = mido.MidiFile(type=0, ticks_per_beat=480)
    f.tracks.append(track)
    out = io.BytesIO()
    f.save(file=out)
    return out.getvalue()


def drums_wav(path: Path, rate: int = 22050, seconds: float = 0.6) -> Path:
    """A stereo click track at its own rate (not the model's)."""
    t = np.arange(int(rate * seconds)) / rate
    clicks = (np.sin(2 * np.pi * 80 * t) * np.exp(-30 * (t % 0.25))).astype(np.float32) * 0.5
    sf.write(path, np.stack([clicks, 0.8 * clicks], axis=1), rate, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("music")
    tiny_conditioned_model_dir(root / "models" / "cond", trained=True)  # random conditioners: conditions change takes
    tiny_model_dir(root / "models" / "tiny")
    write_region(root / "region.wav", 4410, 22050)
    (root / "clip.mid").write_bytes(midi_bytes())
    drums_wav(root / "kit.wav")
    (root / "corrupt.mid").write_bytes(b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x01\x00\x90<")
    nan = np.zeros((4410, 1), np.float32)
    nan[100:103] = np.nan
    sf.write(root / "nan.wav", nan, 22050, subtype="FLOAT")
    (root / "notes.wav").write_text("these are my notes, not audio\n")
    return root


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, music: Path) -> Iterator[Server]:
    state = tmp_path_factory.mktemp("state")
    backend = ModelBackend(music / "models", ModelBackendConfig(precision="fp32"))
    engine = JobEngine(backend, Journal(state / "journal.sqlite3"), RenderStore(state / "store"), EngineConfig())
    server = Server(rig_config(music), engine)
    server.startup()
    yield server
    server.shutdown(3.0)


def _submit(c: SegueClient, buffers: tuple[bytes, ...] = (), **fields: object) -> dict:
    base: dict = {"kind": "continue", "model": "cond", "length_s": 0.05, "project": PROJECT, "artist": "ada",
                  "genre": "jazz", "seeds": [3]}  # fmt: skip
    return c.submit(buffers, **{**base, **fields})


def _done(c: SegueClient, job_id: str) -> dict:
    return c.wait_for(job_id, {"result_ready", "failed", "cancelled", "interrupted"}, timeout=60.0)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_job_with_midi_a_drums_stem_and_guidance_finishes(daemon: Server, music: Path, transport: str) -> None:
    c = connect(daemon, transport)
    try:
        caps = {m["name"]: m["capabilities"] for m in c.hello()["models"]}
        assert caps["cond"]["stems"] == ["drums"] and {"midi", "grid", "stems"} <= set(caps["cond"]["conditioners"])
        job = _submit(c, region={"path": str(music / "region.wav")}, midi={"path": str(music / "clip.mid")},
                      midi_start_bar=1, midi_start_beat=3,  # 1.0 s at 120 bpm: the region's start
                      stems=[{"path": str(music / "kit.wav"), "label": "drums", "start_s": 0.9}],
                      guidance=[0.0, 0.0, 1.5], condition_guidance=["midi=2"])  # fmt: skip
        done = _done(c, job["id"])
        assert done["type"] == "result_ready", done
        (result,) = done["data"]["results"]
        assert result["frames"] == round(0.05 * 44100) and Path(result["path"]).is_file()
    finally:
        c.close()


def test_midi_and_stems_as_binary_frames(daemon: Server, music: Path) -> None:
    c = connect(daemon, "zmq")
    try:
        c.hello()
        job = _submit(c, (midi_bytes(2), (music / "kit.wav").read_bytes()), kind="generate",
                      midi={"buffer": 0}, midi_start_s=1.2, stems=[{"buffer": 1, "label": "drums", "format": "wav"}],
                      condition_guidance=["drums@2=1", "grid=0.5"])  # fmt: skip
        done = _done(c, job["id"])
        assert done["type"] == "result_ready", done
    finally:
        c.close()


@pytest.mark.parametrize(
    "model,fields,words",
    [
        ("tiny", {"midi": "clip.mid"}, "model 'tiny' has no MIDI conditioner"),
        ("tiny", {"stems": [{"path": "kit.wav", "label": "drums"}]}, "model 'tiny' has no stem conditioners"),
        ("tiny", {"guidance": [0.0, 0.0, 2.0]}, "model 'tiny' has no conditioners to guide"),
        ("tiny", {"condition_guidance": ["midi=2"]}, "model 'tiny' has no conditioner 'midi'"),
        ("cond", {"stems": [{"path": "kit.wav", "label": "bass"}]}, "model 'cond' has no conditioner for stem 'bass'"),
        ("cond", {"condition_guidance": ["vocals=1"]}, "model 'cond' has no conditioner 'vocals' (its conditioners: drums, grid, midi)"),
        ("cond", {"condition_guidance": ["midi is loud"]}, "is not NAME=SCALE or NAME@LEVEL=SCALE"),
        ("cond", {"midi_start_s": 1.0}, "the job sends no 'midi'"),
    ],
)
def test_what_the_model_lacks_is_bad_input_naming_it(daemon: Server, music: Path, model: str, fields: dict,
                                                     words: str) -> None:  # fmt: skip
    c = connect(daemon, "zmq")
    try:
        c.hello()
        files = {k: ({"path": str(music / v)} if k == "midi" else [{**s, "path": str(music / s["path"])} for s in v])
                 for k, v in fields.items() if k in ("midi", "stems")}  # fmt: skip
        with pytest.raises(RemoteError, match="bad_input: .*" + _escape(words)):
            _submit(c, model=model, region={"path": str(music / "region.wav")}, **{**fields, **files})
    finally:
        c.close()


def _escape(words: str) -> str:
    import re

    return re.escape(words)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_bad_midi_and_stems_fail_the_job_naming_the_file_and_the_daemon_goes_on(
    daemon: Server, music: Path, transport: str
) -> None:
    c = connect(daemon, transport)
    region = {"path": str(music / "region.wav")}
    try:
        c.hello()
        cases: list[tuple[dict, str, list[str]]] = [
            ({"midi": {"path": str(music / "corrupt.mid")}}, "bad_input", ["MIDI file 'corrupt.mid'"]),
            ({"stems": [{"path": str(music / "nan.wav"), "label": "drums"}]}, "bad_audio",
             ["stem 'drums' (nan.wav)", "3 NaN or infinite"]),
            ({"stems": [{"path": str(music / "notes.wav"), "label": "drums"}]}, "bad_audio",
             ["stem 'drums' (notes.wav)", "not a readable audio file"]),
        ]  # fmt: skip
        for fields, code, words in cases:
            failed = _done(c, _submit(c, region=region, **fields)["id"])
            assert failed["type"] == "failed" and failed["data"]["code"] == code, failed
            message = failed["data"]["message"]
            assert all(w in message for w in words) and "/inputs/" not in message, message
        good = _done(c, _submit(c, region=region, midi={"path": str(music / "clip.mid")})["id"])
        assert good["type"] == "result_ready", good
    finally:
        c.close()


def test_bad_bytes_over_zeromq_are_named_as_sent_bytes(daemon: Server, music: Path) -> None:
    c = connect(daemon, "zmq")
    try:
        c.hello()
        region = {"path": str(music / "region.wav")}
        failed = _done(c, _submit(c, (b"not midi at all",), region=region, midi={"buffer": 0})["id"])
        assert failed["data"]["code"] == "bad_input" and "MIDI file 'sent as bytes'" in failed["data"]["message"]
        failed = _done(c, _submit(c, (midi_bytes(10_001),), region=region, midi={"buffer": 0})["id"])  # 20,002 notes
        assert failed["data"]["code"] == "bad_input" and "more than 20,000 notes" in failed["data"]["message"]
        failed = _done(c, _submit(c, (b"RIFF....WAVE",), region=region, stems=[{"buffer": 0, "label": "drums"}])["id"])
        assert failed["data"]["code"] == "bad_audio" and "stem 'drums' (sent as bytes)" in failed["data"]["message"]
        with pytest.raises(RemoteError, match=r"too_large: stems\[0\].start_s = 1000000.0 is outside -86400..86400"):
            _submit(c, region=region, stems=[{"path": str(music / "kit.wav"), "label": "drums", "start_s": 1e6}])
    finally:
        c.close()


# --- the journal -------------------------------------------------------------------------------------


def _spec(music: Path, **kw: object) -> JobSpec:
    base: dict = dict(
        kind=JobKind.CONTINUE, model="cond", length=Length(seconds=0.05), seeds=(4,), artist="ada", genre="jazz",
        project=ProjectContext(sample_rate=44100, region_start_s=1.0, region_end_s=1.2),
        region=AudioInput(path=str(music / "region.wav")),
    )  # fmt: skip
    return JobSpec(**{**base, **kw})


def _conditioned(music: Path) -> dict:
    return dict(midi=AudioInput(data=midi_bytes(), format="mid"), midi_start_s=1.1,
                stems=(AudioInput(path=str(music / "kit.wav"), label="drums", start_s=0.5),),
                condition_guidance=("drums=1.5",), guidance=(0.0, 0.0, 1.0))  # fmt: skip


def test_the_new_fields_survive_the_journal_and_old_rows_load(music: Path) -> None:
    spec = _spec(music, **_conditioned(music))
    again = JobSpec.from_dict(spec.to_dict())
    assert again == spec and again.stems[0].start_s == 0.5 and again.condition_guidance == ("drums=1.5",)
    old = spec.to_dict()
    for key in ("midi_start_s", "midi_start_bar", "midi_start_beat", "condition_guidance"):
        del old[key]
    del old["stems"][0]["start_s"]
    loaded = JobSpec.from_dict(old)
    assert loaded.midi_start_s is None and loaded.condition_guidance == () and loaded.stems[0].start_s is None


def _finish(engine: JobEngine, job_id: str) -> JobState:
    wait_until(lambda: engine.status(job_id).state in TERMINAL, 60.0)
    return engine.status(job_id).state


def test_a_journalled_job_resubmits_after_a_restart_with_its_conditions(tmp_path: Path, music: Path) -> None:
    def engine() -> JobEngine:
        backend = ModelBackend(music / "models", ModelBackendConfig(precision="fp32"))
        return JobEngine(backend, Journal(tmp_path / "journal.sqlite3"), RenderStore(tmp_path / "store"), EngineConfig())

    first = engine()
    job = first.submit(_spec(music, **_conditioned(music)))
    first.shutdown(3.0)  # waiting or loading: interrupted, as after a crash
    assert first.status(job.id).state is JobState.INTERRUPTED

    second = engine()
    try:
        record = second.journal.job(job.id)
        assert record is not None
        kept = record.spec
        assert kept.midi is not None and kept.midi.path is not None and Path(kept.midi.path).is_file()
        assert kept.midi_start_s == 1.1 and kept.stems[0].start_s == 0.5 and kept.condition_guidance == ("drums=1.5",)
        second.resubmit(job.id)
        assert _finish(second, job.id) is JobState.DONE, second.status(job.id).error_message
        same = second.submit(_spec(music, **_conditioned(music)))
        plain = second.submit(_spec(music))
        assert _finish(second, same.id) is JobState.DONE and _finish(second, plain.id) is JobState.DONE

        def audio(job_id: str) -> np.ndarray:
            return sf.read(second.status(job_id).results[0].path)[0]

        np.testing.assert_array_equal(audio(job.id), audio(same.id))  # the resubmitted job had its conditions
        assert not np.array_equal(audio(job.id), audio(plain.id))  # and they change the take
    finally:
        second.shutdown(3.0)


# --- placement and guidance, without a model ---------------------------------------------------------


CONFIGS = {
    2: (ConditionerConfig("midi", "midi", 402, 32, 2), ConditionerConfig("grid", "grid", 6, 32, 2),
        ConditionerConfig("drums", "stem", 14, 32, 2)),
    1: (ConditionerConfig("grid", "grid", 6, 32, 1),),
}  # fmt: skip


def test_placement_in_project_time(music: Path) -> None:
    project = ProjectContext(region_start_s=2.0, region_end_s=None, tempo_map=(TempoChange(0.0, 120.0),),
                             time_signature=(3, 4))  # fmt: skip
    midi = AudioInput(path=str(music / "clip.mid"))
    spec = _spec(music, project=project, midi=midi, midi_start_bar=2, midi_start_beat=2)
    assert midi_start_s(spec, tempo_of(spec)) == pytest.approx(2.0)  # bar 2 of 3/4 at 120 bpm: 1.5 s, +1 beat
    assert midi_start_s(_spec(music, project=project, midi=midi), tempo_of(spec)) == 2.0  # default: the region's start
    assert take_start_s(spec, 0.25) == 2.25  # continue without region_end_s: after the region
    assert take_start_s(_spec(music, kind=JobKind.GENERATE, region=None, project=project), None) == 2.0
    stems = (AudioInput(path=str(music / "kit.wav"), label="drums"),)
    conditions = job_conditions(_spec(music, project=project, midi=midi, stems=stems), CONFIGS, region_seconds=0.25,
                                max_stem_s=600.0)  # fmt: skip
    assert conditions.names == ("midi", "drums", "grid") and conditions.stems[0].start_s == 2.0
    assert conditions.stems[0].sample_rate == 22050 and conditions.stems[0].samples.shape[1] == 2  # its own rate, channels
    assert job_conditions(_spec(music), {}, region_seconds=0.2, max_stem_s=600.0).tempo is None  # no grid conditioner


def test_guidance_per_level_and_per_condition(music: Path) -> None:
    midi = AudioInput(path=str(music / "clip.mid"))
    stems = (AudioInput(path=str(music / "kit.wav"), label="drums"),)
    spec = _spec(music, midi=midi, stems=stems, guidance=(0.0, 0.5, 1.5), condition_guidance=("midi=2", "drums@2=3"))
    conditions = job_conditions(spec, CONFIGS, region_seconds=0.2, max_stem_s=600.0)
    got = {(g.condition, g.level): g.scale for g in job_guidance(spec, conditions, CONFIGS)}
    assert got == {("midi", 2): 2.0, ("drums", 2): 3.0, ("grid", 2): 1.5, ("grid", 1): 0.5}
    assert all(isinstance(g, Guidance) and g.level is not None for g in job_guidance(spec, conditions, CONFIGS))
    for text, words in (("midi@1=2", "no conditioner of level 1 reads 'midi' (levels that do: 2)"),
                        ("bass=1", "has no conditioner 'bass'")):  # fmt: skip
        bad = _spec(music, midi=midi, condition_guidance=(text,))
        with pytest.raises(InputError, match=_escape(words)):
            job_guidance(bad, job_conditions(bad, CONFIGS, region_seconds=0.2, max_stem_s=600.0), CONFIGS)
    no_stem = _spec(music, midi=midi, condition_guidance=("drums=1",))
    with pytest.raises(InputError, match="the job sends no 'drums' condition"):
        job_guidance(no_stem, job_conditions(no_stem, CONFIGS, region_seconds=0.2, max_stem_s=600.0), CONFIGS)


def test_a_long_stem_is_refused_before_it_is_decoded(tmp_path: Path, music: Path) -> None:
    long = tmp_path / "long.wav"
    sf.write(long, np.zeros((8000 * 30, 1), np.float32), 8000, subtype="PCM_16")
    spec = _spec(music, stems=(AudioInput(path=str(long), label="drums"),))
    with pytest.raises(InputError, match=r"stem 'drums' \(long.wav\) is 30.0 s long; this daemon reads stems of at most 10 s"):
        job_conditions(spec, CONFIGS, region_seconds=0.2, max_stem_s=10.0)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_results_carry_adherence_and_come_best_first(daemon: Server, music: Path, transport: str) -> None:
    c = connect(daemon, transport)
    try:
        c.hello()
        job = _submit(c, kind="generate", length_s=0.6, candidates=3, seeds=[1, 2, 3], order_by="loudness_corr:drums",
                      midi={"path": str(music / "clip.mid")}, midi_start_s=1.2,
                      stems=[{"path": str(music / "kit.wav"), "label": "drums", "start_s": 1.2}])  # fmt: skip
        done = _done(c, job["id"])
        assert done["type"] == "result_ready", done
        results = sorted(done["data"]["results"], key=lambda r: r["candidate"])
        assert len(results) == 3 and all(r["adherence"]["drum_reference"] == "stem:drums" for r in results)
        values = [r["adherence"]["loudness_corr"]["drums"] for r in results]
        assert all(v is not None for v in values) and values == sorted(values, reverse=True)
        assert sorted(r["seed"] for r in results) == [1, 2, 3]  # each seed stays with its take
        for bad, message in (({"order_by": "mean"}, "send 'midi' or 'stems'"),
                             ({"order_by": "loudest", "midi": {"path": str(music / "clip.mid")}}, "not an adherence metric")):  # fmt: skip
            with pytest.raises(RemoteError, match=message) as err:
                _submit(c, kind="generate", **bad)
            assert err.value.code == "bad_input"
    finally:
        c.close()
