import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from model.codes import load_codes
from model.prior import presets
from segue.cli import main
from tests.helpers.factories import tiny_model_dir

ARGS = ["--precision", "fp32", "--artist", "ada", "--genre", "jazz", "--total-length", "2"]


def test_generate_then_extend_then_upsample(tmp_path: Path) -> None:
    model = tiny_model_dir(tmp_path / "model", top=presets.tiny_prior_merged())
    out = tmp_path / "a"
    rc = main(["sample", "--model", str(model), "--length", "0.05", "--candidates", "2", "--seed", "5",
               "--lyrics", "la la la", *ARGS, "-o", str(out)])  # fmt: skip
    assert rc == 0
    run = json.loads((out / "run.json").read_text())
    assert run["mode"] == "generate" and run["result"]["seeds"] == [5, 6] and run["length"]["samples"] == 2205
    assert run["take"] == {"start": 0, "frames": 2205, "level": 0} and run["result"]["sample_length"] == 2304
    for lv in range(3):
        data, sr = sf.read(out / f"level_{lv}" / "item_1.wav")
        assert sr == 44100 and data.shape[0] == 2205  # the take, exactly 0.05 s, from every level
    codes = load_codes(out / "codes.npz")
    assert [c.shape for c in codes.codes] == [(2, 288), (2, 72), (2, 18)]  # whole top tokens covering the take
    align = json.loads((out / "alignment_item_0.json").read_text())
    assert [w["word"] for w in align["words"]] == ["la", "la", "la"]

    # the same run again gives the same codes
    rc = main(["sample", "--model", str(model), "--length", "0.05", "--candidates", "2", "--seed", "5",
               "--lyrics", "la la la", *ARGS, "--no-align", "-o", str(tmp_path / "b")])  # fmt: skip
    assert rc == 0
    assert all(np.array_equal(x, y) for x, y in zip(codes.codes, load_codes(tmp_path / "b" / "codes.npz").codes))

    rc = main(["sample", "--model", str(model), "--mode", "extend", "--codes", str(out / "codes.npz"),
               "--length", "0.02", "--candidates", "2", *ARGS, "-o", str(tmp_path / "c")])  # fmt: skip
    assert rc == 0
    longer = load_codes(tmp_path / "c" / "codes.npz")
    assert np.array_equal(longer.codes[2][:, :18], codes.codes[2])  # the saved codes are kept
    run = json.loads((tmp_path / "c" / "run.json").read_text())
    assert run["take"]["start"] == 18 * 128 and run["take"]["frames"] == 882  # the take starts where the codes end

    rc = main(["sample", "--model", str(model), "--mode", "upsample", "--codes", str(out / "codes.npz"),
               "--candidates", "2", *ARGS, "-o", str(tmp_path / "d")])  # fmt: skip
    assert rc == 0
    assert not (tmp_path / "d" / "level_2").exists() and (tmp_path / "d" / "level_0" / "item_0.wav").exists()
    data, _ = sf.read(tmp_path / "d" / "level_0" / "item_0.wav")
    assert data.shape[0] == 18 * 128  # all the codes cover


def test_continue_a_region_the_take_starts_at_its_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_model_dir(tmp_path / "model")
    region = tmp_path / "riff.wav"
    sf.write(region, 0.3 * np.sin(np.arange(3000) / 5.0), 44100)
    rc = main(["sample", "--model", str(model), "--mode", "continue", "--region", str(region), "--region-end", "0.02",
               "--length", "0.05", *ARGS, "-o", str(tmp_path / "p")])  # fmt: skip
    assert rc == 0
    run = json.loads((tmp_path / "p" / "run.json").read_text())
    context, tail = 6 * 128, 882 - 6 * 128  # the first 0.02 s (882 samples): 6 whole top tokens + 114 samples
    assert run["mode"] == "continue" and run["take"] == {"start": context + tail, "frames": 2205, "level": 0}
    data, _ = sf.read(tmp_path / "p" / "level_0" / "item_0.wav")
    assert data.shape[0] == 2205

    # the old name still works, with a note
    rc = main(["sample", "--model", str(model), "--mode", "primed", "--prime", str(region), "--prime-length", "0.02",
               "--length", "0.05", *ARGS, "-o", str(tmp_path / "q")])  # fmt: skip
    assert rc == 0 and "--mode primed is now called --mode continue" in capsys.readouterr().err
    same = [load_codes(tmp_path / f / "codes.npz").codes for f in ("p", "q")]
    assert all(np.array_equal(x, y) for x, y in zip(*same))


def test_codes_of_another_model_are_refused_unless_allowed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from model.codes import CodesMeta, save_codes

    model = tiny_model_dir(tmp_path / "model")
    codes = [np.zeros((1, 8 * n), dtype=np.int64) for n in (16, 4, 1)]  # 16 top tokens
    foreign = save_codes(tmp_path / "foreign.npz", codes, CodesMeta(44100, (8, 32, 128), 64, "other@0123abcd", 2048))
    args = ["sample", "--model", str(model), "--mode", "upsample", "--codes", str(foreign), *ARGS]
    assert main([*args, "-o", str(tmp_path / "a")]) == 2
    assert "made by model other@0123abcd" in capsys.readouterr().err
    assert main([*args, "--allow-other-model", "-o", str(tmp_path / "b")]) == 0


