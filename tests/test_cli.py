import os
import subprocess
import sys
from pathlib import Path

import pytest

from segue.cli import main


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "version" in capsys.readouterr().out


def test_version_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert "torch" in capsys.readouterr().out


def test_a_closed_stdout_pipe_is_not_an_internal_error() -> None:
    # 'segue jobs | head' closes the pipe early: that printed 'internal error: BrokenPipeError'
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    done = subprocess.run([sys.executable, "-m", "segue", "version"], stdout=write_end, stderr=subprocess.PIPE,
                          env=env, timeout=60, text=True)  # fmt: skip
    os.close(write_end)
    assert done.returncode == 0 and done.stderr == ""


def _run_without_torch(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter; it prints 'torch loaded: True/False' last."""
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    code += "\nprint('torch loaded:', 'torch' in sys.modules)\n"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)


def test_building_the_parser_imports_no_torch() -> None:
    done = _run_without_torch("import sys\nfrom segue.cli import build_parser\nbuild_parser()")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("torch loaded: False")


# a port nothing listens on; the client commands give up after 0.2 s
_NO_DAEMON = "'--request-port', '1', '--control-port', '2', '--timeout', '0.2'"


@pytest.mark.parametrize(
    ("argv", "rc"),
    [
        (f"['status', {_NO_DAEMON}]", 2),
        (f"['status', 'job-1', {_NO_DAEMON}]", 2),
        (f"['jobs', {_NO_DAEMON}]", 2),
        (f"['cancel', 'job-1', {_NO_DAEMON}]", 2),
        ("['keys', 'issue', 'bob', '--keys-dir', KEYS]", 0),
        ("['version']", 0),
        ("['serve', '--state-dir', KEYS]", 2),  # no model backend: a one-line error
        ("['serve', '--backend', 'tests.bridge.test_state_lock:tone_backend', '--state-dir', KEYS, "
         "'--no-zmq', '--osc-port', str(TAKEN)]", 2),  # the whole daemon is built, then its port is taken
    ],
)
def test_daemon_commands_import_no_torch(argv: str, rc: int, tmp_path: Path) -> None:
    code = (
        "import socket, sys\n"
        "taken = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); taken.bind(('127.0.0.1', 0))\n"
        "TAKEN = taken.getsockname()[1]\n"
        f"KEYS = {str(tmp_path / 'keys')!r}\n"
        "from segue.cli import main\n"
        f"print('rc', main({argv}))"
    )
    done = _run_without_torch(code)
    assert f"rc {rc}\n" in done.stdout, done.stdout + done.stderr
    assert "internal error" not in done.stderr and "Traceback" not in done.stderr
    assert done.stdout.strip().endswith("torch loaded: False")
