import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from common.errors import CodesError
from model.codes import CODES_VERSION, CodesMeta, load_codes, save_codes

META = CodesMeta(
    sample_rate=44100,
    hop_lengths=(8, 32, 128),
    codebook_size=2048,
    model="tiny-vqvae@0123abcd",
    source_samples=1024,
    source_name="riff.wav",
)


def _codes(batch: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 2048, size=(batch, 1024 // hop)) for hop in META.hop_lengths]


def _rewrite(path: Path, **entries: np.ndarray) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **entries)  # type: ignore[arg-type]
    path.write_bytes(buffer.getvalue())


def test_round_trip(tmp_path: Path) -> None:
    codes = _codes(batch=2)
    save_codes(tmp_path / "c.npz", codes, META)
    loaded = load_codes(tmp_path / "c.npz")
    assert loaded.meta == META
    assert loaded.levels == 3
    for ours, theirs in zip(loaded.codes, codes):
        assert ours.dtype == np.int64
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(loaded.level(2), codes[2])


def test_stored_compactly_and_readable_without_segue(tmp_path: Path) -> None:
    save_codes(tmp_path / "c.npz", _codes(), META)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == ["level_0", "level_1", "level_2", "meta"]
        assert archive["level_0"].dtype == np.int16
        meta = json.loads(str(archive["meta"]))
    assert meta["format"] == "segue-codes" and meta["version"] == CODES_VERSION
    assert meta["hop_lengths"] == [8, 32, 128] and meta["source_name"] == "riff.wav"


def test_accepts_tensors_and_1d(tmp_path: Path) -> None:
    codes = [torch.arange(128) % 2048, torch.zeros(1, 32, dtype=torch.long), np.arange(8)]
    save_codes(tmp_path / "t.npz", codes, META)
    loaded = load_codes(tmp_path / "t.npz")
    assert loaded.codes[0].shape == (1, 128)
    np.testing.assert_array_equal(loaded.codes[2][0], np.arange(8))


def test_save_rejects_bad_codes(tmp_path: Path) -> None:
    codes = _codes()
    with pytest.raises(CodesError, match="2 levels of codes but meta lists 3"):
        save_codes(tmp_path / "c.npz", codes[:2], META)
    with pytest.raises(CodesError, match=r"level 1 codes range .* outside 0\.\.2047"):
        save_codes(tmp_path / "c.npz", [codes[0], codes[1] + 2048, codes[2]], META)
    with pytest.raises(CodesError, match="dtype float"):
        save_codes(tmp_path / "c.npz", [codes[0].astype(float), codes[1], codes[2]], META)
    with pytest.raises(CodesError, match="does not exist"):
        save_codes(tmp_path / "no" / "c.npz", codes, META)
    assert list(tmp_path.iterdir()) == []


def test_missing_and_not_a_file(tmp_path: Path) -> None:
    with pytest.raises(CodesError, match=r"gone\.npz: no such file"):
        load_codes(tmp_path / "gone.npz")
    with pytest.raises(CodesError, match="not a file"):
        load_codes(tmp_path)


def test_corrupt_files(tmp_path: Path) -> None:
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(CodesError, match=r"text\.npz: not a codes file \(an \.npz archive"):
        load_codes(tmp_path / "text.npz")
    save_codes(tmp_path / "c.npz", _codes(), META)
    data = (tmp_path / "c.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(CodesError, match=r"cut\.npz: not a readable codes file or corrupt"):
        load_codes(tmp_path / "cut.npz")


def test_audio_given_as_codes_is_named_without_pickle_advice(tmp_path: Path) -> None:
    # np.load reads a RIFF file as a pickle and its message advises allow_pickle=True: never pass that on
    (tmp_path / "song.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(40))
    with pytest.raises(CodesError, match=r"song\.wav: not a codes file") as info:
        load_codes(tmp_path / "song.wav")
    assert "pickle" not in str(info.value)


def test_save_to_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CodesError, match=r"is a directory; give a file name"):
        save_codes(tmp_path, _codes(), META)


def test_refuses_pickled_arrays(tmp_path: Path) -> None:
    meta = np.array(json.dumps(META.to_dict()))
    objects = np.array([{"evil": 1}], dtype=object)
    _rewrite(tmp_path / "p.npz", meta=meta, level_0=objects, level_1=objects, level_2=objects)
    with pytest.raises(CodesError, match="not a readable codes file"):
        load_codes(tmp_path / "p.npz")


def test_wrong_format_or_version(tmp_path: Path) -> None:
    codes = {f"level_{i}": c for i, c in enumerate(_codes())}
    _rewrite(tmp_path / "v.npz", meta=np.array(json.dumps({**META.to_dict(), "version": 99})), **codes)
    with pytest.raises(CodesError, match="version 99 is not supported"):
        load_codes(tmp_path / "v.npz")
    _rewrite(tmp_path / "f.npz", meta=np.array(json.dumps({**META.to_dict(), "format": "x"})), **codes)
    with pytest.raises(CodesError, match="not a segue codes file"):
        load_codes(tmp_path / "f.npz")
    _rewrite(tmp_path / "n.npz", **codes)
    with pytest.raises(CodesError, match="no 'meta' entry"):
        load_codes(tmp_path / "n.npz")
    _rewrite(tmp_path / "j.npz", meta=np.array("{oops"), **codes)
    with pytest.raises(CodesError, match="not valid JSON"):
        load_codes(tmp_path / "j.npz")
    incomplete = META.to_dict()
    del incomplete["hop_lengths"]
    _rewrite(tmp_path / "i.npz", meta=np.array(json.dumps(incomplete)), **codes)
    with pytest.raises(CodesError, match="incomplete or malformed"):
        load_codes(tmp_path / "i.npz")


def test_missing_level_and_bad_shapes(tmp_path: Path) -> None:
    meta = np.array(json.dumps(META.to_dict()))
    c = _codes()
    _rewrite(tmp_path / "m.npz", meta=meta, level_0=c[0], level_2=c[2])
    with pytest.raises(CodesError, match=r"missing 'level_1'"):
        load_codes(tmp_path / "m.npz")
    _rewrite(tmp_path / "s.npz", meta=meta, level_0=c[0][0], level_1=c[1], level_2=c[2])
    with pytest.raises(CodesError, match=r"level 0 codes have shape \(128,\)"):
        load_codes(tmp_path / "s.npz")
    _rewrite(tmp_path / "b.npz", meta=meta, level_0=np.concatenate([c[0], c[0]]), level_1=c[1], level_2=c[2])
    with pytest.raises(CodesError, match="disagree on the batch size"):
        load_codes(tmp_path / "b.npz")
    _rewrite(tmp_path / "d.npz", meta=meta, level_0=c[0].astype(np.float32), level_1=c[1], level_2=c[2])
    with pytest.raises(CodesError, match="dtype float32; expected integers"):
        load_codes(tmp_path / "d.npz")


def test_out_of_range_for_given_codebook(tmp_path: Path) -> None:
    save_codes(tmp_path / "c.npz", _codes(), META)
    with pytest.raises(CodesError, match=r"outside 0\.\.63 \(codebook size 64\)"):
        load_codes(tmp_path / "c.npz", codebook_size=64)
    negative = [c.copy() for c in _codes()]
    negative[2][0, 0] = -1
    meta = np.array(json.dumps(META.to_dict()))
    _rewrite(tmp_path / "neg.npz", meta=meta, **{f"level_{i}": c for i, c in enumerate(negative)})
    with pytest.raises(CodesError, match=r"level 2 codes range -1\.\."):
        load_codes(tmp_path / "neg.npz")


def test_level_and_fit_checks(tmp_path: Path) -> None:
    save_codes(tmp_path / "c.npz", _codes(), META)
    loaded = load_codes(tmp_path / "c.npz")
    with pytest.raises(CodesError, match=r"level 3 does not exist; levels are 0\.\.2"):
        loaded.level(3)
    loaded.check_fits(hop_lengths=[8, 32, 128], codebook_size=2048, sample_rate=44100)
    with pytest.raises(CodesError, match="hops"):
        loaded.check_fits(hop_lengths=[8, 32, 256], codebook_size=2048, sample_rate=44100)


def test_overwrite_is_atomic(tmp_path: Path) -> None:
    save_codes(tmp_path / "c.npz", _codes(), META)
    save_codes(tmp_path / "c.npz", _codes(batch=3), META)
    assert load_codes(tmp_path / "c.npz").codes[0].shape[0] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]
    assert zipfile.is_zipfile(tmp_path / "c.npz")
