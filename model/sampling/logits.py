"""Turning next-token logits into tokens: temperature, top-k / top-p filtering, seeded draws.

Every candidate owns its own ``torch.Generator`` (on the CPU, so a seed means the same on any
device) and draws exactly one uniform number per sampled token. A token is then picked by
inverting the cumulative distribution. So a candidate's tokens depend only on its seed and its
model inputs, never on which other candidates share its batch.
"""

from __future__ import annotations

import numpy as np
import torch


def filter_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 0.0) -> torch.Tensor:
    """Set to ``-inf`` every logit outside the top-k, or outside the nucleus of probability ``top_p``.

    The nucleus keeps the smallest set of most likely tokens whose probability reaches ``top_p``,
    i.e. it keeps the first token past ``p``. ``0`` switches a filter off.
    """
    logits = logits.float()  # (B, V)
    if top_k > 0:
        k = min(top_k, logits.shape[-1])
        kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if 0.0 < top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)  # (B, V)
        cumulative = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)  # (B, V)
        drop_sorted = cumulative > top_p
        drop_sorted[..., 1:] = drop_sorted[..., :-1].clone()  # keep the first token past p
        drop_sorted[..., 0] = False
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)  # (B, V)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def level_seed(seed: int, level: int, top: int) -> int:
    """The seed of one level's random stream for a candidate of seed ``seed``.

    The top level uses ``seed`` itself; every lower level a seed mixed from (seed, level), below 2**63,
    so levels never share a stream and a level's tokens do not depend on how many tokens the levels
    above it drew. ``segue sample`` and the daemon both sample with this rule (one source of truth).
    """
    if level == top:
        return seed
    state = np.random.SeedSequence([seed % (1 << 63), level]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1]) >> 1


def level_generators(seeds: tuple[int, ...] | list[int], level: int, top: int) -> list[torch.Generator]:
    """One CPU generator per candidate for sampling ``level`` (see ``level_seed``)."""
    return make_generators([level_seed(s, level, top) for s in seeds])


def make_generators(seeds: tuple[int, ...] | list[int]) -> list[torch.Generator]:
    """One CPU generator per candidate, seeded with that candidate's seed."""
    generators = []
    for seed in seeds:
        g = torch.Generator(device="cpu")
        g.manual_seed(int(seed))
        generators.append(g)
    return generators


def draw_uniforms(generators: list[torch.Generator], n: int) -> torch.Tensor:
    """The next ``n`` uniform numbers of every candidate's stream, as (candidates, n) float64."""
    return torch.stack([torch.rand(n, generator=g, dtype=torch.float64) for g in generators])  # (B, n)


def sample_from_logits(
    logits: torch.Tensor,
    uniforms: torch.Tensor,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 0.0,
    fold: int = 0,
) -> torch.Tensor:
    """Pick one token per row of ``logits`` (B, V) using one uniform number per row (B,). Returns (B,) int64.

    ``fold`` > 0 (1b_lyrics' merged vocabulary): temperature and filters apply to all V logits, then the
    probabilities of ids 0..fold fold into token 0 and ids fold.. become tokens 0.., exactly as Jukebox
    samples all ids and then shifts by ``fold`` and clamps negatives to 0.
    """
    filtered = filter_logits(logits.float() / temperature, top_k, top_p)  # (B, V)
    probs = torch.softmax(filtered, dim=-1).double()  # (B, V)
    if fold:
        music = probs[:, fold:].clone()  # (B, V - fold)
        music[:, 0] += probs[:, :fold].sum(dim=-1)
        probs = music
    cdf = probs.cumsum(dim=-1)  # (B, V')
    target = uniforms.to(cdf.device, torch.float64).unsqueeze(-1) * cdf[:, -1:]  # (B, 1)
    tokens = torch.searchsorted(cdf, target, right=True).squeeze(-1)  # (B,)
    return tokens.clamp_(max=probs.shape[-1] - 1)
