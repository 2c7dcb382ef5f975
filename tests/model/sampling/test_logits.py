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


def _jukebox_merged_distribution(logits: torch.Tensor, fold: int, temperature: float, top_k: int) -> torch.Tensor:
    """Jukebox: filter and sample all ids, then shift by ``fold`` and clamp negatives to 0."""
    probs = torch.softmax(filter_logits(logits / temperature, top_k, 0.0), dim=-1).double()  # (V,)
    mapped = (torch.arange(logits.shape[-1]) - fold).clamp(min=0)  # (V,)
    return torch.zeros(logits.shape[-1] - fold, dtype=torch.float64).index_add_(0, mapped, probs)


def test_merged_vocabulary_folds_after_temperature_and_filtering() -> None:
    torch.manual_seed(3)
    fold, n_codes = 5, 8
    logits = torch.randn(fold + n_codes) * 2  # (V,)
    n = 4000
    uniforms = (torch.arange(n, dtype=torch.float64) + 0.5) / n  # an even sweep of the unit interval
    for temperature, top_k in [(1.0, 0), (0.5, 0), (2.0, 6)]:
        tokens = sample_from_logits(logits.expand(n, -1), uniforms, temperature, top_k, 0.0, fold)
        freq = torch.bincount(tokens, minlength=n_codes).double() / n
        expected = _jukebox_merged_distribution(logits, fold, temperature, top_k)
        assert torch.allclose(freq, expected, atol=1.5 / n), (temperature, top_k)
    # folding the logits first (logsumexp) and then applying the temperature is a different distribution
    folded = torch.cat([torch.logsumexp(logits[: fold + 1], 0, keepdim=True), logits[fold + 1 :]])
    early = torch.softmax(folded / 0.5, dim=-1).double()
    assert not torch.allclose(early, _jukebox_merged_distribution(logits, fold, 0.5, 0), atol=1e-3)
