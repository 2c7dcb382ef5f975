"""Render store: takes, sidecars, manifests, listing from disk, and atomicity under SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from bridge.engine.backend import Candidate
from bridge.jobs import AudioInput, OutputFormat
from bridge.state.store import RenderStore
from model.atomic import TEMP_PREFIX
from tests.bridge.tone_backend import spec, tone

ROOT = Path(__file__).resolve().parents[2]


def test_take_is_resampled_aligned_and_described(tmp_path: Path) -> None:
    store = RenderStore(tmp_path)
    job = spec(seconds=1.0, sample_rate=48000, candidates=2)
    take = Candidate(1, 1234, tone(1234, 1.0, 22050), 22050)
    result = store.write_take("abc", job, take)
    assert Path(result.path) == tmp_path.resolve() / "renders" / "abc" / "candidate-1.wav"
    data, rate = sf.read(result.path, dtype="float32")
    assert rate == 48000 and data.shape == (48000, 2) and result.frames == 48000
    side = json.loads((tmp_path / "renders" / "abc" / "candidate-1.json").read_text())
    assert side["project_position_s"] == 8.0 and side["project_position_samples"] == 384000
    assert (side["seed"], side["candidate"], side["bit_depth"], side["model"]) == (1234, 1, 24, "tiny")
    assert side["params"]["project"]["region_end_s"] == 8.0
    assert store.finished("abc") is None and store.list_results() == []  # no manifest yet
    other = store.write_take("abc", job, Candidate(0, 5, tone(5, 1.0, 22050), 22050))
    store.finish("abc", job, (other, result))
    listed = store.list_results()
    assert [j.job_id for j in listed] == ["abc"] and listed[0].results == (other, result)
    Path(other.path).unlink()  # a manifest whose files are gone is not a finished job
    assert store.finished("abc") is None
    store.clear("abc")
    assert not (tmp_path / "renders" / "abc").exists()


def test_float_and_flac_outputs(tmp_path: Path) -> None:
    store = RenderStore(tmp_path)
    floats = replace(spec(sample_rate=44100), output=OutputFormat(bit_depth=32))
    r = store.write_take("f", floats, Candidate(0, 1, tone(1, 0.5, 44100) * 3.0, 44100))
    assert sf.info(r.path).subtype == "FLOAT" and np.abs(sf.read(r.path)[0]).max() > 1.0  # not clipped
    flac = replace(spec(), output=OutputFormat(bit_depth=32, container="flac"))
    r = store.write_take("g", flac, Candidate(0, 1, tone(1, 0.5, 44100), 44100))
    assert r.path.endswith(".flac") and sf.info(r.path).subtype == "PCM_24"


def test_spooled_inputs_become_paths(tmp_path: Path) -> None:
    store = RenderStore(tmp_path)
    item = store.spool_input("job", 0, AudioInput(data=b"RIFFxxxx", format="wav"))
    assert item.data is None and Path(item.path or "").read_bytes() == b"RIFFxxxx"
    assert item.path == str(tmp_path.resolve() / "inputs" / "job" / "input-0.wav")
    path_input = AudioInput(path="/somewhere/a.wav")
    assert store.spool_input("job", 1, path_input) is path_input
    with pytest.raises(ValueError):
        store.job_dir("../escape")


WRITER = """
import sys
from bridge.engine.backend import Candidate
from bridge.state.store import RenderStore
from tests.bridge.tone_backend import spec, tone
store = RenderStore(sys.argv[1])
job = spec(seconds=20.0, sample_rate=48000)
audio = tone(3, 20.0, 48000)
for i in range(10**6):
    store.write_take("big", job, Candidate(i % 3, 3, audio, 48000))
    print("wrote", flush=True)
"""


def test_no_partial_file_is_visible_after_sigkill(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    saw_temp = False
    for attempt in range(5):
        root = tmp_path / f"run{attempt}"
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root)], env=env, cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "wrote"
        time.sleep(0.05 + 0.05 * attempt)
        assert proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        directory = root / "renders" / "big"
        temps = list(directory.glob(f"{TEMP_PREFIX}*"))
        saw_temp = saw_temp or bool(temps)
        for wav in directory.glob("candidate-*.wav"):
            data, rate = sf.read(wav, dtype="float32")  # raises on a truncated file
            assert (data.shape, rate) == ((20 * 48000, 2), 48000)
        for side in directory.glob("candidate-*.json"):
            meta = json.loads(side.read_text())  # raises on a half-written sidecar
            assert (directory / meta["file"]).is_file()
        removed = RenderStore(root).remove_temp_files()
        assert sorted(removed) == sorted(temps)
        assert not list(root.rglob(f"{TEMP_PREFIX}*"))
        if saw_temp and attempt >= 1:
            break
    assert saw_temp, "the writer was never caught mid-write; the test proved nothing"
