import pytest

from common.errors import InputError
from model.sampling.lengths import (
    Geometry,
    check_total_length,
    check_upsampling,
    default_total_samples,
    prime_samples_from_seconds,
    samples_from_seconds,
)

JUKEBOX = Geometry(sample_rate=44100, hops=(8, 32, 128), n_ctx=(8192, 8192, 8192), min_duration=23.8, max_duration=600.0)


def test_seconds_round_down_to_top_hop() -> None:
    assert samples_from_seconds(20, JUKEBOX) == 881_920
    assert samples_from_seconds(180, JUKEBOX) // 128 == 62_015
    assert JUKEBOX.tokens(881_920, 1) == 27_560
    with pytest.raises(InputError, match="too short"):
        samples_from_seconds(0.001, JUKEBOX)
    with pytest.raises(InputError, match="positive"):
        samples_from_seconds(-1, JUKEBOX)


def test_upsampling_needs_one_window() -> None:
    assert JUKEBOX.min_upsample_samples([0, 1]) == 262_144
    check_upsampling(262_144, JUKEBOX, [0, 1])
    with pytest.raises(InputError, match="at least 5.94 s"):
        check_upsampling(262_144 - 128, JUKEBOX, [0, 1])
    check_upsampling(65_536, JUKEBOX, [0])  # level 0 alone needs 1.49 s
    check_upsampling(128, JUKEBOX, [2])  # the top level needs nothing


def test_total_length_range() -> None:
    check_total_length(30 * 44100, 20 * 44100, JUKEBOX)
    with pytest.raises(InputError, match="at least 23.80 s"):
        check_total_length(20 * 44100, 10 * 44100, JUKEBOX)
    with pytest.raises(InputError, match="shorter than offset"):
        check_total_length(30 * 44100, 20 * 44100, JUKEBOX, offset_samples=15 * 44100)
    assert default_total_samples(10 * 44100, JUKEBOX) == round(23.8 * 44100)
    assert default_total_samples(60 * 44100, JUKEBOX) == 60 * 44100


def test_prime_rounds_down_and_leaves_room() -> None:
    assert prime_samples_from_seconds(5.0, 881_920, JUKEBOX) == 5 * 44100 // 128 * 128
    with pytest.raises(InputError, match="nothing to sample"):
        prime_samples_from_seconds(20.0, 881_920, JUKEBOX)


def test_label_lengths_are_not_rounded_to_tokens() -> None:
    from model.sampling.lengths import label_samples

    total = label_samples(23.8, JUKEBOX)
    assert total == round(23.8 * 44100)
    check_total_length(total, 10 * 44100, JUKEBOX)  # exactly the minimum is allowed
    with pytest.raises(InputError, match="0 or more"):
        label_samples(-1, JUKEBOX, "offset")
