"""``segue sample --midi/--stem/--bpm/--guidance``: the files read into job conditions placed in project time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conditioning.midi import read_midi
from conditioning.tempo import TempoMap
from model import tasks
from model.codes import load_codes
from model.sampling.loading import load_sampling_model
from model.sampling.params import SamplingParams
from model.tasks.conditions import JobConditions
from model.tasks.song import Labelling, Song
from segue.cli import main
from tests.helpers.factories import SR, tiny_conditioned_model_dir, tiny_model_dir
from tests.helpers.midi_files import midi_bytes

ARGS = ["--precision", "fp32", "--step", "eager", "--artist", "ada", "--genre", "jazz", "--total-length", "2"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("conditions")
    model = tiny_conditioned_model_dir(tmp / "model", trained=True)
    clip = tmp / "clip.mid"
    clip.write_bytes(midi_bytes([(0.0, 0.05, 60), (0.05, 0.1, 64)], drums=(0.0, 0.05)))
    drums = tmp / "drums.wav"
    sf.write(drums, 0.3 * np.random.default_rng(0).standard_normal((SR // 4, 2)), SR)
    region = tmp / "riff.wav"
    sf.write(region, 0.3 * np.sin(np.arange(1024) / 5.0), SR)
    return {"model": model, "clip": clip, "drums": drums, "region": region, "tmp": tmp}


def _sample(files: dict[str, Path], out: str, *extra: str) -> dict:
    rc = main(["sample", "--model", str(files["model"]), "--length", "0.02", "--lowest-level", "2", *ARGS, *extra,
               "-o", str(files["tmp"] / out)])  # fmt: skip
    assert rc == 0
    return json.loads((files["tmp"] / out / "run.json").read_text())


def _top(files: dict[str, Path], out: str) -> np.ndarray:
    return load_codes(files["tmp"] / out / "codes.npz").codes[2]


def test_continue_with_midi_by_bar_and_stem_is_the_tasks_own_run(files: dict[str, Path]) -> None:
    extra = ["--mode", "continue", "--region", str(files["region"]), "--region-start", "2",
             "--midi", str(files["clip"]), "--midi-bar", "3", "--midi-beat", "1", "--bpm", "120",
             "--stem", f"drums={files['drums']}@2.0232", "--guidance", "midi=2"]  # fmt: skip
    run = _sample(files, "by_bar", *extra)
    take = 2 + 1024 / SR  # the region starts at project time 2 s; the take at its end
    assert run["conditions"]["take_start_s"] == pytest.approx(take)
    assert run["conditions"]["midi"]["start_s"] == 4.0  # bar 3 beat 1 at 120 bpm in 4/4
    assert run["conditions"]["stems"][0] == {"name": "drums", "file": str(files["drums"]), "start_s": 2.0232, "sample_rate": SR}
    # the same run through the Python API, with the conditions built by hand
    model = load_sampling_model(files["model"], step="eager")
    region = sf.read(files["region"], dtype="float32", always_2d=True)[0]
    drums, rate = sf.read(files["drums"], dtype="float32", always_2d=True)
    from model.sampling.params import Guidance
    from model.tasks.conditions import StemCondition

    conditions = JobConditions(take_start_s=take, midi=read_midi(files["clip"].read_bytes(), "clip"), midi_start_s=4.0,
                               stems=(StemCondition("drums", drums, rate, 2.0232),), tempo=TempoMap([(0.0, 120.0)]))  # fmt: skip
    params = SamplingParams(precision="fp32", guidance=(Guidance("midi", 2.0, 2),))
    result = tasks.continue_region(model, region, round(0.02 * SR), Song("ada", "jazz", total_length=2 * SR), params,
                                   Labelling(files["model"] / "ids"), lowest_level=2, conditions=conditions)  # fmt: skip
    assert np.array_equal(_top(files, "by_bar"), result.sample.codes[2].cpu().numpy())
    # the clip placed by seconds at the same time: the same codes; without the conditions: others
    by_seconds = extra[:8] + ["--midi-start", "4"] + extra[12:]
    _sample(files, "by_seconds", *by_seconds)
    assert np.array_equal(_top(files, "by_seconds"), _top(files, "by_bar"))
    _sample(files, "plain", "--mode", "continue", "--region", str(files["region"]))
    assert not np.array_equal(_top(files, "plain"), _top(files, "by_bar"))


def test_generate_midi_starts_at_the_region_start_by_default(files: dict[str, Path]) -> None:
    run = _sample(files, "gen", "--midi", str(files["clip"]), "--region-start", "7")
    assert run["conditions"]["midi"]["start_s"] == 7.0 and run["conditions"]["take_start_s"] == 7.0
    assert run["conditions"]["tempo_map"] is None
    _sample(files, "gen0", "--midi", str(files["clip"]))  # with no grid only the clip's place in the take counts
    assert np.array_equal(_top(files, "gen"), _top(files, "gen0"))
    _sample(files, "late", "--midi", str(files["clip"]), "--region-start", "7", "--midi-start", "7.03")
    assert not np.array_equal(_top(files, "late"), _top(files, "gen"))


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--stem", "vocals={drums}"], "this model has no conditioner for vocals (its conditioners: drums, grid, midi)"),
        (["--midi", "{drums}"], "--midi: MIDI file '{drums}': is not a Standard MIDI File"),
        (["--midi", "{tmp}/none.mid"], "--midi {tmp}/none.mid: no such file"),
        (["--stem", "drums={clip}"], "--stem drums={clip}: not an audio file"),
        (["--midi", "{clip}", "--midi-bar", "2"], "--midi-bar needs the project's tempo"),
        (["--midi-start", "1"], "place a --midi FILE"),
        (["--time-signature", "6/8"], "--time-signature needs the project's tempo"),
        (["--bpm", "5"], "--bpm/--time-signature: "),
        (["--guidance", "drums=2", "--midi", "{clip}"], "--guidance drums=2: this run gives no drums condition (it gives: midi)"),
        (["--stem", "drums={drums}", "--stem", "drums={drums}"], "drums given more than once"),
    ],
)
def test_bad_conditions_are_one_line_errors_before_sampling(
    files: dict[str, Path], capsys: pytest.CaptureFixture[str], extra: list[str], words: str
) -> None:
    names = {k: str(v) for k, v in files.items()}
    args = [e.format(**names) for e in extra]
    rc = main(["sample", "--model", str(files["model"]), "--length", "0.02", *ARGS, *args, "-o", str(files["tmp"] / "bad")])
    err = capsys.readouterr().err
    assert rc == 2 and words.format(**names) in err and len(err.strip().splitlines()) == 1
    assert not (files["tmp"] / "bad").exists()


def test_a_model_without_conditioners_names_none(tmp_path: Path, files: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    plain = tiny_model_dir(tmp_path / "plain")
    rc = main(["sample", "--model", str(plain), "--length", "0.02", *ARGS, "--midi", str(files["clip"]), "-o", str(tmp_path / "o")])
    assert rc == 2 and "no conditioner for midi (its conditioners: none)" in capsys.readouterr().err


def test_repeated_artists_are_a_weighted_blend(files: dict[str, Path]) -> None:
    run = _sample(files, "blend", "--artist", "bo=0.25")  # after ARGS' --artist ada
    assert run["labels"]["artist"] == "ada=1; bo=0.25"
    others = [a for a in ARGS if a not in ("--artist", "ada")]
    rc = main(["sample", "--model", str(files["model"]), "--length", "0.02", "--lowest-level", "2", *others,
               "--artist", "ada=0.8; bo=0.2", "-o", str(files["tmp"] / "written")])  # fmt: skip
    assert rc == 0
    assert np.array_equal(_top(files, "blend"), _top(files, "written"))  # the same blend, written out
    _sample(files, "single")
    assert not np.array_equal(_top(files, "blend"), _top(files, "single"))


def test_takes_are_written_best_first_with_their_adherence(files: dict[str, Path]) -> None:
    stem = ["--stem", f"drums={files['drums']}", "--midi", str(files["clip"]), "--candidates", "3"]
    longer = ["--length", "0.5"]  # scoring needs 0.37 s
    plain = _sample(files, "unordered", *stem, *longer)
    ordered = _sample(files, "ordered", *stem, *longer, "--order-by", "drum_onset_f1")
    assert len(plain["adherence"]) == 3 and ordered["order_by"] == "drum_onset_f1"
    f1 = [a["drum_onset_f1"] for a in ordered["adherence"]]
    assert f1 == sorted(f1, reverse=True) and sorted(f1) == sorted(a["drum_onset_f1"] for a in plain["adherence"])
    by_seed = dict(zip(plain["result"]["seeds"], plain["adherence"]))  # each take keeps its seed and numbers
    assert sorted(ordered["result"]["seeds"]) == sorted(by_seed)
    assert all(by_seed[s] == a for s, a in zip(ordered["result"]["seeds"], ordered["adherence"]))
    rc = main(["sample", "--model", str(files["model"]), "--length", "0.02", *ARGS, "--order-by", "mean",
               "-o", str(files["tmp"] / "nothing")])  # fmt: skip
    assert rc == 2
