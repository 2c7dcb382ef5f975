import os
import stat
from pathlib import Path

import pytest

from model.atomic import TEMP_PREFIX, atomic_path, atomic_write_bytes, atomic_write_text


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(TEMP_PREFIX)]


def test_write_bytes_creates_and_replaces(tmp_path: Path) -> None:
    target = tmp_path / "a.bin"
    atomic_write_bytes(target, b"first")
    atomic_write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert _leftovers(tmp_path) == []


def test_write_text(tmp_path: Path) -> None:
    atomic_write_text(tmp_path / "t.json", '{"ü": 1}')
    assert (tmp_path / "t.json").read_text(encoding="utf-8") == '{"ü": 1}'


def test_atomic_path_temp_is_beside_target_with_same_suffix(tmp_path: Path) -> None:
    target = tmp_path / "song.wav"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.suffix == ".wav"
        assert not target.exists()  # nothing visible under the final name while writing
        tmp.write_bytes(b"data")
    assert target.read_bytes() == b"data"
    assert _leftovers(tmp_path) == []


def test_failure_keeps_old_content_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "keep.txt"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("writer crashed")
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_failure_without_old_file_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError), atomic_path(tmp_path / "new.bin"):
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


def test_permissions_follow_umask(tmp_path: Path) -> None:
    if os.name != "posix":
        pytest.skip("POSIX permissions only")
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "p.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "p.bin").stat().st_mode) == 0o644


def test_missing_directory_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "nope" / "x.bin", b"x")


def test_permissions_follow_the_umask_even_when_the_writer_recreates_the_file(tmp_path) -> None:
    import os

    import torch
    from safetensors.torch import save_file

    from model.atomic import atomic_path

    target = tmp_path / "w.safetensors"
    with atomic_path(target) as tmp:
        save_file({"x": torch.zeros(2)}, str(tmp))
    plain = tmp_path / "plain"
    plain.write_bytes(b"x")
    assert os.stat(target).st_mode & 0o777 == os.stat(plain).st_mode & 0o777
