"""The static-shape single-token step (eager and compiled): same logits as the sliced cached step and the full
pass; the step strategies and their fallback."""

from __future__ import annotations

import pytest
import torch

from common.errors import InputError
from model.prior.autoregressive import ConditionalAutoregressive
from model.prior.cache import KVCache
from model.prior.config import AttnFunc, AutoregressiveConfig, TransformerConfig
from model.prior.fast_step import FastStep, compile_support, resolve_step
from model.sampling.ar_session import CachedSession
from model.sampling.logits import draw_uniforms, make_generators
from model.sampling.session import Draw, sample_window

# every attention type a released layout decodes with: 1,2,3 (upsamplers, 5b), 0, 4 (summary), 6 (5b_lyrics
# cross-attention), 7 (1b_lyrics prime attention)
LAYOUTS = {
    "upsampler": dict(n_ctx=48, width=16, depth=3, heads=2, attn_order=2, blocks=6),
    "dense": dict(n_ctx=40, width=16, depth=4, heads=2, attn_order=9, blocks=5),
    "summary": dict(n_ctx=40, width=16, depth=2, heads=1, attn_order=3, blocks=5),
    "5b_lyrics": dict(n_ctx=40, width=16, depth=20, heads=2, attn_order=10, blocks=5, encoder_dims=6),
    "1b_lyrics": dict(n_ctx=40, width=16, depth=16, heads=2, attn_order=12, blocks=5, prime_len=12),
}


def make_model(name: str, merged_decoder: bool = False) -> ConditionalAutoregressive:
    torch.manual_seed(0)
    tc = TransformerConfig(**LAYOUTS[name])  # type: ignore[arg-type]
    model = ConditionalAutoregressive(AutoregressiveConfig(tc, bins=11, merged_decoder=merged_decoder)).eval()
    with torch.no_grad():  # zero-initialised projections would hide attention bugs
        for block in model.transformer._attn_mods:
            torch.nn.init.normal_(block.attn.c_proj.w, std=0.2)
            torch.nn.init.normal_(block.mlp.c_proj.w, std=0.2)
    return model


def stepper(model: ConditionalAutoregressive, cache: KVCache, fast: FastStep | None, **cond: torch.Tensor | None):  # type: ignore[no-untyped-def]
    """(B, T) -> (B, V) next-token logits, single tokens after position 0 through ``fast`` (as logits_step)."""

    def feed(t: torch.Tensor) -> torch.Tensor:
        if fast is not None and cache.length > 0 and t.shape[1] == 1:
            return fast(t, cond.get("x_cond"))
        return model.step(t, cache, **cond)[:, -1]

    return feed


def test_layouts_cover_every_cached_attention_type() -> None:
    used = {f for name in LAYOUTS for f in TransformerConfig(**LAYOUTS[name]).layer_attn_funcs}  # type: ignore[arg-type]
    assert used == set(AttnFunc) - {AttnFunc.SUMMARY_SPREAD}


@pytest.mark.parametrize("name", sorted(LAYOUTS))
def test_static_step_equals_sliced_step_and_full_pass(name: str) -> None:
    model = make_model(name, merged_decoder=name == "5b_lyrics")
    n, L, W = 3, model.n_ctx, model.width
    enc_dims = LAYOUTS[name].get("encoder_dims", 0)
    plain, fast = model.new_cache(n, torch.float32), model.new_cache(n, torch.float32)
    step = FastStep(model, fast, compile=False)
    with torch.no_grad():
        for window in range(3):  # the cache is reused: every window starts at a different prefix length
            x = torch.randint(0, 11, (n, L))
            y, xc = torch.randn(n, 1, W), torch.randn(n, L, W)
            enc = torch.randn(n, enc_dims, W) if enc_dims else None
            full = model(x, x_cond=xc, y_cond=y, encoder_kv=enc)  # (n, L, bins)
            for cache in (plain, fast):
                cache.reset()
                first = 2 + 5 * window
                outs = [model.step(x[:, :first], cache, x_cond=xc, y_cond=y, encoder_kv=enc)]
                for t in range(first, L - 1):
                    token = x[:, t : t + 1]
                    outs.append(step(token, xc)[:, None] if cache is fast else model.step(token, cache, x_cond=xc))
                torch.testing.assert_close(torch.cat(outs, 1), full, atol=1e-5, rtol=1e-5)
                assert cache.length == L


