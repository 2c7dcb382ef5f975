import threading

import pytest

from common.errors import Cancelled
from common.progress import CancelToken, Progress, report


def test_fraction_is_clamped() -> None:
    assert Progress("sample", 5, 10).fraction == 0.5
    assert Progress("sample", 20, 10).fraction == 1.0
    assert Progress("sample", 0, 0).fraction == 1.0


def test_cancel_from_another_thread() -> None:
    token = CancelToken()
    token.raise_if_cancelled()
    t = threading.Thread(target=token.cancel, args=("user asked",))
    t.start()
    t.join()
    assert token.cancelled
    with pytest.raises(Cancelled, match="user asked"):
        token.raise_if_cancelled()


def test_report_skips_missing_callback() -> None:
    seen: list[Progress] = []
    report(None, Progress("x", 1, 2))
    report(seen.append, Progress("x", 1, 2))
    assert seen == [Progress("x", 1, 2)]
