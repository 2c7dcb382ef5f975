"""Atomic file writes: a reader sees the old file or the complete new one, never half of it.

Everything segue writes that someone else may read while it is being written (rendered audio, codes
files, checkpoints, the daemon's render store) goes through here. The recipe: write a temporary file
in the *same directory* (so the final rename never crosses file systems), flush and ``fsync`` it,
``os.replace`` it over the target (atomic on POSIX and Windows), then ``fsync`` the directory so the
rename itself survives a power cut. On any error the temporary file is removed and the target is
left untouched.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

TEMP_PREFIX = ".segue-tmp-"  # temporary files start with this; safe to delete when no segue process runs


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a file's data to disk (used for files written by libraries that only take a path)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows; rename is durable there
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems (e.g. certain network mounts) refuse directory fsync
        pass
    finally:
        os.close(fd)


def _create_temp(directory: Path, suffix: str) -> Path:
    # os.open with mode 0o666 lets the umask decide permissions, as for a normally created file
    # (tempfile.mkstemp would leave the final file readable by its owner only).
    while True:
        tmp = directory / f"{TEMP_PREFIX}{secrets.token_hex(8)}{suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it is fsynced and renamed onto ``path``.

    The temporary name keeps ``path``'s suffix so libraries that infer a format from the name
    (soundfile, numpy, safetensors) behave as they would with the final name. If the body raises,
    the temporary file is removed and ``path`` keeps its old content (or stays absent).
    """
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    tmp = _create_temp(directory, target.suffix)
    mode = tmp.stat().st_mode & 0o777  # what the umask gave a normally created file
    try:
        yield tmp
        if tmp.stat().st_mode & 0o777 != mode:  # some writers (safetensors) recreate the file 0600
            os.chmod(tmp, mode)
        fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(directory)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (see module docstring)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))
