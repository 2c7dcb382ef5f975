"""Open a client-named input file so that what is read is what was checked (no check-then-use race).

Why: checking a path (``realpath``, ``stat``) and opening it later are separate look-ups, and a client
that can write inside a root can swap the file, or a parent directory, for a symlink to outside the
roots in between, or grow the file past the size limit. So the path is resolved once and checked
against the roots, then every component of the *resolved* path is opened with ``O_NOFOLLOW`` relative
to its parent's descriptor (openat), so a symlink swapped in later is refused instead of followed; the
file itself is opened ``O_NONBLOCK`` (a FIFO swapped in cannot block the daemon) and the checks are made
on the open descriptor (``fstat``: a regular file within the size limit; its own path, where the system
tells it, inside the roots). ``CheckedFile.copy_to`` stops after ``limit`` bytes, so a file that grows
after the check is refused too. Symlinks that resolve inside the roots stay allowed: they are followed
by ``realpath`` at check time, never by the open.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

from common.errors import SegueError

CHUNK = 1 << 20  # bytes per read when copying an input


class PathNotAllowed(SegueError):
    code = "path_not_allowed"


class TooLarge(SegueError):
    code = "too_large"


class FileMissing(SegueError):
    code = "not_found"


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC


class CheckedFile:
    """An open input file that passed the checks; read it with ``copy_to``, then ``close`` (or ``with``)."""

    def __init__(self, fd: int, name: str, path: Path, size: int, limit: int) -> None:
        self.fd, self.name, self.path, self.size, self.limit = fd, name, path, size, limit

    def copy_to(self, out: BinaryIO) -> int:
        """Copy the file's bytes to ``out`` in chunks; ``TooLarge`` once more than ``limit`` were read
        (the file grew after the check). Returns the bytes copied."""
        total = 0
        while chunk := os.read(self.fd, min(CHUNK, self.limit + 1 - total)):
            total += len(chunk)
            if total > self.limit:
                raise TooLarge(
                    f"input file {self.name!r} grew past the limit of {self.limit} bytes while it was read"
                )
            out.write(chunk)
        return total

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> CheckedFile:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def open_checked(path: str, roots: Sequence[Path], limit: int, allow_hard_links: bool = False) -> CheckedFile:
    """Open the input file ``path`` names, or raise ``PathNotAllowed``, ``FileMissing`` or ``TooLarge``.
    ``roots`` must be resolved (``os.path.realpath``). A file with more than one hard link is refused
    unless ``allow_hard_links``: a link made inside a root to a file elsewhere reads as a file inside."""
    if "\x00" in path:
        raise PathNotAllowed("path contains a NUL byte")
    p = Path(path)
    if not p.is_absolute():
        raise PathNotAllowed(f"path {path!r} is not absolute")
    if ".." in p.parts:
        raise PathNotAllowed(f"path {path!r} contains '..'")
    if not roots:
        raise PathNotAllowed(f"path {path!r}: the daemon allows no input paths (no roots configured)")
    resolved = Path(os.path.realpath(p))
    if not _inside(resolved, roots):
        shown = ", ".join(str(r) for r in roots)
        raise PathNotAllowed(f"path {path!r} resolves to {resolved}, outside the allowed roots ({shown})")
    fd = _open_no_follow(path, resolved)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise PathNotAllowed(f"input {path!r} is not a regular file (directory, device, FIFO or socket)")
        if st.st_nlink > 1 and not allow_hard_links:
            raise PathNotAllowed(
                f"input {path!r} has {st.st_nlink} hard links; one of them may be outside the allowed roots, so it "
                "is refused (copy the file, or set [bridge] allow_hard_links = true)"
            )
        real = _fd_path(fd)
        if real is not None and not _inside(real, roots):
            raise PathNotAllowed(f"input {path!r} was moved outside the allowed roots while it was opened")
        if st.st_size > limit:
            raise TooLarge(f"input file {path!r} has {st.st_size} bytes; the limit is {limit}")
        return CheckedFile(fd, path, resolved, st.st_size, limit)
    except BaseException:
        os.close(fd)
        raise


def _inside(path: Path, roots: Sequence[Path]) -> bool:
    return any(path.is_relative_to(root) for root in roots)


def _open_no_follow(path: str, resolved: Path) -> int:
    """Open ``resolved`` walking from ``/`` one component at a time, following no symlink."""
    parts = resolved.parts
    dir_fd = os.open(parts[0], os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for name in parts[1:-1]:
            next_fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
            os.close(dir_fd)
            dir_fd = next_fd
        last = parts[-1]
        st = os.stat(last, dir_fd=dir_fd, follow_symlinks=False)  # never open a device, even briefly
        if stat.S_ISLNK(st.st_mode):
            raise PathNotAllowed(f"input {path!r} became a symlink after it was checked; send it again")
        if not stat.S_ISREG(st.st_mode):
            raise PathNotAllowed(f"input {path!r} is not a regular file (directory, device, FIFO or socket)")
        return os.open(last, _FILE_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise FileMissing(f"input file {path!r} does not exist") from None
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise PathNotAllowed(
                f"input {path!r}: a folder on its path became a symlink or a file after it was checked; send it again"
            ) from None
        raise PathNotAllowed(f"input file {path!r} cannot be read: {exc.strerror}") from None
    finally:
        os.close(dir_fd)


def _fd_path(fd: int) -> Path | None:
    """Where the open file now is, if the system says (Linux ``/proc``); ``None`` elsewhere."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None
