"""``segue labels``: how a model reads a song's labels and a job's conditions, from its configs alone."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from model.prior import presets
from model.sampling.windows import plan_windows
from segue.cli import main
from tests.helpers.factories import SR, tiny_conditioned_model_dir, tiny_model_dir
from tests.helpers.midi_files import midi_bytes


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("labels")
    model = tiny_conditioned_model_dir(tmp / "model", top=presets.tiny_prior_merged())
    for weights in model.glob("prior_level_*.safetensors"):  # configs only: the priors' weights are never read
        weights.write_bytes(b"not weights")
    clip = tmp / "clip.mid"
    clip.write_bytes(midi_bytes([(0.0, 0.2, 60), (0.2, 0.4, 67)], drums=(0.0, 0.1, 0.2)))
    drums = tmp / "drums.wav"
    t = np.arange(SR // 2) / SR
    sf.write(drums, 0.5 * np.sin(2 * np.pi * 440 * t) * (t % 0.1 < 0.02), SR)  # clicks of A4 every 0.1 s
    return {"model": model, "clip": clip, "drums": drums, "tmp": tmp}


def _labels(files: dict[str, Path], capsys: pytest.CaptureFixture[str], *extra: str) -> dict:
    rc = main(["labels", "--model", str(files["model"]), *extra])
    out = capsys.readouterr()
    assert rc == 0, out.err
    return json.loads(out.out)


def test_labels_ids_lyrics_windows_and_features(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    report = _labels(files, capsys, "--level", "2", "--artist", "ada", "--genre", "jaz", "--lyrics", "hello world",
                     "--total-length", "2", "--offset", "0.5", "--length", "0.5",
                     "--midi", str(files["clip"]), "--midi-start", "0.1", "--stem", f"drums={files['drums']}@0.1",
                     "--stem", f"vocals={files['drums']}", "--bpm", "120")  # fmt: skip
    assert report["level"] == 2 and report["hop"] == 128
    artist, genre = report["artist"]["names"][0], report["genre"]["names"][0]
    assert artist["ids"] == [1] and artist["keys"][0]["known"]
    assert genre["ids"] == [0] and genre["keys"][0] == {"key": "jaz", "id": None, "known": False, "closest": ["jazz"]}
    assert any("'jaz' is not in the v2 genre list" in w for w in report["warnings"])
    assert report["lyrics"]["clean"] == "hello world" and report["labels"]["lyric_tokens"] > 0
    assert [c["name"] for c in report["conditioners"]["2"]] == ["midi", "grid", "drums"]
    assert report["conditions"]["unread"] == ["vocals"] and "no conditioner reads vocals" in report["conditions"]["notes"][0]
    assert report["conditions"]["read_by_levels"]["grid"] == [1, 2]

    tokens = round(0.5 * SR) // 128
    windows = plan_windows(tokens, report["n_ctx"], 0.125)
    assert [w["start_token"] for w in report["windows"]] == [w.start for w in windows]
    first = report["windows"][0]
    width = report["labels"]["width"]
    assert len(first["y"]) == width and first["y"][:4] == [2 * SR, SR // 2, report["n_ctx"] * 128, 1]
    assert first["y"][4] == 0  # the unknown genre became id 0
    assert set(first["lyrics"]["text"]) <= set("hello world") and first["lyrics"]["text"]
    # the clip's time 0 at project 0.1 s: the first window (0 .. 0.093 s) misses it, a later one has notes
    assert first["midi"]["coverage"] == 0 and first["midi"]["pitched_onsets"] == 0
    at_c4 = [w["midi"] for w in report["windows"] if w["project_start_s"] <= 0.1 < w["project_end_s"]]
    assert at_c4 and all(m["pitched_onsets"] >= 1 and m["pitch_range"][0] == 60 for m in at_c4)
    assert sum(w["midi"]["drum_hits"]["kick"] for w in report["windows"]) >= 3
    covered = [w["stems"]["drums"] for w in report["windows"] if w["stems"]["drums"]["coverage"] > 0]
    assert covered and all(s["mean_loudness_db"] is not None for s in covered)
    assert max(s["peak_loudness_db"] for s in covered) > -20 and any(s["onsets"] > 0 for s in covered)
    assert {s["dominant_pitch_class"] for s in covered if s["peak_loudness_db"] > -20} == {"A"}
    assert first["grid"]["bar_lines"] == 1 and first["grid"]["bpm"] == [120.0, 120.0]


def _read_png(path: Path) -> np.ndarray:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, dict[bytes, bytes]()
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n : pos + 12 + n])[0] == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        pos += 12 + n
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert depth == 8 and colour == 2
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), dtype=np.uint8).reshape(height, 1 + 3 * width)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(height, width, 3)


def test_plot_draws_one_panel_per_feature(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    out = files["tmp"] / "features.png"
    report = _labels(files, capsys, "--total-length", "2", "--level", "1", "--midi", str(files["clip"]),
                     "--stem", f"drums={files['drums']}", "--bpm", "90", "--plot", str(out))  # fmt: skip
    picture = _read_png(out)
    plot = report["plot"]
    assert picture.shape == (plot["height"], plot["width"], 3) and plot["width"] <= 2000
    names = [p["name"].split(":")[0] for p in plot["panels"]]
    assert names == ["window starts", "midi piano roll", "midi drum hits", "stem drums", "stem drums", "grid"]
    roll = plot["panels"][1]["rows"]
    band = picture[roll[0] : roll[1]]
    assert (band.max(axis=2) > 100).any()  # notes are drawn
    assert report["conditions"]["notes"] == ["midi is read at level(s) 2, not at level 1", "drums is read at level(s) 2, not at level 1"]


def test_a_model_without_labels_or_conditioners(tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    plain = tiny_model_dir(tmp_path / "plain")
    report = _labels({"model": plain}, capsys, "--total-length", "2", "--length", "0.1", "--midi", str(files["clip"]), "--bpm", "120")
    assert report["conditioners"] == {} and report["conditions"]["unread"] == ["midi", "grid"]
    assert "ignored" in report["conditions"]["notes"][1] and "refuses it (conditioners: none)" in report["conditions"]["notes"][0]


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        ([], "needs --total-length S"),
        (["--total-length", "2", "--level", "5"], "--level 5: "),
        (["--total-length", "2", "--midi", "{drums}"], "--midi: MIDI file '{drums}': is not a Standard MIDI File"),
        (["--total-length", "2", "--stem", "drums={tmp}/none.wav"], "--stem drums={tmp}/none.wav: no such file"),
        (["--total-length", "2", "--offset", "3"], "--offset 3.0 s must lie inside the song"),
        (["--total-length", "2", "--plot", "{tmp}/no/such/p.png"], "--plot {tmp}/no/such/p.png: folder"),
    ],
)
def test_errors_are_one_line(files: dict[str, Path], capsys: pytest.CaptureFixture[str], extra: list[str], words: str) -> None:
    names = {k: str(v) for k, v in files.items()}
    rc = main(["labels", "--model", str(files["model"]), *(e.format(**names) for e in extra)])
    err = capsys.readouterr().err
    assert rc == 2 and words.format(**names) in err and len(err.strip().splitlines()) == 1
