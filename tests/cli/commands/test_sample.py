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


def test_ancestral_then_continue_then_upsample(tmp_path: Path) -> None:
    model = tiny_model_dir(tmp_path / "model", top=presets.tiny_prior_merged())
    out = tmp_path / "a"
    rc = main(["sample", "--model", str(model), "--length", "0.05", "--candidates", "2", "--seed", "5",
               "--lyrics", "la la la", *ARGS, "-o", str(out)])  # fmt: skip
    assert rc == 0
    run = json.loads((out / "run.json").read_text())
    assert run["result"]["seeds"] == [5, 6] and run["length"]["samples"] == 2176
    for lv in range(3):
        data, sr = sf.read(out / f"level_{lv}" / "item_1.wav")
        assert sr == 44100 and data.shape[0] == 2176
    codes = load_codes(out / "codes.npz")
    assert [c.shape for c in codes.codes] == [(2, 272), (2, 68), (2, 17)]
    align = json.loads((out / "alignment_item_0.json").read_text())
    assert [w["word"] for w in align["words"]] == ["la", "la", "la"]

    # the same run again gives the same codes
    rc = main(["sample", "--model", str(model), "--length", "0.05", "--candidates", "2", "--seed", "5",
               "--lyrics", "la la la", *ARGS, "--no-align", "-o", str(tmp_path / "b")])  # fmt: skip
    assert rc == 0
    assert all(np.array_equal(x, y) for x, y in zip(codes.codes, load_codes(tmp_path / "b" / "codes.npz").codes))

    rc = main(["sample", "--model", str(model), "--mode", "continue", "--codes", str(out / "codes.npz"),
               "--length", "0.07", "--candidates", "2", *ARGS, "-o", str(tmp_path / "c")])  # fmt: skip
    assert rc == 0
    longer = load_codes(tmp_path / "c" / "codes.npz")
    assert np.array_equal(longer.codes[2][:, :17], codes.codes[2])

    rc = main(["sample", "--model", str(model), "--mode", "upsample", "--codes", str(out / "codes.npz"),
               "--candidates", "2", *ARGS, "-o", str(tmp_path / "d")])  # fmt: skip
    assert rc == 0
    assert not (tmp_path / "d" / "level_2").exists() and (tmp_path / "d" / "level_0" / "item_0.wav").exists()


def test_primed_from_an_audio_file(tmp_path: Path) -> None:
    model = tiny_model_dir(tmp_path / "model")
    prime = tmp_path / "prime.wav"
    sf.write(prime, 0.3 * np.sin(np.arange(3000) / 5.0), 44100)
    rc = main(["sample", "--model", str(model), "--mode", "primed", "--prime", str(prime), "--prime-length", "0.02",
               "--length", "0.05", *ARGS, "-o", str(tmp_path / "p")])  # fmt: skip
    assert rc == 0
    run = json.loads((tmp_path / "p" / "run.json").read_text())
    assert run["mode"] == "primed" and run["result"]["tokens_per_level"] == [272, 68, 17]


@pytest.mark.parametrize(
    "extra,words",
    [
        (["--length", "0.001"], "too short"),
        (["--length", "0.01"], "too short to upsample"),
        (["--length", "0.05", "--top-k", "3", "--top-p", "0.5"], "cannot be used together"),
        (["--length", "0.05", "--total-length", "30"], "outside the range"),
        (["--mode", "continue", "--length", "0.05"], "needs --codes"),
        (["--mode", "primed", "--length", "0.05"], "needs --prime"),
        (["--length", "0.05", "--artist", "nobody at all"], "artist"),
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


def test_lyrics_file_that_is_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lyrics = tmp_path / "song.txt"
    lyrics.write_bytes(b"caf\xe9 au lait")  # Latin-1
    model = tiny_model_dir(tmp_path / "model")
    assert main(["sample", "--model", str(model), "--length", "0.05", *ARGS, "--lyrics-file", str(lyrics), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "song.txt: not UTF-8 text" in err and err.count("\n") == 1


@pytest.mark.parametrize("existing", ["file", "full folder"])
def test_output_is_checked_before_sampling(tmp_path: Path, capsys: pytest.CaptureFixture[str], existing: str) -> None:
    # a run into an old run's folder left the old item_1.wav beside the new item_0.wav; a file as -o
    # failed with an internal error only after all the sampling
    out = tmp_path / "o"
    if existing == "file":
        out.write_text("my notes")
    else:
        (out / "level_0").mkdir(parents=True)
        (out / "level_0" / "item_1.wav").write_bytes(b"old take")
    model = tiny_model_dir(tmp_path / "model")
    assert main(["sample", "--model", str(model), "--length", "0.05", *ARGS, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"segue sample: error: -o {out}: ") and err.count("\n") == 1
    assert "sample level" not in err  # refused before any token was sampled


def test_a_top_prior_only_model_says_which_lowest_level_works(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from dataclasses import replace

    from model.checkpoint.model_dir import save_component
    from model.sampling.loading import save_prior
    from tests.helpers.factories import build, tiny_vqvae

    model = tmp_path / "sketch"
    vq = tiny_vqvae()
    save_component(model, "vqvae", "vqvae", vq.config.to_dict(), vq.state_dict(), model_name="sketch")
    save_prior(model, build(replace(presets.tiny_prior(), labels=False), seed=2))  # no labels: no id lists needed
    args = ["sample", "--model", str(model), "--length", "0.05", "--precision", "fp32", "--total-length", "2"]
    assert main([*args, "-o", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "no prior for level 1" in err and "add --lowest-level 2" in err and err.count("\n") == 1
    assert main([*args, "--lowest-level", "2", "-o", str(tmp_path / "b")]) == 0
    assert (tmp_path / "b" / "level_2" / "item_0.wav").exists()


def test_absurd_candidates_are_refused_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tiny_model_dir(tmp_path / "model")
    assert main(["sample", "--model", str(model), "--length", "0.05", *ARGS, "--candidates", "1000000", "-o", str(tmp_path / "o")]) == 2
    assert "--candidates 1000000 is out of range: use 1..1024" in capsys.readouterr().err