def test_static_step_broadcast_x_cond_and_no_cond() -> None:
    model = make_model("upsampler")
    x, y = torch.randint(0, 11, (2, 48)), torch.randn(2, 1, 16)
    for xc in (torch.randn(2, 1, 16), None):
        cache = model.new_cache(2, torch.float32)
        step = FastStep(model, cache, compile=False)
        with torch.no_grad():
            outs = [model.step(x[:, :1], cache, x_cond=xc, y_cond=y)]
            outs += [step(x[:, t : t + 1], xc)[:, None] for t in range(1, 47)]
            torch.testing.assert_close(torch.cat(outs, 1), model(x, x_cond=xc, y_cond=y), atol=1e-5, rtol=1e-5)


def test_bfloat16_static_step_matches_the_sliced_step() -> None:
    model = make_model("1b_lyrics").to(torch.bfloat16)
    x, y = torch.randint(0, 11, (2, 40)), torch.randn(2, 1, 16, dtype=torch.bfloat16)
    outs = {}
    for fast in (False, True):
        cache = model.new_cache(2, torch.bfloat16)
        feed = stepper(model, cache, FastStep(model, cache, compile=False) if fast else None)
        with torch.no_grad():
            steps = [model.step(x[:, :3], cache, y_cond=y)[:, -1]] + [feed(x[:, t : t + 1]) for t in range(3, 39)]
        outs[fast] = torch.stack(steps, 1)
    torch.testing.assert_close(outs[True], outs[False], atol=2e-2, rtol=2e-2)  # bf16 sums in another order


def test_sampled_tokens_are_identical_with_the_fast_step() -> None:
    model = make_model("upsampler")
    y, xc = torch.randn(4, 1, 16), torch.randn(4, 48, 16)
    context = torch.randint(0, 11, (4, 9))
    tokens = {}
    for fast in (False, True):
        cache = model.new_cache(4, torch.float32)
        feed = stepper(model, cache, FastStep(model, cache, compile=False) if fast else None, x_cond=xc, y_cond=y)
        u = draw_uniforms(make_generators([1, 2, 3, 4]), 38)
        with torch.inference_mode():
            tokens[fast] = sample_window(CachedSession(feed, cache), context, u, Draw(chunk_size=4))
    assert torch.equal(tokens[True], tokens[False])


def _has_cxx() -> bool:
    import shutil

    return any(shutil.which(c) for c in ("g++", "c++", "clang++"))


def test_step_strategies_resolve_by_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    from model.prior import fast_step

    assert resolve_step("eager", "cpu") == "eager"
    monkeypatch.setattr(fast_step, "compile_support", lambda device: None)
    assert resolve_step("auto", "cpu") == resolve_step("compiled", "cpu") == "compiled"
    monkeypatch.setattr(fast_step, "compile_support", lambda device: "no C++ compiler here")
    assert resolve_step("auto", "cpu") == "eager"
    with pytest.raises(InputError, match="step 'compiled' cannot be used here: no C\\+\\+ compiler here"):
        resolve_step("compiled", "cpu")
    with pytest.raises(InputError, match="auto, compiled, eager"):
        resolve_step("fast", "cpu")


def test_compile_support_names_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import shutil

    import torch._dynamo

    with torch._dynamo.config.patch(disable=True):
        assert "torch.compile is disabled (TORCH_COMPILE_DISABLE=1" in str(compile_support("cpu"))
    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.delenv("CXX", raising=False)
    with torch._dynamo.config.patch(disable=False):
        assert "needs a C++ compiler" in str(compile_support("cpu"))
        assert "not tried on meta" in str(compile_support("meta"))


