"""One daemon per state directory: an exclusive lock on ``<state dir>/daemon.lock`` for the daemon's life.

A second daemon on the same journal and store would run recovery at its start, mark the first one's
running jobs ``interrupted`` and delete their half-written renders. The lock is an ``flock`` on an
open file, so the kernel drops it when the holder dies, also on ``kill -9``: a stale file never blocks.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from common.errors import ConfigError

LOCK_FILE = "daemon.lock"


@contextlib.contextmanager
def hold_state_dir(state_dir: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold ``state_dir`` for this process (created if missing); ``ConfigError`` if a live daemon holds it."""
    directory = Path(state_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_FILE
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, as before (docs/daemon.md says to run one daemon per state dir)
        yield path
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise ConfigError(
                f"state directory {directory} is in use by another segue daemon (pid {holder}); stop it, "
                "or give this one its own --state-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield path
    finally:
        os.close(fd)  # releases the lock
