"""Conditions and classifier-free guidance through a level's cached sampling window (issue 9)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.errors import InputError
from model.conditioners import ConditionerConfig, ConditionerSet
from model.conditioners.window import LevelConditions, LevelFeatures
from model.prior import presets
from model.prior.prior import fold_merged_logits
from model.sampling.jukebox import JukeboxLevel
from model.sampling.params import Guidance, SamplingParams
from tests.helpers.factories import build, tiny_labels
from tests.model.prior.test_fast_step import _has_cxx

F = 6


def _level(config, woken: bool = True, step: str = "eager") -> JukeboxLevel:  # type: ignore[no-untyped-def]
    conditioners = ConditionerSet([ConditionerConfig("grid", "grid", F, config.transformer.width, config.level)])
    if woken:  # as if trained: the condition changes the logits
        torch.nn.init.normal_(conditioners.net("grid").proj_out.weight, std=0.5)
    level = JukeboxLevel(build(config), step=step, conditioners=conditioners)
    level.use_precision("fp32")
    return level


def _conditions(config, total: int, guidance: dict[str, float] | None = None) -> LevelConditions:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    frames = rng.random((total, F), dtype=np.float32)
    return LevelConditions({"grid": LevelFeatures(frames, np.ones(total, np.float32))}, guidance or {})


def _inputs(config, b: int = 2):  # type: ignore[no-untyped-def]
    labels = tiny_labels({config.level: config})[config.level] if config.labels.enabled else None
    y = labels.for_window(0).y.expand(b, -1) if labels else None
    upper = torch.randint(0, config.n_bins, (b, config.n_ctx // 4)) if config.is_upsampler else None
    codes = torch.randint(0, config.n_bins, (b, 9))
    return y, upper, codes


def _feed(level: JukeboxLevel, y, upper, codes, conditions) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Logits after feeding ``codes`` in a chunk and then one by one (the cache and the single-code step)."""
    session = level.open_window(y, upper, codes.shape[0], conditions)
    rows = [session.feed(codes[:, :5])]
    for t in range(5, codes.shape[1]):
        rows.append(session.feed(codes[:, t : t + 1]))
    return torch.stack(rows, 1)


FAMILIES = [presets.tiny_prior(), presets.tiny_upsampler(0), presets.tiny_prior_merged(), presets.tiny_prior_separate()]


@pytest.mark.parametrize("config", FAMILIES, ids=["top", "upsampler", "1b_lyrics_family", "5b_lyrics_family"])
def test_guided_logits_are_conditioned_plus_scale_times_the_difference(config) -> None:  # type: ignore[no-untyped-def]
    level = _level(config)
    y, upper, codes = _inputs(config)
    cond = _conditions(config, config.n_ctx)
    with torch.inference_mode():
        plain = _feed(level, y, upper, codes, None)  # no condition at all: the unconditioned logits
        conditioned = _feed(level, y, upper, codes, cond.window(0, config.n_ctx, 2))
        zero = _feed(level, y, upper, codes, _conditions(config, config.n_ctx, {"grid": 0.0}).window(0, config.n_ctx, 2))
        guided = _feed(level, y, upper, codes, _conditions(config, config.n_ctx, {"grid": 2.0}).window(0, config.n_ctx, 2))
    assert not torch.allclose(conditioned, plain)
    assert torch.equal(zero, conditioned)  # scale 0: exactly the logits without guidance
    expected = conditioned + 2.0 * (conditioned - plain)
    finite = torch.isfinite(expected)
    assert torch.allclose(guided[finite], expected[finite], atol=1e-4, rtol=1e-4)


def test_the_cached_conditioned_window_matches_the_full_pass() -> None:
    config = presets.tiny_prior()
    level = _level(config)
    y, _, codes = _inputs(config)
    window = _conditions(config, config.n_ctx).window(0, config.n_ctx, 2)
    with torch.inference_mode():
        stepped = _feed(level, y, None, codes, window)
        extra = level.conditioners(window.inputs)  # type: ignore[misc]
        padded = torch.cat([codes, codes.new_zeros(2, 1)], dim=1)
        full = level.prior(padded, level.prior.conditioning(y, None, extra), return_logits=True).logits
    assert full is not None
    if config.lyrics.kind == "merged":
        full = fold_merged_logits(full, config.lyrics.n_vocab)
    assert torch.allclose(stepped, full[:, 5 : codes.shape[1] + 1], atol=1e-4)  # row i predicts code 5 + i


def test_untrained_conditioners_leave_sampling_bit_identical() -> None:
    config = presets.tiny_prior()
    level = _level(config, woken=False)
    y, _, codes = _inputs(config)
    window = _conditions(config, config.n_ctx).window(0, config.n_ctx, 2)
    with torch.inference_mode():
        assert torch.equal(_feed(level, y, None, codes, window), _feed(level, y, None, codes, None))


def test_windows_past_the_end_are_padded_with_no_coverage_and_bad_guidance_is_named() -> None:
    config = presets.tiny_prior()
    cond = _conditions(config, 40)
    w = cond.window(30, config.n_ctx, 1)
    assert w.inputs["grid"].coverage[0, :10].eq(1).all() and w.inputs["grid"].coverage[0, 10:].eq(0).all()
    with pytest.raises(InputError, match="guidance for midi, but the job has no such condition"):
        LevelConditions(cond.features, {"midi": 1.0})
    with pytest.raises(InputError, match="no conditioners for grid"):
        JukeboxLevel(build(config), step="eager").open_window(None, None, 1, w)
    with pytest.raises(InputError, match="guidance scale 50.0 for 'midi' is out of range"):
        SamplingParams(guidance=(Guidance("midi", 50.0),))
    params = SamplingParams(guidance=(Guidance("midi", 1.5), Guidance("midi", 3.0, level=0), Guidance("drums", 2.0, level=1)))
    assert params.guidance_at(0) == {"midi": 3.0} and params.guidance_at(1) == {"midi": 1.5, "drums": 2.0}
    assert SamplingParams.from_dict(params.to_dict()).guidance == params.guidance


@pytest.mark.compile
@pytest.mark.slow  # ~20-40 s: compiles a tiny prior's single-code step at the doubled batch
@pytest.mark.skipif(not _has_cxx(), reason="torch.compile on CPU needs a C++ compiler (g++/clang++); none on PATH")
def test_guidance_runs_through_the_compiled_step() -> None:
    config = presets.tiny_upsampler(0)
    y, upper, codes = _inputs(config)
    window = _conditions(config, config.n_ctx, {"grid": 1.5}).window(0, config.n_ctx, 2)
    out = {}
    for step in ("eager", "compiled"):
        torch.manual_seed(0)
        level = _level(config, step=step)
        with torch.inference_mode():
            out[step] = _feed(level, y, upper, codes, window)
        assert (level._fast is not None and level._fast.compiled) == (step == "compiled")
        assert level._cache is not None and level._cache.batch == 4  # conditioned and unconditioned rows
    assert torch.allclose(out["eager"], out["compiled"], atol=1e-4)
