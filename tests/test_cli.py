import pytest

from bridge.cli import main


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "version" in capsys.readouterr().out


def test_version_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert "torch" in capsys.readouterr().out
