import pytest

from common.progress import Progress
from segue.progress_bars import ProgressBars


def test_bars_per_stage_and_level(capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressBars(delay=0) as bars:
        bars(Progress("decode", 10, 100, level=0))
        bars(Progress("decode", 100, 100, level=0))
        bars(Progress("encode", 5, 50))
        assert len(bars._bars) == 2
        assert bars._bars[("decode", 0)].n == 100
        bars(Progress("encode", 60, 60))  # the total may grow while work is under way
        assert bars._bars[("encode", None)].total == 60
    err = capsys.readouterr().err
    assert "decode level 0" in err and "encode" in err


def test_quick_work_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    with ProgressBars() as bars:  # default: bars appear only after a second
        bars(Progress("encode", 1, 1))
    assert capsys.readouterr().err == ""


def test_a_log_file_gets_few_redraws(capsys: pytest.CaptureFixture[str]) -> None:
    # stderr captured here is not a terminal, as when a run is logged to a file: 2,000 updates over
    # half a second used to write about five redraws, each a carriage return
    import time

    with ProgressBars(delay=0) as bars:
        for done in range(1, 2001):
            bars(Progress("sample", done, 2000, level=2))
            if done % 200 == 0:
                time.sleep(0.05)
    assert capsys.readouterr().err.count("\r") <= 3
