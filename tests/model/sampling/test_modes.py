import pytest
import torch

from common.errors import InputError
from model.sampling.modes import ancestral, continue_codes, primed, upsample
from model.sampling.params import SamplingParams
from tests.model.sampling.test_engine import GEO, priors

P = SamplingParams(precision="fp32", n_candidates=2, seed=1)


class StepEncoder:
    """Codes = quantised mean of each hop of audio (a stand-in VQ-VAE: deterministic, level-aware)."""

    def encode(self, audio: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for hop in GEO.hops:
            n = audio.shape[1] // hop
            frames = audio[:, : n * hop, 0].reshape(audio.shape[0], n, hop).mean(-1)  # (N, n)
            out.append(((frames + 1) * 7.99).long().clamp(0, 15))
        return out


def test_ancestral_all_levels_and_top_only() -> None:
    res = ancestral(priors(), GEO, 32 * 40, P)
    assert [tuple(c.shape) for c in res.codes] == [(2, 640), (2, 160), (2, 40)]
    sketch = ancestral(priors(), GEO, 32 * 40, P, lowest_level=2)
    assert [c.shape[1] for c in sketch.codes] == [0, 0, 40]
    assert torch.equal(sketch.codes[2], res.codes[2])


def test_primed_keeps_prime_codes_at_every_level() -> None:
    audio = torch.sin(torch.arange(32 * 10 + 17) / 9.0)[None, :, None]  # 10 top tokens + a remainder
    res = primed(priors(), GEO, StepEncoder(), audio, 32 * 40, P)
    prime = StepEncoder().encode(audio[:, : 32 * 10])
    for lv in range(3):
        assert torch.equal(res.codes[lv][:, : prime[lv].shape[1]], prime[lv].expand(2, -1))
        assert res.codes[lv].shape[1] == GEO.tokens(32 * 40, lv)
    with pytest.raises(InputError, match="leaves nothing"):
        primed(priors(), GEO, StepEncoder(), audio, 32 * 10, P)
    with pytest.raises(InputError, match="shorter than one"):
        primed(priors(), GEO, StepEncoder(), audio[:, :20], 32 * 40, P)


def test_continue_extends_every_level() -> None:
    first = ancestral(priors(), GEO, 32 * 24, P)
    more = continue_codes(priors(), GEO, list(first.codes), 32 * 40, P)
    for lv in range(3):
        n = first.codes[lv].shape[1]
        assert torch.equal(more.codes[lv][:, :n], first.codes[lv])
        assert more.codes[lv].shape[1] == GEO.tokens(32 * 40, lv)
    with pytest.raises(InputError, match="already cover"):
        continue_codes(priors(), GEO, list(first.codes), 32 * 24, P)


def test_upsample_shapes_and_needs_one_window() -> None:
    top = torch.randint(0, 16, (1, 12))
    res = upsample(priors(), GEO, top, P)
    assert [tuple(c.shape) for c in res.codes] == [(2, 192), (2, 48), (2, 12)]
    assert torch.equal(res.codes[2], top.expand(2, -1))
    with pytest.raises(InputError, match="too short to upsample"):
        upsample(priors(), GEO, top[:, :3], P)


def test_bad_requests() -> None:
    with pytest.raises(InputError, match="lowest level"):
        ancestral(priors(), GEO, 32 * 40, P, lowest_level=3)
    with pytest.raises(InputError, match="multiple of the top-level hop"):
        ancestral(priors(), GEO, 33 * 40, P)
    with pytest.raises(InputError, match="3 rows for 2 candidates"):
        upsample(priors(), GEO, torch.zeros(3, 12, dtype=torch.long), P)


def test_per_level_values_are_checked_before_sampling() -> None:
    calls = []
    bad = SamplingParams(precision="fp32", temperature=(0.9, 0.9))  # 2 values, 3 levels
    with pytest.raises(InputError, match="2 temperature values .* 3 levels"):
        ancestral(priors(), GEO, 32 * 40, bad, progress=calls.append)
    assert calls == []
