"""Precision chosen at load: ``auto`` by a measurement (timer injected here, no timing assertions), no copies."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from common.errors import InputError
from model.prior import presets
from model.prior.prior import JukeboxPrior
from model.sampling import precision
from model.sampling.loading import load_sampling_model
from model.sampling.precision import measure_precision as real_measure_precision
from model.sampling.precision import pick_precision, place_prior
from tests.helpers.factories import build, tiny_model_dir


@pytest.fixture(autouse=True)
def real_measurement(monkeypatch: pytest.MonkeyPatch) -> None:
    """tests/conftest.py makes ``auto`` mean fp32 for the rest of the suite; here the measurement runs."""
    monkeypatch.setattr(precision, "measure_precision", real_measure_precision)
    monkeypatch.setattr(precision, "_CHOICES", {})


def fake_timer(prior: JukeboxPrior, seconds: dict[torch.dtype, float]) -> tuple[Callable[[], float], list[int]]:
    """A clock that advances by ``seconds[dtype the prior runs in]`` at every reading (and counts readings)."""
    clock, calls = [0.0], [0]

    def timer() -> float:
        calls[0] += 1
        clock[0] += seconds[prior.prior.x_emb.weight.dtype]
        return clock[0]

    return timer, calls


def test_bf16_only_when_clearly_faster() -> None:
    assert pick_precision(1.0, 0.5) == "bf16"
    assert pick_precision(1.0, 0.95) == "fp32"  # within the noise margin: fp32 is exact and as fast
    assert pick_precision(1.0, 2.0) == "fp32"


@pytest.mark.parametrize("fp32,bf16,expected", [(1.0, 0.4, "bf16"), (1.0, 1.7, "fp32"), (1.0, 0.95, "fp32")])
def test_auto_picks_the_faster_measured_precision(fp32: float, bf16: float, expected: str) -> None:
    prior = build(presets.tiny_prior())
    timer, calls = fake_timer(prior, {torch.float32: fp32, torch.bfloat16: bf16})
    assert precision.measure_precision(prior, 16, timer) == expected
    assert calls[0] > 0
    before = calls[0]
    assert precision.measure_precision(build(presets.tiny_prior(), seed=3), 16, timer) == expected
    assert calls[0] == before  # cached per (prior config, batch, device, threads): other weights, same shapes
    precision.measure_precision(prior, 1, timer)
    assert calls[0] > before  # another batch size is measured again


@pytest.mark.parametrize("make", [presets.tiny_prior_separate, lambda: presets.with_changes(presets.tiny_prior(), fp16_params=True)])
def test_measuring_leaves_the_very_same_weights(make) -> None:  # type: ignore[no-untyped-def]
    prior = build(make())
    before = {name: (t.data_ptr(), t.dtype, t.clone()) for name, t in prior.state_dict(keep_vars=True).items()}
    timer, _ = fake_timer(prior, {torch.float32: 1.0, torch.bfloat16: 0.5})
    assert precision.measure_precision(prior, 2, timer) == "bf16"
    after = prior.state_dict(keep_vars=True)
    for name, (ptr, dtype, value) in before.items():
        assert (after[name].data_ptr(), after[name].dtype) == (ptr, dtype), name
        assert torch.equal(after[name], value), name


def test_place_prior_casts_once_and_reports_the_precision() -> None:
    prior = build(presets.tiny_prior())
    timer, _ = fake_timer(prior, {torch.float32: 1.0, torch.bfloat16: 0.3})
    assert place_prior(prior, "cpu", "auto", 4, timer) == "bf16"
    assert {p.dtype for p in prior.parameters()} == {torch.bfloat16}
    assert place_prior(build(presets.tiny_prior()), "cpu", "fp32") == "fp32"
    assert place_prior(build(presets.tiny_prior()), "cpu", "bf16") == "bf16"
    with pytest.raises(InputError, match="precision 'fp16' is not known: use one of auto, fp32, bf16"):
        place_prior(build(presets.tiny_prior()), "cpu", "fp16")


def test_the_loader_chooses_precision_and_step_once(tmp_path: Path) -> None:
    tiny_model_dir(tmp_path)
    model = load_sampling_model(tmp_path, precision="bf16", step="eager")
    reference = load_sampling_model(tmp_path)  # fp32
    for level, prior in model.priors.items():
        assert {p.dtype for p in prior.parameters()} == {torch.bfloat16}
        ref = reference.priors[level].to(torch.bfloat16)
        assert all(torch.equal(a, b) for a, b in zip(prior.state_dict().values(), ref.state_dict().values()))
    for lv in model.levels().values():
        assert lv.precision == "bf16" and lv.step == "eager"
        assert not [v for v in vars(lv).values() if isinstance(v, (torch.Tensor, dict))]  # no second copy
    assert model.levels()[0].prior.prior.x_emb.weight.device.type == "cpu"
    with pytest.raises(InputError, match="step 'fastest' is not known: use one of auto, compiled, eager"):
        load_sampling_model(tmp_path, step="fastest")
    with pytest.raises(InputError, match="precision 'fp16' is not known"):
        load_sampling_model(tmp_path, precision="fp16")
