"""``synth_dataset``: a seeded, resumable, atomically written set of rendered pieces."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from common.errors import InputError
from model.data import render as R
from model.data import synth as S
from tests.helpers.tiny_pieces import TINY_STYLES, require_render_tools, tiny_compose

SECONDS = (2.0, 3.0)
HOURS = 7.0 / 3600  # three pieces of 2-3 s


@pytest.fixture(autouse=True)
def _tools() -> None:
    require_render_tools()


def make(out: Path, seed: int = 1, hours: float = HOURS, **kw: object) -> S.SynthReport:
    args: dict[str, object] = {"jobs": 1, "piece_seconds": SECONDS, "composer": tiny_compose, "styles": TINY_STYLES}
    args.update(kw)
    return S.synth_dataset(out, hours, seed, **args)  # type: ignore[arg-type]


def files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}


def test_the_plan_is_seeded_and_reaches_the_hours() -> None:
    a = S.plan(0.1, 7, ("x", "y", "z"))
    assert a == S.plan(0.1, 7, ("x", "y", "z"))
    assert a != S.plan(0.1, 8, ("x", "y", "z"))
    total = sum(p.seconds for p in a)
    assert 360.0 <= total < 360.0 + 20.0
    assert all(20.0 <= p.seconds <= 60.0 for p in a)
    assert [p.seed for p in a[:3]] == [7 * 100003, 7 * 100003 + 1, 7 * 100003 + 2]
    assert [p.style for p in a[:4]] == ["y", "z", "x", "y"]  # round-robin from seed % 3
    assert [p.id for p in a[:2]] == ["000000", "000001"]


def test_a_set_on_disk(tmp_path: Path) -> None:
    out = tmp_path / "set"
    report = make(out)
    index = json.loads((out / "index.json").read_text())
    assert index["complete"] and index["planned_pieces"] == report.pieces == report.rendered == 3
    assert index["seconds"] == pytest.approx(sum(p["seconds"] for p in index["pieces"]))
    assert index["seconds"] >= 7.0
    for entry in index["pieces"]:
        d = out / entry["path"]
        meta = json.loads((d / "meta.json").read_text())
        assert meta["sample_rate"] == 22050 and meta["channels"] == 1
        mix, rate = sf.read(d / "mix.wav", dtype="float32")
        assert rate == 22050 and mix.shape == (round(meta["seconds"] * 22050),)
        stems = [sf.read(d / f, dtype="float32")[0] for f in meta["files"]["stems"].values()]
        assert np.array_equal(np.sum(stems, axis=0, dtype=np.float32), mix)  # the files add up, too
        assert sorted(p.name for p in (d / "stems").iterdir()) == sorted(f"{g}.wav" for g in entry["stems"])
        assert (d / "piece.mid").stat().st_size > 0
        for key in ("artist", "genre", "bpm", "time_signature", "tempo_map", "key", "sections", "lyrics",
                    "words", "seconds", "seed", "style", "soundfont", "segue_version", "mix_gain"):  # fmt: skip
            assert key in meta, key
        assert meta["soundfont"]["licence"].startswith("MIT")
        if meta["style"] == "drums":
            assert entry["stems"] == ["drums"] and meta["stem_groups_absent"] == ["bass", "keys", "strings", "leads", "vocals"]
        else:
            assert entry["stems"] == ["drums", "bass", "keys", "vocals"]
            assert [w["text"] for w in meta["words"]] == meta["lyrics"].split()
    assert sorted(p.name for p in (out / "pieces").iterdir()) == ["000000", "000001", "000002"]


def test_same_seed_same_set_other_seed_other_set(tmp_path: Path) -> None:
    make(tmp_path / "a")
    make(tmp_path / "b")
    make(tmp_path / "c", seed=2)
    a, b, c = (files(tmp_path / x / "pieces") for x in "abc")
    midi_meta = [k for k in a if k.endswith(("piece.mid", "meta.json"))]
    assert midi_meta and all(a[k] == b[k] for k in midi_meta)
    assert a == b  # the audio too, with this FluidSynth and espeak-ng build
    assert a["000000/piece.mid"] != c["000000/piece.mid"]


def test_two_jobs_make_the_same_set_as_one(tmp_path: Path) -> None:
    make(tmp_path / "one", jobs=1)
    make(tmp_path / "two", jobs=2)  # a spawned pool of two processes
    assert files(tmp_path / "one" / "pieces") == files(tmp_path / "two" / "pieces")


def test_rerunning_skips_finished_pieces(tmp_path: Path) -> None:
    out = tmp_path / "set"
    make(out)
    before = {p: p.stat().st_mtime_ns for p in (out / "pieces").rglob("*")}
    again = make(out)
    assert (again.rendered, again.skipped) == (0, 3)
    assert {p: p.stat().st_mtime_ns for p in (out / "pieces").rglob("*")} == before


def test_a_failed_run_lists_only_complete_pieces_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "set"
    real = R.render
    calls = []

    def flaky(comp, **kw):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("power cut")
        return real(comp, **kw)

    monkeypatch.setattr(R, "render", flaky)
    with pytest.raises(RuntimeError, match="power cut"):
        make(out)
    index = json.loads((out / "index.json").read_text())
    assert [p["id"] for p in index["pieces"]] == ["000000"] and not index["complete"]
    assert sorted(p.name for p in (out / "pieces").iterdir()) == ["000000"]  # the failed piece left nothing
    (out / "pieces" / ".partial-000002-dead").mkdir()  # as a killed process leaves it
    (out / "pieces" / ".partial-000002-dead" / "mix.wav").write_bytes(b"half")
    first = (out / "pieces" / "000000" / "mix.wav").stat().st_mtime_ns
    monkeypatch.setattr(R, "render", real)
    report = make(out)
    assert (report.rendered, report.skipped) == (2, 1)
    assert (out / "pieces" / "000000" / "mix.wav").stat().st_mtime_ns == first
    assert sorted(p.name for p in (out / "pieces").iterdir()) == ["000000", "000001", "000002"]
    assert json.loads((out / "index.json").read_text())["complete"]


def test_other_arguments_on_an_existing_set_are_refused_naming_the_difference(tmp_path: Path) -> None:
    out = tmp_path / "set"
    make(out, hours=2.0 / 3600)
    with pytest.raises(InputError, match=r"--seed 1 \(now 2\)"):
        make(out, seed=2, hours=2.0 / 3600)
    with pytest.raises(InputError, match=r"--sample-rate 22050 \(now 16000\)"):
        make(out, sample_rate=16000, hours=2.0 / 3600)
    with pytest.raises(InputError, match=r"--hours 0.000555556 \(now 0.001\)"):
        make(out, hours=3.6 / 3600)
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="not a segue data synth folder"):
        make(other)


@pytest.mark.parametrize("hours", [0.0, -1.0, float("nan"), float("inf"), 1000.5])
def test_hours_must_be_finite_and_in_range(tmp_path: Path, hours: float) -> None:
    with pytest.raises(InputError, match="--hours"):
        make(tmp_path / "set", hours=hours)
    assert not (tmp_path / "set").exists()


def test_other_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="--jobs 0"):
        make(tmp_path / "s", jobs=0)
    with pytest.raises(InputError, match="--sample-rate 10"):
        make(tmp_path / "s", sample_rate=10)
    with pytest.raises(InputError, match="--piece-seconds 5 2"):
        make(tmp_path / "s", piece_seconds=(5.0, 2.0))
    with pytest.raises(InputError, match="nope.sf2 does not exist"):
        make(tmp_path / "s", soundfont=tmp_path / "nope.sf2")
