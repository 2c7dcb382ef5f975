import pytest

from common.errors import InputError
from model.sampling.windows import Window, plan_windows, window_starts

SR = 44100


def test_spec_example_20s_top_is_one_partial_window() -> None:
    samples = 20 * SR // 128 * 128
    assert samples == 881_920
    windows = plan_windows(samples // 128, 8192, 0.125)
    assert windows == [Window(0, 6890, 0)]


def test_spec_example_20s_level1_windows() -> None:
    windows = plan_windows(881_920 // 32, 8192, 0.5)
    assert 881_920 // 32 == 27_560
    assert [w.start for w in windows] == [0, 4096, 8192, 12288, 16384, 19368]
    assert windows[0].context == 0 and windows[0].new == 8192
    assert windows[1].context == 4096 and windows[1].new == 4096
    assert windows[-1].end == 27_560 and windows[-1].new == 27_560 - (16384 + 8192)


def test_spec_example_20s_level0_windows() -> None:
    windows = plan_windows(881_920 // 8, 8192, 0.5)
    assert 881_920 // 8 == 110_240
    starts = [w.start for w in windows]
    assert len(starts) == 26
    assert starts[:3] == [0, 4096, 8192]
    assert starts[-2:] == [98304, 102048]


def test_spec_example_180s_top() -> None:
    total = 180 * SR // 128
    assert total == 62_015
    windows = plan_windows(total, 8192, 0.125)
    assert len(windows) == 54
    assert windows[0].new == 8192
    assert all(w.new == 1024 and w.context == 7168 for w in windows[1:-1])
    assert windows[-1].end == total and windows[-1].new < 1024


def test_existing_tokens_are_context_and_full_windows_skipped() -> None:
    windows = plan_windows(27_560, 8192, 0.5, existing=10_000)
    # windows ending at or before 10,000 tokens have nothing new
    assert windows[0].start == 4096 and windows[0].context == 10_000 - 4096
    assert sum(w.new for w in windows) == 27_560 - 10_000


def test_partial_window_with_context() -> None:
    assert plan_windows(100, 128, 0.5, existing=40) == [Window(0, 100, 40)]
    assert plan_windows(100, 128, 0.5, existing=100) == []


@pytest.mark.parametrize("total,n_ctx,frac", [(1000, 64, 0.5), (513, 64, 0.125), (64, 64, 1.0), (1000, 64, 1.0)])
def test_windows_cover_every_token_once(total: int, n_ctx: int, frac: float) -> None:
    windows = plan_windows(total, n_ctx, frac)
    covered = 0
    for w in windows:
        assert w.length <= n_ctx and w.start + w.context == covered
        covered += w.new
    assert covered == total


def test_zero_hop_is_an_input_error() -> None:
    with pytest.raises(InputError, match="hop"):
        window_starts(1000, 64, 0)
    with pytest.raises(InputError, match="hop"):
        plan_windows(1000, 64, 0.001)
