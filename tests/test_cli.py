import os
import subprocess
import sys

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
