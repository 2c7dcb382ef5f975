"""``segue eval adherence``: take files scored against MIDI and stems, and a model run on pieces with its
shuffled-conditions baseline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from segue.cli import main
from tests.helpers.factories import SR, tiny_conditioned_model_dir
from tests.helpers.midi_files import midi_bytes

HITS = tuple(0.25 * i for i in range(8))  # a kick every quarter second for two seconds


def _clicks(times: tuple[float, ...], seconds: float = 2.0) -> np.ndarray:
    out = np.zeros(int(seconds * SR), np.float32)
    burst = (np.exp(-np.arange(400) / 60.0) * np.sin(np.arange(400) / 3.0)).astype(np.float32)
    for t in times:
        i = int(t * SR)
        out[i : i + 400] += burst[: len(out) - i]
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("adherence")
    (tmp / "beat.mid").write_bytes(midi_bytes([(0.0, 0.5, 60), (0.5, 1.0, 64)], drums=HITS))
    sf.write(tmp / "on.wav", _clicks(HITS), SR)
    sf.write(tmp / "late.wav", _clicks(tuple(t + 0.12 for t in HITS)), SR)
    sf.write(tmp / "kit.wav", _clicks(HITS), SR)
    return {"tmp": tmp}


def test_take_files_are_scored_and_ranked(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    tmp = files["tmp"]
    out = tmp / "report.json"
    rc = main(["eval", "adherence", str(tmp / "late.wav"), str(tmp / "on.wav"), "--midi", str(tmp / "beat.mid"),
               "--order-by", "drum_onset_f1", "-o", str(out)])  # fmt: skip
    assert rc == 0
    report = json.loads(out.read_text())
    late, on = report["takes"]
    assert on["drum_onset_f1"] > 0.9 and late["drum_onset_f1"] < 0.2 and on["drum_reference"] == "midi"
    assert report["order"] == [str(tmp / "on.wav"), str(tmp / "late.wav")]
    assert json.loads(capsys.readouterr().out) == report
    # a drums stem is the reference when given; placed 0.12 s later, the late take follows it
    rc = main(["eval", "adherence", str(tmp / "late.wav"), str(tmp / "on.wav"), "--stem", f"drums={tmp / 'kit.wav'}@0.12",
               "-o", str(out)])  # fmt: skip
    late, on = json.loads(out.read_text())["takes"]
    assert rc == 0 and late["drum_reference"] == "stem:drums" and late["drum_onset_f1"] > on["drum_onset_f1"]


def test_a_model_runs_on_pieces_with_a_shuffled_baseline(files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    tmp = files["tmp"]
    model = tiny_conditioned_model_dir(tmp / "model", trained=True)
    pieces = {"pieces": [
        {"name": "a", "midi": "beat.mid", "stems": [{"name": "drums", "path": "kit.wav"}], "bpm": 120, "artist": "ada", "genre": "jazz"},
        {"name": "b", "region": "on.wav", "region_start_s": 2, "midi": "beat.mid", "midi_start_s": 4,
         "stems": [{"name": "drums", "path": "late.wav", "start_s": 4}], "artist": "bo", "genre": "pop"},
    ]}  # fmt: skip
    (tmp / "pieces.json").write_text(json.dumps(pieces))
    out = tmp / "model_report.json"
    rc = main(["eval", "adherence", "--model", str(model), "--pieces", str(tmp / "pieces.json"), "--baseline", "shuffled",
               "--length", "0.5", "--lowest-level", "2", "--precision", "fp32", "--step", "eager", "-o", str(out)])  # fmt: skip
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["pieces"] == ["a", "b"] and len(report["matched"]) == 2
    assert report["baseline"]["permutation"] == [1, 0] and report["chance"]["permutation"] == [1, 0]
    assert report["baseline"]["matched"] == report["matched"] == report["chance"]["matched"]
    assert "drums" in report["matched"][0]["loudness_corr"] and "mean" in report["baseline"]["summary"]
    printed = capsys.readouterr().out
    assert "| metric | matched | model with shuffled conditions |" in printed


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--baseline", "shuffled", "x.wav", "--midi", "beat.mid"], "--baseline needs --model and --pieces"),
        (["x.wav"], "give --midi and/or --stem"),
        ([], "give take files to score"),
        (["--model", "m"], "--model and --pieces go together"),
        (["on.wav", "--midi", "beat.mid", "--order-by", "loudest"], "cannot order candidates by 'loudest'"),
    ],
)
def test_bad_requests_are_one_line_errors(files: dict[str, Path], capsys: pytest.CaptureFixture[str], extra: list[str],
                                          message: str) -> None:  # fmt: skip
    tmp = files["tmp"]
    args = [str(tmp / a) if a.endswith((".wav", ".mid")) else a for a in extra]
    assert main(["eval", "adherence", *args]) == 2
    assert message in capsys.readouterr().err
