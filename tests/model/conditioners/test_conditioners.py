"""MIDI, stem and grid conditioner networks (issue 9): attached untrained they leave a prior's outputs
bit-identical (on small stand-ins of every official family), trained they change them; masks, condition
dropout, freezing, and saving them as components of their own."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import Tensor

from common.errors import CheckpointError, ConfigError, InputError
from model.checkpoint.model_dir import save_component
from model.conditioners import ConditionerConfig, ConditionerSet, ConditionInput, freeze_except
from model.conditioners.store import load_conditioners, save_conditioners
from model.prior.prior import JukeboxPrior
from model.prior.prior_config import PriorConfig
from tests.model.prior.test_prior import FAMILIES, inputs, randomised

MIDI_FEATURES, GRID_FEATURES = 402, 6  # onset, sustain, velocity (3 x 128), chroma 12, drums 6; grid 6


def _set(c: PriorConfig) -> ConditionerSet:
    return ConditionerSet([
        ConditionerConfig("midi", "midi", MIDI_FEATURES, c.transformer.width, c.level),
        ConditionerConfig("grid", "grid", GRID_FEATURES, c.transformer.width, c.level, kernel=3),
    ])  # fmt: skip


def _conditions(c: PriorConfig, batch: int = 2, seed: int = 0) -> dict[str, ConditionInput]:
    g = torch.Generator().manual_seed(seed)
    coverage = torch.ones(batch, c.n_ctx)
    coverage[0, c.n_ctx // 2 :] = 0.0  # the clip ends half-way through example 0's window
    return {
        "midi": ConditionInput(torch.rand(batch, c.n_ctx, MIDI_FEATURES, generator=g), coverage),
        "grid": ConditionInput(torch.rand(batch, c.n_ctx, GRID_FEATURES, generator=g), torch.ones(batch, c.n_ctx)),
    }


def _logits(prior: JukeboxPrior, codes: Tensor, labels: Tensor, upper: Tensor | None, extra: Tensor | None) -> Tensor:
    out = prior(codes, prior.conditioning(labels, upper, extra), return_logits=True).logits
    assert out is not None
    return out


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_untrained_conditioners_leave_the_prior_bit_identical(family: str) -> None:
    c = FAMILIES[family]()
    torch.manual_seed(0)
    prior, conditioners = randomised(c), _set(c).eval()
    codes, labels, upper = inputs(c)
    with torch.no_grad():
        plain = _logits(prior, codes, labels, upper, None)
        extra = conditioners(_conditions(c))
        assert extra is not None and extra.shape == (2, c.n_ctx, c.transformer.width)
        assert torch.equal(_logits(prior, codes, labels, upper, extra), plain)
        for name in conditioners.names:  # trained (here: woken up), the conditions change the logits
            torch.nn.init.normal_(conditioners.net(name).proj_out.weight, std=0.5)
        changed = _logits(prior, codes, labels, upper, conditioners(_conditions(c)))
    assert not torch.allclose(changed, plain)


def test_coverage_masks_the_condition_and_absent_conditions_add_nothing() -> None:
    c = FAMILIES["top_prior"]()
    conditioners = _set(c).eval()
    torch.nn.init.normal_(conditioners.net("midi").proj_out.weight)
    with torch.no_grad():
        out = conditioners({"midi": _conditions(c)["midi"]})
    assert out is not None
    assert torch.count_nonzero(out[0, c.n_ctx // 2 :]) == 0 and torch.count_nonzero(out[0, : c.n_ctx // 2]) > 0
    assert conditioners({}) is None
    with pytest.raises(InputError, match="no conditioner for drums.*it has: midi, grid"):
        conditioners({"drums": _conditions(c)["grid"]})
    with pytest.raises(InputError, match="takes 6 features per frame, got 402"):
        conditioners({"grid": _conditions(c)["midi"]})


def test_condition_dropout_drops_whole_examples_only_while_training() -> None:
    c = FAMILIES["top_prior"]()
    config = ConditionerConfig("grid", "grid", GRID_FEATURES, c.transformer.width, c.level, dropout=0.5)
    conditioners = ConditionerSet([config])
    torch.nn.init.normal_(conditioners.net("grid").proj_out.weight)
    item = ConditionInput(torch.rand(64, c.n_ctx, GRID_FEATURES), torch.ones(64, c.n_ctx))
    with torch.no_grad():
        trained = conditioners.train()({"grid": item}, generator=torch.Generator().manual_seed(3))
        evaluated = conditioners.eval()({"grid": item})
    assert trained is not None and evaluated is not None
    dropped = (trained.abs().sum(dim=(1, 2)) == 0).sum().item()
    assert 16 <= dropped <= 48  # about half of 64 examples, each all or nothing
    assert (evaluated.abs().sum(dim=(1, 2)) > 0).all()


def test_freeze_except_trains_only_the_conditioners() -> None:
    c = FAMILIES["upsampler"]()
    prior, conditioners = randomised(c).train(), _set(c).train()
    n = freeze_except(prior, [])
    assert n == 0 and not any(p.requires_grad for p in prior.parameters())
    before = {k: v.clone() for k, v in prior.state_dict().items()}
    codes, labels, upper = inputs(c)
    opt = torch.optim.SGD([p for p in conditioners.parameters() if p.requires_grad], lr=0.1)
    for _ in range(2):
        loss = prior(codes, prior.conditioning(labels, upper, conditioners(_conditions(c)))).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in prior.state_dict().items())
    assert torch.count_nonzero(conditioners.net("midi").proj_out.weight) > 0  # the zero projection learned


def test_conditioners_are_saved_and_loaded_as_components_of_their_own(tmp_path: Path) -> None:
    c = FAMILIES["top_prior"]()
    conditioners = _set(c)
    torch.nn.init.normal_(conditioners.net("midi").proj_out.weight)
    names = save_conditioners(tmp_path, conditioners)
    assert names == [f"conditioner.level{c.level}.midi", f"conditioner.level{c.level}.grid"]
    loaded = load_conditioners(tmp_path, c.level).eval()
    assert loaded.configs() == conditioners.configs()
    with torch.no_grad():
        a, b = conditioners.eval()(_conditions(c)), loaded(_conditions(c))
    assert a is not None and b is not None and torch.equal(a, b)
    assert load_conditioners(tmp_path, 0).names == ()  # no conditioner for that level
    save_component(tmp_path, f"conditioner.level{c.level}.bad", "feature-conditioner", {"name": "bad", "kind": "x"}, {})
    with pytest.raises(CheckpointError, match="conditioner.level2.bad"):
        load_conditioners(tmp_path, c.level)


def test_bad_configs_are_named() -> None:
    with pytest.raises(ConfigError, match="kind 'audio'"):
        ConditionerConfig("x", "audio", 4, 32, 2)
    with pytest.raises(ConfigError, match="kernel = 4 must be odd"):
        ConditionerConfig("midi", "midi", 4, 32, 2, kernel=4)
    with pytest.raises(ConfigError, match="a midi conditioner is named 'midi'"):
        ConditionerConfig("x", "midi", 4, 32, 2)
    with pytest.raises(ConfigError, match="a stem conditioner is named after its stem"):
        ConditionerConfig("grid", "stem", 4, 32, 2)
    with pytest.raises(ConfigError, match="name 'Drums!'"):
        ConditionerConfig("Drums!", "stem", 4, 32, 2)
    with pytest.raises(InputError, match=r"extra conditioning must be \(batch, 32, 32\)"):
        JukeboxPrior(FAMILIES["top_prior"]()).conditioning(inputs(FAMILIES["top_prior"]())[1], None, torch.zeros(2, 31, 32))
