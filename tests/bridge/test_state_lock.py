"""One daemon per state directory; a port in use and a missing root are one-line errors."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import zmq

from bridge.state.lock import LOCK_FILE, hold_state_dir
from common.errors import ConfigError
from segue.cli import main

TONE = "tests.bridge.test_state_lock:tone_backend"


def tone_backend(tables: dict) -> object:
    from tests.bridge.tone_backend import ToneBackend

    return ToneBackend()


def _serve(tmp_path: Path, *extra: str) -> list[str]:
    return ["serve", "--backend", TONE, "--state-dir", str(tmp_path / "state"), "--request-port", "0",
            "--control-port", "0", "--events-port", "0", "--osc-port", "0", *extra]  # fmt: skip


@pytest.mark.skipif(os.name != "posix", reason="flock is POSIX")
def test_a_second_holder_is_refused_and_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    with hold_state_dir(tmp_path) as path:
        assert path == tmp_path / LOCK_FILE and path.read_text().strip() == str(os.getpid())
        busy = rf"state directory {tmp_path} is in use by another segue daemon \(pid {os.getpid()}\)"
        with pytest.raises(ConfigError, match=busy), hold_state_dir(tmp_path):
            pass
    with hold_state_dir(tmp_path):  # released on exit; the file left behind does not block
        pass


@pytest.mark.skipif(os.name != "posix", reason="flock is POSIX")
def test_serve_refuses_a_state_dir_in_use_before_touching_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # a second daemon's start-up recovery marked the first one's running jobs interrupted and removed
    # their half-written renders
    with hold_state_dir(tmp_path / "state"):
        assert main(_serve(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "is in use by another segue daemon" in err and err.count("\n") == 1
    assert not (tmp_path / "state" / "journal.sqlite3").exists()


@pytest.mark.timeout(30)  # before the fix the daemon hung in context.term() for minutes
def test_serve_says_which_port_is_taken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    context = zmq.Context()  # its own: the daemon terminates the shared instance, which waits for open sockets
    taken = context.socket(zmq.ROUTER)
    port = taken.bind_to_random_port("tcp://127.0.0.1")
    try:
        assert main(_serve(tmp_path, "--request-port", str(port))) == 2
    finally:
        taken.close(linger=0)
        context.term()
    err = capsys.readouterr().err
    assert f"cannot listen: tcp://127.0.0.1:{port} is already in use" in err and "internal" not in err


def test_serve_says_when_the_osc_port_is_taken(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        assert main(_serve(tmp_path, "--osc-port", str(port))) == 2
    assert f"cannot listen: udp://127.0.0.1:{port} is already in use" in capsys.readouterr().err


def test_serve_refuses_a_missing_root(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(_serve(tmp_path, "--root", str(tmp_path / "nope"))) == 2
    assert f"input root {tmp_path / 'nope'} is not an existing folder" in capsys.readouterr().err
