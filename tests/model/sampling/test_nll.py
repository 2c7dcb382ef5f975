import math

import pytest
import torch

from common.errors import InputError
from model.prior import presets
from model.sampling.jukebox import JukeboxLevel
from model.sampling.nll import code_nll
from tests.helpers.factories import build, tiny_labels


@pytest.mark.parametrize("config", [presets.tiny_prior(), presets.tiny_prior_merged()], ids=["top", "1b_lyrics_family"])
def test_one_window_matches_the_prior_loss(config) -> None:  # type: ignore[no-untyped-def]
    level = JukeboxLevel(build(config))
    labels = tiny_labels({2: config}, lyrics="do re mi")[2]
    codes = torch.randint(0, config.n_bins, (2, config.n_ctx))
    res = code_nll(level, codes, labels)
    with torch.inference_mode():
        out = level.prior(codes, level.prior.conditioning(labels.for_window(0).y.expand(2, -1)))
    assert res.windows == 1 and res.per_token.shape == (2, config.n_ctx)
    assert math.isclose(res.bits_per_token, float(out.gen_loss), rel_tol=1e-5)


def test_long_codes_use_windows_and_score_each_code_once() -> None:
    config = presets.tiny_upsampler(1)
    level = JukeboxLevel(build(config))
    labels = tiny_labels({1: config})[1]
    codes = torch.randint(0, config.n_bins, (1, 80))
    upper = torch.randint(0, config.n_bins, (1, 20))
    res = code_nll(level, codes, labels, upper)
    assert res.windows == 3 and bool((res.per_token > 0).all())
    # the first window alone gives the same bits for its codes
    first = code_nll(level, codes[:, :32], labels, upper[:, :8])
    assert torch.allclose(res.per_token[:, :32], first.per_token)
    with pytest.raises(InputError, match="at least one window"):
        code_nll(level, codes[:, :16], labels, upper)
