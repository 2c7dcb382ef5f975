"""Low-rank attention adapters (issue 9): attached untrained they leave a prior's outputs bit-identical (full
pass, cached and static single-code steps, the compiled step), trained they change them; with the prior
frozen only adapters and conditioners learn; they are saved and loaded apart from the prior's weights."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor

from common.errors import CheckpointError, ConfigError, InputError
from model.checkpoint.model_dir import read_manifest, save_component
from model.conditioners import ConditionerConfig, ConditionerSet, ConditionInput, freeze_except
from model.conditioners.lora import LoraConfig, LoraConv1D, LoraSet, attach_lora, detach_lora
from model.conditioners.lora_store import load_lora, save_lora
from model.conditioners.store import save_conditioners
from model.prior.fast_step import FastStep
from model.prior.prior import JukeboxPrior
from model.prior.prior_config import PriorConfig
from model.sampling.jukebox import JukeboxLevel
from tests.model.prior.test_fast_step import _has_cxx
from tests.model.prior.test_prior import FAMILIES, inputs, randomised


def _prior(c: PriorConfig) -> JukeboxPrior:
    torch.manual_seed(0)
    return randomised(c)


def _wake(lora: LoraSet, seed: int = 1) -> None:
    """As if trained: the zero ``up`` projections get weights, so the adapters change the outputs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(lora.named_parameters()):
            if name.endswith(".up"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def _logits(prior: JukeboxPrior, codes: Tensor, labels: Tensor, upper: Tensor | None) -> Tensor:
    with torch.no_grad():
        out = prior(codes, prior.conditioning(labels, upper), return_logits=True).logits
    assert out is not None
    return out


def _sampled(prior: JukeboxPrior, codes: Tensor, labels: Tensor, upper: Tensor | None) -> Tensor:
    """Logits of JukeboxLevel's cached window (a chunk, then single codes) and of the static single-code
    step (``FastStep`` without compiling), stacked: (2, N, steps, V)."""
    out = []
    with torch.inference_mode():
        out.append(_window(JukeboxLevel(prior, step="eager"), codes, labels, upper, first=5, stop=12))
        cond, cache = prior.conditioning(labels, upper), prior.new_cache(codes.shape[0], torch.float32)
        fast = FastStep(prior.prior, cache, compile=False)
        rows = [prior.logits_step(codes[:, :5], cond, cache, fast)]
        rows += [prior.logits_step(codes[:, t : t + 1], cond, cache, fast) for t in range(5, 12)]
        out.append(torch.stack(rows, 1))
    return torch.stack(out)


def _window(level: JukeboxLevel, codes: Tensor, labels: Tensor, upper: Tensor | None, first: int, stop: int) -> Tensor:
    """What the sampler sees: codes[:, :first] in one chunk, then single codes up to ``stop``; (N, rows, V)."""
    session = level.open_window(labels, upper, codes.shape[0])
    rows = [session.feed(codes[:, :first])]
    rows += [session.feed(codes[:, t : t + 1]) for t in range(first, stop)]
    return torch.stack(rows, 1)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_untrained_adapters_leave_the_prior_bit_identical_on_every_path(family: str) -> None:
    c = FAMILIES[family]()
    prior = _prior(c)
    codes, labels, upper = inputs(c)
    before = prior.state_dict()
    plain, plain_sampled = _logits(prior, codes, labels, upper), _sampled(prior, codes, labels, upper)
    lora = attach_lora(prior, LoraConfig(level=c.level, rank=4))
    assert len(lora.adapters) == 2 * c.transformer.depth
    after = prior.state_dict()  # the base weights, under the same keys, and nothing else
    assert list(after) == list(before) and all(after[k].data_ptr() == before[k].data_ptr() for k in before)
    assert torch.equal(_logits(prior, codes, labels, upper), plain)
    assert torch.equal(_sampled(prior, codes, labels, upper), plain_sampled)
    _wake(lora)
    woken = _sampled(prior, codes, labels, upper)
    assert not torch.allclose(_logits(prior, codes, labels, upper), plain, atol=1e-3)
    assert not torch.allclose(woken, plain_sampled, atol=1e-3)
    torch.testing.assert_close(woken[1], woken[0], rtol=1e-4, atol=1e-4)  # static step = sliced step
    full = _logits(prior, codes, labels, upper)[:, c.prime_len :]
    if c.lyrics.kind != "merged":  # cached steps with adapters = the full pass with them (row i: code 5 + i)
        torch.testing.assert_close(woken[0], full[:, 5:13], rtol=1e-4, atol=1e-4)


def test_adapters_follow_the_prior_into_bf16() -> None:
    c = FAMILIES["top_prior"]()
    prior = _prior(c)
    codes, labels, upper = inputs(c)
    lora = attach_lora(prior, LoraConfig(level=c.level))
    prior.to(torch.bfloat16)
    plain = _logits(prior, codes, labels, upper)
    _wake(lora)
    assert lora.adapter(0, "qkv").up.dtype == torch.float32  # cast on the fly, kept in fp32 for training
    woken = _logits(prior, codes, labels, upper)
    assert torch.isfinite(woken).all() and not torch.allclose(woken, plain, atol=1e-2)


def test_targets_and_layer_subsets_wrap_only_those_projections() -> None:
    c = FAMILIES["separate_lyrics"]()  # cross-attention layers: "qkv" is their query projection
    prior = _prior(c)
    lora = attach_lora(prior, LoraConfig(level=c.level, targets=("proj",), layers=(3, 1)))
    assert sorted(lora.adapters) == ["layer1_proj", "layer3_proj"]
    wrapped = [
        (i, name) for i, block in enumerate(prior.prior.transformer.blocks)
        for name in ("c_attn", "c_proj") if isinstance(getattr(block.attn, name), LoraConv1D)
    ]  # fmt: skip
    assert wrapped == [(1, "c_proj"), (3, "c_proj")]
    assert not any(isinstance(m, LoraConv1D) for m in prior.prime_prior.modules())  # lyrics encoder: untouched
    with pytest.raises(InputError, match="attached already"):
        attach_lora(prior, LoraConfig(level=c.level))
    with pytest.raises(InputError, match=rf"layers \[{c.transformer.depth}\] do not exist"):
        attach_lora(_prior(c), LoraConfig(level=c.level, layers=(0, c.transformer.depth)))
    with pytest.raises(InputError, match="level 0 cannot attach to the level-2 prior"):
        attach_lora(_prior(c), LoraConfig(level=0))


def test_frozen_prior_trains_only_adapters_and_conditioners() -> None:
    c = FAMILIES["upsampler"]()
    prior = _prior(c).train()
    lora = attach_lora(prior, LoraConfig(level=c.level, rank=2))
    grid_config = ConditionerConfig("grid", "grid", 6, c.transformer.width, c.level, dropout=0.0)
    conditioners = ConditionerSet([grid_config])
    assert freeze_except(prior, [conditioners, lora]) == 0  # adapters and conditioners live beside the prior
    trainable = {id(p) for m in (lora, conditioners) for p in m.parameters()}
    every = [*prior.parameters(), *lora.parameters(), *conditioners.parameters()]
    assert {id(p) for p in every if p.requires_grad} == trainable
    before = {k: v.clone() for k, v in prior.state_dict().items()}
    codes, labels, upper = inputs(c)
    frames = torch.rand(2, c.n_ctx, 6, generator=torch.Generator().manual_seed(0))  # (N, T, F)
    grid = {"grid": ConditionInput(frames, torch.ones(2, c.n_ctx))}
    opt = torch.optim.SGD([*lora.parameters(), *conditioners.parameters()], lr=0.5)
    for step in range(2):
        opt.zero_grad()
        prior(codes, prior.conditioning(labels, upper, conditioners(grid))).loss.backward()
        assert all(p.grad is None for p in prior.parameters())
        assert all(p.grad is not None for p in lora.parameters())
        grads = {n: p.grad for n, p in lora.named_parameters()}
        assert all(g is not None and bool(g.abs().sum() > 0) for n, g in grads.items() if n.endswith(".up"))
        proj_out = conditioners.net("grid").proj_out.weight.grad
        assert proj_out is not None and torch.count_nonzero(proj_out) > 0
        if step == 1:  # once ``up`` has moved off zero, ``down`` learns too
            assert all(g is not None and bool(g.abs().sum() > 0) for n, g in grads.items() if n.endswith(".down"))
        opt.step()
    assert all(torch.equal(before[k], v) for k, v in prior.state_dict().items())


def test_adapters_are_saved_and_loaded_apart_from_the_prior(tmp_path: Path) -> None:
    c = FAMILIES["top_prior"]()
    prior = _prior(c)
    codes, labels, upper = inputs(c)
    plain = _logits(prior, codes, labels, upper)
    config = LoraConfig(level=c.level, rank=3, alpha=6.0, layers=(0, 2))
    lora = attach_lora(prior, config)
    _wake(lora)
    adapted = _logits(prior, codes, labels, upper)
    grid = ConditionerConfig("grid", "grid", 6, c.transformer.width, c.level)
    save_conditioners(tmp_path, ConditionerSet([grid]))  # another component beside it
    assert save_lora(tmp_path, lora) == "adapter.level2"
    entry = read_manifest(tmp_path).component("adapter.level2", tmp_path)
    assert entry.kind == "lora-adapter"
    assert json.loads((tmp_path / entry.config_file).read_text())["config"] == config.to_dict()
    fresh = _prior(c)
    assert load_lora(tmp_path, 0, fresh) is None  # no adapters for that level: the prior loads as before
    assert not any(isinstance(m, LoraConv1D) for m in fresh.modules())
    loaded = load_lora(tmp_path, c.level, fresh)
    assert loaded is not None and loaded.config == config
    assert torch.equal(_logits(fresh, codes, labels, upper), adapted)
    detach_lora(fresh)  # the plain projections again: exactly the prior without adapters
    assert torch.equal(_logits(fresh, codes, labels, upper), plain)


@pytest.mark.parametrize(
    ("config", "state", "message"),
    [
        ({"level": 2, "rank": 4}, "rank 2", "adapter.level2: weights do not fit its config"),
        ({"level": 2, "layers": [9]}, "ok", r"adapter.level2 does not fit this prior: adapter layers \[9\]"),
        ({"level": 2, "rank": 0}, "ok", "adapter.level2: adapters: rank = 0"),
        ({"level": 2, "dropout": 0.1}, "ok", r"adapter.level2: adapter config: unknown field\(s\) \['dropout'\]"),
        ({"level": 1}, "ok", "adapter.level2 holds adapters of level 1"),
        ({"level": 2}, "nan", "adapter.level2: adapter weights that are not finite floats: adapters.layer0_qkv.up"),
        ({"level": 2}, "missing", "adapter.level2: weights do not fit its config"),
    ],
)
def test_bad_adapter_components_are_named_and_leave_the_prior_alone(
    tmp_path: Path, config: dict[str, object], state: str, message: str
) -> None:
    c = FAMILIES["top_prior"]()
    good = attach_lora(_prior(c), LoraConfig(level=c.level, rank=2 if state == "rank 2" else 8)).state_dict()
    weights = {k: v.clone() for k, v in good.items()}
    if state == "nan":
        weights["adapters.layer0_qkv.up"][0, 0] = float("nan")
    if state == "missing":
        del weights["adapters.layer1_proj.down"]
    save_component(tmp_path, "adapter.level2", "lora-adapter", config, weights)
    prior = _prior(c)
    with pytest.raises(CheckpointError, match=message):
        load_lora(tmp_path, c.level, prior)
    assert not any(isinstance(m, LoraConv1D) for m in prior.modules())
    save_component(tmp_path, "adapter.level2", "feature-conditioner", {"level": 2}, {})
    with pytest.raises(CheckpointError, match="adapter.level2 is of kind 'feature-conditioner'"):
        load_lora(tmp_path, c.level, prior)


def test_merging_keeps_what_the_adapters_learned() -> None:
    c = FAMILIES["merged_lyrics"]()
    prior = _prior(c)
    codes, labels, upper = inputs(c)
    _wake(attach_lora(prior, LoraConfig(level=c.level, targets=("qkv",))))
    adapted = _logits(prior, codes, labels, upper)
    detach_lora(prior, merge=True)
    assert not any(isinstance(m, LoraConv1D) for m in prior.modules())
    torch.testing.assert_close(_logits(prior, codes, labels, upper), adapted, rtol=1e-4, atol=1e-4)


def test_bad_configs_are_named() -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (dict(rank=0), "rank = 0 must be a whole number in 1..256"),
        (dict(rank=257), "rank = 257"),
        (dict(alpha=0.0), "alpha = 0.0 must be a positive finite number"),
        (dict(alpha=float("inf")), "alpha = inf"),
        (dict(targets=("mlp",)), r"targets \['mlp'\] must be one or more of qkv, proj"),
        (dict(targets=("qkv", "qkv")), "each once"),
        (dict(targets=()), "one or more"),
        (dict(layers=(-1,)), r"layers \[-1\] must be distinct layer indices"),
        (dict(layers=(2, 2)), "distinct"),
        (dict(level=8), "level = 8 is outside 0..7"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ConfigError, match=message):
            LoraConfig(**{"level": 2, **kwargs})
    config = LoraConfig(level=1, rank=16, alpha=4, targets=("proj", "qkv"), layers=(5, 0))
    assert config.layers == (0, 5) and config.scale == 0.25
    assert LoraConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


@pytest.mark.compile
@pytest.mark.slow  # ~20-40 s: compiles a tiny upsampler's single-code step
@pytest.mark.skipif(not _has_cxx(), reason="torch.compile on CPU needs a C++ compiler (g++/clang++)")
def test_the_compiled_step_runs_the_adapters() -> None:
    c = FAMILIES["upsampler"]()
    codes, labels, upper = inputs(c)
    out = {}
    for step in ("eager", "compiled"):
        prior = _prior(c)
        _wake(attach_lora(prior, LoraConfig(level=c.level, rank=2)))
        level = JukeboxLevel(prior, step=step)  # after attaching: the compiled graph traces the adapters
        with torch.inference_mode():
            out[step] = _window(level, codes, labels, upper, first=3, stop=10)
        assert (level._fast is not None and level._fast.compiled) == (step == "compiled")
    with torch.inference_mode():
        plain = _window(JukeboxLevel(_prior(c), step="eager"), codes, labels, upper, first=3, stop=10)
    assert not torch.allclose(out["eager"], plain, atol=1e-3)
    torch.testing.assert_close(out["compiled"], out["eager"], rtol=1e-4, atol=1e-4)
