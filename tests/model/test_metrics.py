import numpy as np
import pytest

from model.metrics import log_spectral_distance_db, snr_db


def test_snr_of_known_noise() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal(44100)
    assert snr_db(x, x + 0.1 * rng.standard_normal(44100)) == pytest.approx(20.0, abs=0.2)
    assert snr_db(x, x) > 150


def test_spectral_distance_ignores_phase_but_not_timbre() -> None:
    t = np.arange(44100) / 44100
    a = np.sin(2 * np.pi * 440 * t)
    shifted = np.sin(2 * np.pi * 440 * t + 1.0)
    other = np.sin(2 * np.pi * 660 * t)
    assert log_spectral_distance_db(a, shifted) < 1.0
    assert log_spectral_distance_db(a, other) > 3.0
    assert snr_db(a, shifted) < 3.0  # SNR punishes the phase shift that LSD ignores
