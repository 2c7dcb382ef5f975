import torch

from model.sampling.logits import (
    draw_uniforms,
    filter_logits,
    level_generators,
    level_seed,
    make_generators,
    sample_from_logits,
)


def test_top_k_keeps_k_largest() -> None:
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]])
    out = filter_logits(logits, top_k=2)
    assert torch.isfinite(out).tolist() == [[False, True, False, True, False]]


def test_top_p_keeps_first_token_past_p() -> None:
    probs = torch.tensor([[0.5, 0.3, 0.15, 0.05]])
    out = filter_logits(probs.log(), top_p=0.6)
    assert torch.isfinite(out).tolist() == [[True, True, False, False]]  # 0.5 < 0.6, 0.8 is the first past p
    out = filter_logits(probs.log(), top_p=0.45)
    assert torch.isfinite(out).tolist() == [[True, False, False, False]]
    # unsorted order is respected
    out = filter_logits(probs[:, [2, 0, 3, 1]].log(), top_p=0.6)
    assert torch.isfinite(out).tolist() == [[False, True, False, True]]


def test_filters_off_keep_everything() -> None:
    logits = torch.randn(3, 11)
    assert torch.equal(filter_logits(logits), logits)
    assert torch.equal(filter_logits(logits, top_p=1.0), logits)


def test_sampling_never_picks_filtered_tokens() -> None:
    logits = torch.randn(4, 50)
    g = make_generators([1, 2, 3, 4])
    for _ in range(200):
        tok = sample_from_logits(logits, draw_uniforms(g, 1)[:, 0], top_k=3)
        allowed = torch.topk(logits, 3, dim=-1).indices
        assert (allowed == tok[:, None]).any(-1).all()


def test_sampling_matches_distribution() -> None:
    probs = torch.tensor([0.1, 0.6, 0.3])
    g = make_generators([0])
    u = draw_uniforms(g, 20000)[0]
    tokens = sample_from_logits(probs.log().expand(20000, 3), u)
    freq = torch.bincount(tokens, minlength=3).double() / 20000
    assert torch.allclose(freq, probs.double(), atol=0.015)


def test_low_temperature_is_greedy_and_seeds_are_streams() -> None:
    logits = torch.randn(2, 30)
    g = make_generators([0, 1])
    tok = sample_from_logits(logits, draw_uniforms(g, 1)[:, 0], temperature=1e-3)
    assert torch.equal(tok, logits.argmax(-1))
    a = draw_uniforms(make_generators([5, 6]), 4)
    b = draw_uniforms(make_generators([6]), 4)
    assert torch.equal(a[1], b[0])


def test_the_top_level_uses_the_seed_and_each_lower_level_its_own_stream() -> None:
    assert level_seed(7, 2, 2) == 7
    lower = {level_seed(7, level, 2) for level in (0, 1)} | {level_seed(8, 1, 2)}
    assert len(lower) == 3 and 7 not in lower and all(0 <= s < 2**63 for s in lower)
    assert level_seed(7, 1, 2) == level_seed(7, 1, 2)  # pure: the same on every call and in every process
    a = draw_uniforms(level_generators([7, 8], 1, 2), 4)
    b = draw_uniforms(make_generators([level_seed(8, 1, 2)]), 4)
    assert torch.equal(a[1], b[0])
