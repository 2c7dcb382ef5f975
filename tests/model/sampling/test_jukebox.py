"""The engine on real (tiny, random) Jukebox priors of every family."""

import pytest
import torch

from common.errors import Cancelled, InputError
from common.progress import CancelToken, Progress
from model.prior import presets
from model.prior.prior import fold_merged_logits
from model.sampling.logits import draw_uniforms, make_generators, sample_from_logits
from model.sampling.params import SamplingParams
from model.sampling.session import Draw, sample_window
from tests.helpers.factories import build, tiny_configs, tiny_geometry, tiny_labels, tiny_levels
from tests.helpers.sampling import sample_all

FP32 = SamplingParams(precision="fp32", n_candidates=2, seed=3, chunk_size=5)
LENGTH = 2048  # samples: top 16 tokens (one partial window), level 1 64 tokens (3 windows), level 0 256 (15)


def slow_reference(prior, cond, context, uniforms):  # type: ignore[no-untyped-def]
    """Full forward over the whole prefix for every new token: no cache."""
    seq = context.clone()
    for i in range(uniforms.shape[1]):
        padded = torch.cat([seq, seq.new_zeros(seq.shape[0], 1)], dim=1)  # (B, t + 1); last entry unused
        logits = prior(padded, cond, return_logits=True).logits[:, -1]  # (B, V)
        if prior.config.lyrics.kind == "merged":
            logits = fold_merged_logits(logits, prior.config.lyrics.n_vocab)
        seq = torch.cat([seq, sample_from_logits(logits, uniforms[:, i])[:, None]], dim=1)
    return seq[:, context.shape[1] :]