def test_a_failing_compiler_falls_back_to_the_eager_step(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> object:
        def fail(*a: object) -> None:
            raise RuntimeError("no compiler here")

        return fail

    monkeypatch.setattr(torch, "compile", broken)
    model = make_model("upsampler")
    x, y = torch.randint(0, 11, (2, 48)), torch.randn(2, 1, 16)
    cache = model.new_cache(2, torch.float32)
    step = FastStep(model, cache, compile=True)
    with torch.no_grad():
        outs = [model.step(x[:, :4], cache, y_cond=y)] + [step(x[:, t : t + 1], None)[:, None] for t in range(4, 47)]
    torch.testing.assert_close(torch.cat(outs, 1), model(x, y_cond=y), atol=1e-5, rtol=1e-5)
    assert not step.compiled and step.error == "RuntimeError: no compiler here"


@pytest.mark.compile
@pytest.mark.slow  # ~50 s: inductor compiles a 16-layer graph with gcc
@pytest.mark.skipif(not _has_cxx(), reason="torch.compile on CPU needs a C++ compiler (g++/clang++); none on PATH")
def test_compiled_step_matches_eager_without_recompiling() -> None:
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    counters.clear()
    model = make_model("1b_lyrics")
    n, L = 2, model.n_ctx
    plain, fast = model.new_cache(n, torch.float32), model.new_cache(n, torch.float32)
    step = FastStep(model, fast, compile=True)
    with torch.no_grad():
        for window in range(3):
            x, y, xc = torch.randint(0, 11, (n, L)), torch.randn(n, 1, 16), torch.randn(n, L, 16)
            outs = []
            for cache in (plain, fast):
                cache.reset()
                feed = stepper(model, cache, step if cache is fast else None, x_cond=xc, y_cond=y)
                outs.append(torch.stack([feed(x[:, : 1 + window])] + [feed(x[:, t : t + 1]) for t in range(1 + window, L - 1)], 1))
            torch.testing.assert_close(outs[1], outs[0], atol=1e-5, rtol=1e-5)
        for n_new in (5, 17):  # the sampler feeds views of its token buffer: other strides every window
            y, xc, context = torch.randn(n, 1, 16), torch.randn(n, L, 16), torch.randint(0, 11, (n, 3))
            tokens = []
            for cache in (plain, fast):
                u = draw_uniforms(make_generators([7, 8]), n_new)
                feed = stepper(model, cache, step if cache is fast else None, x_cond=xc, y_cond=y)
                tokens.append(sample_window(CachedSession(feed, cache), context, u, Draw(chunk_size=2)))
            assert torch.equal(tokens[0], tokens[1])
    assert step.compiled and step.error is None
    assert counters["stats"]["unique_graphs"] == 1  # traced once: every position and window reuses the graph


@pytest.mark.compile
@pytest.mark.slow  # ~30 s: two compiles of a 3-layer graph
@pytest.mark.skipif(not _has_cxx(), reason="torch.compile on CPU needs a C++ compiler (g++/clang++); none on PATH")
def test_each_fast_step_uses_its_own_weights() -> None:
    """Weights are frozen into the graph: a second model of the same shapes must not reuse the first graph."""
    torch._dynamo.reset()
    x, y = torch.randint(0, 11, (2, 48)), torch.randn(2, 1, 16)
    for seed in (1, 2):
        model = make_model("upsampler")
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(std=0.3, generator=torch.Generator().manual_seed(seed))
        with torch.inference_mode():  # as the sampler runs: cache, step and calls in inference mode
            cache = model.new_cache(2, torch.float32)
            step = FastStep(model, cache, compile=True)
            outs = [model.step(x[:, :4], cache, y_cond=y)] + [step(x[:, t : t + 1], None)[:, None] for t in range(4, 47)]
            torch.testing.assert_close(torch.cat(outs, 1), model(x, y_cond=y), atol=1e-5, rtol=1e-5)
        assert step.compiled


@pytest.mark.compile
@pytest.mark.slow  # ~20-60 s: compiles two tiny priors' steps
@pytest.mark.skipif(not _has_cxx(), reason="torch.compile on CPU needs a C++ compiler (g++/clang++); none on PATH")
@pytest.mark.parametrize("family", ["upsampler", "1b_lyrics_family"])
def test_engine_level_samples_the_same_codes_compiled(family: str) -> None:
    from model.prior import presets
    from model.sampling.jukebox import JukeboxLevel
    from tests.helpers.factories import build, tiny_labels

    config = presets.tiny_upsampler(0) if family == "upsampler" else presets.tiny_prior_merged()
    labels = tiny_labels({config.level: config}, lyrics="la la la")[config.level]
    y = labels.for_window(0).y.expand(2, -1)
    upper = torch.randint(0, config.n_bins, (2, config.n_ctx // 4)) if config.is_upsampler else None
    context = torch.randint(0, config.n_bins, (2, 5))
    codes = []
    for step in ("eager", "compiled"):
        level = JukeboxLevel(build(config), step=step)
        with torch.inference_mode():
            for _window in range(2):  # the second window re-uses the cache and the compiled graph
                u = draw_uniforms(make_generators([1, 2]), 20)
                codes.append(sample_window(level.open_window(y, upper, 2), context, u, Draw(chunk_size=3)))
        assert level.step == step and (level._fast is not None and level._fast.compiled) == (step == "compiled")
    assert all(torch.equal(codes[i], codes[i + 2]) for i in range(2))