@pytest.mark.parametrize(
    "extra,words",
    [
        (["--length", "0"], "not a positive number"),
        (["--length", "25"], "too long for this model"),
        (["--length", "0.05", "--top-k", "3", "--top-p", "0.5"], "cannot be used together"),
        (["--length", "0.05", "--temperature", "0.99,1e-30"], "temperature 1e-30 is out of range: use a value from 0.01 to 10"),
        (["--length", "0.05", "--total-length", "30"], "outside the range"),
        (["--mode", "extend", "--length", "0.05"], "needs --codes"),
        (["--mode", "continue", "--length", "0.05"], "needs --region"),
        (["--mode", "continue", "--codes", "x.npz", "--length", "0.05"], "use --mode extend"),
        (["--mode", "generate"], "needs --length"),
        (["--length", "0.05", "--artist", "nobody at all"], "artist"),
        (["--length", "0.05", "--artist", "ada\x1b[2J"], "--artist contains control character U+001B at position 3"),
        (["--length", "0.05", "--genre", "jazz\n"], "--genre contains control character U+000A at position 4"),
        (["--length", "0.05", "--lyrics", "la\nla\x00"], "--lyrics contains control character U+0000 at position 5"),
        (["--length", "0.05", "--seed", str(1 << 70)], "--seed 1180591620717411303424 is out of range"),
        (["--length", "0.05", "--seed", str((1 << 63) - 1), "--candidates", "2"], "is out of range"),
        (["--length", "0.05", "--lyrics-file", "/no/such/lyrics.txt"], "lyrics.txt: no such file"),
    ],
)
def test_user_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list, words: str) -> None:
    model = tiny_model_dir(tmp_path / "model")
    args = ["sample", "--model", str(model), "--precision", "fp32", "--artist", "ada", "--genre", "jazz", "-o", str(tmp_path / "o")]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert words in err and err.count("\n") == 1


@pytest.mark.parametrize(
    "extra,words",
    [
        (["--length", "nan"], "--length nan s is not a positive number of seconds"),
        (["--length", "-1"], "--length -1.0 s is not a positive number of seconds"),
        (["--length", "1", "--total-length", "inf"], "--total-length inf s is not a number of seconds of 0 or more"),
        (["--mode", "continue", "--region", "{tmp}/none.wav", "--length", "1"], "--region {tmp}/none.wav: no such file"),
        (["--mode", "continue", "--region", "{tmp}", "--length", "1"], "--region {tmp}: is a folder, not a file"),
        (["--mode", "continue", "--region", "{tmp}/a.wav", "--region-end", "nan", "--length", "1"], "--region-end nan s is not"),
        (["--mode", "upsample", "--codes", "{tmp}/none.npz"], "--codes {tmp}/none.npz: no such file"),
        (["--mode", "extend", "--codes", "{tmp}/junk.npz", "--length", "1"], "junk.npz: not a codes file"),
    ],
)
def test_arguments_are_checked_before_the_model(tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list, words: str) -> None:
    # these were named only once the model had loaded (minutes for a real one), or not at all when the model
    # had its own problem first: here there is no model, so that is the error unless the arguments come first
    (tmp_path / "junk.npz").write_text("not a codes file")
    sf.write(tmp_path / "a.wav", np.zeros(4410, np.float32), 44100)
    args = ["sample", "--model", str(tmp_path / "nomodel"), "-o", str(tmp_path / "o")]
    assert main([*args, *(e.replace("{tmp}", str(tmp_path)) for e in extra)]) == 2
    err = capsys.readouterr().err
    assert words.replace("{tmp}", str(tmp_path)) in err and err.count("\n") == 1


def test_lyrics_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lyrics = tmp_path / "song.txt"
    lyrics.write_bytes(b"caf\xe9 au lait")  # Latin-1
    model = tiny_model_dir(tmp_path / "model")
    assert main(["sample", "--model", str(model), "--length", "0.05", *ARGS, "--lyrics-file", str(lyrics), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "song.txt: not UTF-8 text" in err and err.count("\n") == 1


@pytest.mark.parametrize("existing", ["file", "full folder", "file above"])
def test_output_is_checked_before_sampling(tmp_path: Path, capsys: pytest.CaptureFixture[str], existing: str) -> None:
    # a run into an old run's folder left the old item_1.wav beside the new item_0.wav; a file as -o
    # failed with an internal error only after all the sampling
    out = tmp_path / "o"
    if existing == "file":
        out.write_text("my notes")
    elif existing == "file above":  # out.mkdir(parents=True) failed with an internal error after the sampling
        (tmp_path / "notes").write_text("my notes")
        out = tmp_path / "notes" / "run"
    else:
        (out / "level_0").mkdir(parents=True)
        (out / "level_0" / "item_1.wav").write_bytes(b"old take")
    model = tiny_model_dir(tmp_path / "model")
    assert main(["sample", "--model", str(model), "--length", "0.05", *ARGS, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"segue sample: error: -o {out}: ") and err.count("\n") == 1
    assert "sample level" not in err  # refused before any token was sampled


def test_a_top_prior_only_model_says_which_lowest_level_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from model.checkpoint.model_dir import save_component
    from model.sampling.loading import save_prior
    from tests.helpers.factories import build, tiny_vqvae

    model = tmp_path / "sketch"
    vq = tiny_vqvae()
    save_component(model, "vqvae", "vqvae", vq.config.to_dict(), vq.state_dict(), model_name="sketch")
    save_prior(model, build(presets.with_changes(presets.tiny_prior(), labels={"enabled": False}), seed=2))  # no labels: no id lists needed
    args = ["sample", "--model", str(model), "--length", "0.05", "--precision", "fp32", "--total-length", "2"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "no prior for level 1" in err and "use lowest level 2" in err and err.count("\n") == 1
    assert main([*args, "--lowest-level", "2", "-o", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "level_2" / "item_0.wav").exists()


def test_absurd_candidates_are_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_model_dir(tmp_path / "model")
    assert main(["sample", "--model", str(model), "--length", "0.05", *ARGS, "--candidates", "1000000", "-o", str(tmp_path / "o")]) == 2
    assert "--candidates 1000000 is out of range: use 1..1024" in capsys.readouterr().err