@pytest.mark.parametrize(
    "config", [presets.tiny_prior(), presets.tiny_upsampler(0), presets.tiny_prior_merged(), presets.tiny_prior_separate()],
    ids=["top", "upsampler", "1b_lyrics_family", "5b_lyrics_family"],
)  # fmt: skip
def test_cached_engine_window_matches_full_forward(config) -> None:  # type: ignore[no-untyped-def]
    from model.sampling.jukebox import JukeboxLevel

    level = JukeboxLevel(build(config))
    level.use_precision("fp32")
    labels = tiny_labels({config.level: config}, lyrics="la la la")[config.level] if config.labels.enabled else None
    b = 2
    y = labels.for_window(0).y.expand(b, -1) if labels else None
    upper = torch.randint(0, config.n_bins, (b, config.n_ctx // 4)) if config.is_upsampler else None
    context = torch.randint(0, config.n_bins, (b, 7))
    uniforms = draw_uniforms(make_generators([1, 2]), 12)
    with torch.inference_mode():
        fast = sample_window(level.open_window(y, upper, b), context, uniforms, Draw(chunk_size=3))
        slow = slow_reference(level.prior, level.prior.conditioning(y, upper), context, uniforms)
    assert torch.equal(fast, slow)


def test_ancestral_all_levels_reproducible_and_seed_dependent() -> None:
    configs = tiny_configs()
    geo, labels = tiny_geometry(configs), tiny_labels(configs)
    a = sample_all(tiny_levels(), geo, LENGTH, FP32, labels)
    assert [tuple(c.shape) for c in a.codes] == [(2, 256), (2, 64), (2, 16)]
    b = sample_all(tiny_levels(), geo, LENGTH, FP32, labels)
    assert all(torch.equal(x, y) for x, y in zip(a.codes, b.codes))
    c = sample_all(tiny_levels(), geo, LENGTH, SamplingParams(precision="fp32", n_candidates=2, seed=4), labels)
    assert not torch.equal(a.codes[0], c.codes[0])
    assert not torch.equal(a.codes[0][0], a.codes[0][1])  # candidates differ from each other


def test_candidate_independent_of_batch_split() -> None:
    configs = tiny_configs()
    geo, labels = tiny_geometry(configs), tiny_labels(configs)
    p = SamplingParams(precision="fp32", n_candidates=3, seeds=(7, 8, 9), max_batch_size=3)
    together = sample_all(tiny_levels(), geo, LENGTH, p, labels, lowest_level=1)
    split = sample_all(tiny_levels(), geo, LENGTH, SamplingParams(**{**p.__dict__, "max_batch_size": 1}), labels, lowest_level=1)
    alone = sample_all(tiny_levels(), geo, LENGTH, SamplingParams(precision="fp32", seeds=(8,)), labels, lowest_level=1)
    for lv in (1, 2):
        assert torch.equal(together.codes[lv], split.codes[lv])
        assert torch.equal(together.codes[lv][1], alone.codes[lv][0])


def test_upsample_and_continue_on_real_priors() -> None:
    configs = tiny_configs()
    geo, labels = tiny_geometry(configs), tiny_labels(configs)
    top = torch.randint(0, configs[2].n_bins, (1, 16))
    codes = [torch.zeros(1, 0, dtype=torch.long)] * 2 + [top]
    up = sample_all(tiny_levels(), geo, LENGTH, FP32, labels, codes=codes)
    assert [tuple(c.shape) for c in up.codes] == [(2, 256), (2, 64), (2, 16)]
    longer = sample_all(tiny_levels(), geo, LENGTH + 1024, FP32, labels, codes=up.codes)
    for lv in range(3):
        n = up.codes[lv].shape[1]
        assert torch.equal(longer.codes[lv][:, :n], up.codes[lv])
        assert longer.codes[lv].shape[1] == geo.tokens(LENGTH + 1024, lv)


def test_cancel_on_real_priors_then_reuse() -> None:
    configs = tiny_configs()
    geo, labels = tiny_geometry(configs), tiny_labels(configs)
    levels = tiny_levels()
    token = CancelToken()

    def progress(p: Progress) -> None:
        if p.level == 1 and p.done >= 10:
            token.cancel()

    with pytest.raises(Cancelled):
        sample_all(levels, geo, LENGTH, SamplingParams(precision="fp32", progress_every=1), labels, progress=progress, cancel=token)
    again = sample_all(levels, geo, LENGTH, SamplingParams(precision="fp32"), labels, lowest_level=1)
    fresh = sample_all(tiny_levels(), geo, LENGTH, SamplingParams(precision="fp32"), labels, lowest_level=1)
    assert torch.equal(again.codes[1], fresh.codes[1])


def test_bf16_is_close_to_fp32() -> None:
    """bf16 changes logits a little; measured here (see the report) and bounded loosely."""
    config = presets.tiny_prior()
    labels = tiny_labels({2: config})[2]
    y = labels.for_window(0).y[None]
    codes = torch.randint(0, config.n_bins, (1, 32))
    p32 = build(config)
    p16 = build(config).to(torch.bfloat16)
    with torch.inference_mode():
        l32 = p32(codes, p32.conditioning(y), return_logits=True).logits
        l16 = p16(codes, p16.conditioning(y), return_logits=True).logits
    diff = (l32 - l16.float()).abs()
    scale = l32.abs().max()
    rel = float(diff.max() / scale)
    agree = float((l32.argmax(-1) == l16.float().argmax(-1)).float().mean())
    print(f"bf16 vs fp32: max |dlogit| {float(diff.max()):.4f} ({rel:.3%} of max |logit| {float(scale):.2f}), argmax agreement {agree:.1%}")
    assert l16.dtype == torch.float32 or l16.dtype == torch.bfloat16
    assert torch.isfinite(l16).all()
    assert rel < 0.1 and agree > 0.7


def test_bf16_engine_runs_and_is_reproducible() -> None:
    configs = tiny_configs()
    geo, labels = tiny_geometry(configs), tiny_labels(configs)
    p = SamplingParams(n_candidates=2, seed=1, precision="bf16")
    a = sample_all(tiny_levels(), geo, LENGTH, p, labels)
    b = sample_all(tiny_levels(), geo, LENGTH, p, labels)
    assert all(torch.equal(x, y) for x, y in zip(a.codes, b.codes))
    assert all(int(c.max()) < configs[0].n_bins and int(c.min()) >= 0 for c in a.codes)
    fp32 = sample_all(tiny_levels(), geo, LENGTH, FP32, labels)
    same = float((fp32.codes[2] == sample_all(tiny_levels(), geo, LENGTH, SamplingParams(n_candidates=2, seed=3, precision="bf16"), labels).codes[2]).float().mean())
    print(f"bf16 vs fp32 top-level tokens identical (same seeds): {same:.0%}")


def _tensor_bytes(obj: object) -> dict[str, int]:
    """Bytes of every tensor an object holds in its attributes (one level of dicts/lists deep), by dtype."""
    held: dict[str, int] = {}
    values = list(vars(obj).values())
    for v in list(values):
        if isinstance(v, dict):
            values += list(v.values())
        elif isinstance(v, (list, tuple)):
            values += list(v)
    for v in values:
        if isinstance(v, torch.Tensor):
            held[str(v.dtype)] = held.get(str(v.dtype), 0) + v.numel() * v.element_size()
    return held


def test_a_bf16_switch_keeps_no_copy_of_the_fp32_weights() -> None:
    """The defect: the level kept a clone of every fp32 weight for its lifetime (twice the memory on a GPU)."""
    level = tiny_levels()[2]
    level.use_precision("bf16")
    assert level.dtype == torch.bfloat16 and level.precision == "bf16"
    assert _tensor_bytes(level) == {}  # the module's own (bf16) weights are all it has
    weights = {str(p.dtype) for p in level.prior.parameters()}
    assert weights == {"torch.bfloat16"}
    with pytest.raises(InputError, match="runs in bf16.*load the model with precision fp32"):
        level.use_precision("fp32")
    level.use_precision("auto")  # keeps what the level runs in
    assert level.precision == "bf16"


def test_a_compiled_step_that_fails_to_compile_goes_on_eagerly(monkeypatch: pytest.MonkeyPatch, caplog) -> None:  # type: ignore[no-untyped-def]
    from model.prior import fast_step
    from model.sampling.jukebox import JukeboxLevel

    def broken(*args: object, **kwargs: object) -> object:
        def fail(*a: object) -> None:
            raise RuntimeError("inductor exploded")

        return fail

    config = presets.tiny_upsampler(0)
    labels = tiny_labels({0: config})[0]
    y, upper = labels.for_window(0).y.expand(2, -1), torch.randint(0, config.n_bins, (2, config.n_ctx // 4))
    context, uniforms = torch.randint(0, config.n_bins, (2, 5)), draw_uniforms(make_generators([1, 2]), 20)
    codes = {}
    monkeypatch.setattr(fast_step, "compile_support", lambda device: None)  # pretend torch.compile can work
    monkeypatch.setattr(torch, "compile", broken)
    for step in ("eager", "compiled"):
        level = JukeboxLevel(build(config), step=step)
        assert level.step == step
        with torch.inference_mode():
            codes[step] = sample_window(level.open_window(y, upper, 2), context, uniforms, Draw(chunk_size=3))
    assert torch.equal(codes["compiled"], codes["eager"])
    assert level._fast is not None and not level._fast.compiled and level._fast.error == "RuntimeError: inductor exploded"
    assert "compiled single-token step failed, using the eager step: RuntimeError: inductor exploded" in caplog.text


def test_merged_lyrics_prior_samples_all_ids_then_folds_at_any_temperature() -> None:
    """1b_lyrics: temperature and top-k apply to the 2127 merged ids before they map to codes (Jukebox)."""
    from model.sampling.jukebox import JukeboxLevel

    config = presets.tiny_prior_merged()
    level = JukeboxLevel(build(config))
    level.use_precision("fp32")
    labels = tiny_labels({config.level: config}, lyrics="la la la")[config.level]
    b = 2
    y = labels.for_window(0).y.expand(b, -1)
    context = torch.randint(0, config.n_bins, (b, 7))
    uniforms = draw_uniforms(make_generators([1, 2]), 12)
    with torch.inference_mode():
        fast = sample_window(level.open_window(y, None, b), context, uniforms, Draw(0.7, top_k=5, chunk_size=3))
        prior, seq = level.prior, context
        cond = prior.conditioning(y, None)
        for i in range(uniforms.shape[1]):  # reference: a fresh cache fed the whole sequence every step
            cache = prior.new_cache(b, torch.float32, torch.device("cpu"))
            logits = prior.logits_step(seq, cond, cache)  # (B, n_vocab + n_bins): merged ids, unfolded
            step = sample_from_logits(logits, uniforms[:, i], 0.7, 5, 0.0, config.lyrics.n_vocab)
            seq = torch.cat([seq, step[:, None]], dim=1)
    assert torch.equal(fast, seq[:, context.shape[1] :])
    assert int(fast.max()) < config.n_bins
