import threading

import pytest
import torch

from common.errors import Cancelled, InputError
from common.progress import CancelToken, Progress
from model.sampling.engine import LevelPlan, sample_levels
from model.sampling.hooks import Hooks
from model.sampling.lengths import Geometry
from model.sampling.params import SamplingParams
from model.sampling.result import SampleResult
from tests.model.sampling.toy import ToyPrior

# three levels, hops 2, 8, 32 (ratio 4), windows of 16 tokens
GEO = Geometry(sample_rate=1000, hops=(2, 8, 32), n_ctx=(16, 16, 16))


def priors() -> dict[int, ToyPrior]:
    return {2: ToyPrior(2, 16), 1: ToyPrior(1, 16, cond_downsample=4), 0: ToyPrior(0, 16, cond_downsample=4)}


def empty(n: int) -> list[torch.Tensor]:
    return [torch.zeros(n, 0, dtype=torch.long) for _ in range(3)]


def levels(ps: dict, codes: list, samples: int, todo: list[int], params: SamplingParams, labels: dict | None = None,
           progress: object = None, cancel: CancelToken | None = None) -> SampleResult:  # fmt: skip
    plan = LevelPlan(ps, GEO, tuple(codes), samples, tuple(todo), labels or {})
    return sample_levels(plan, params, Hooks(progress=progress, cancel=cancel))  # type: ignore[arg-type]


def run(params: SamplingParams, samples: int = 32 * 40, codes: list | None = None, **kw: object) -> SampleResult:
    n = params.n_candidates
    return levels(priors(), codes or empty(n), samples, [2, 1, 0], params, **kw)  # type: ignore[arg-type]


def test_lengths_and_timings() -> None:
    res = run(SamplingParams(precision="fp32", n_candidates=2))
    assert [c.shape for c in res.codes] == [(2, 640), (2, 160), (2, 40)]
    assert [t.level for t in res.timings] == [2, 1, 0]
    assert [t.windows for t in res.timings] == [13, 19, 79]  # hops 2, 8, 8 tokens over 40, 160, 640 tokens
    assert res.to_dict()["tokens_per_level"] == [640, 160, 40]


def test_same_seed_same_output_and_different_seeds_differ() -> None:
    a = run(SamplingParams(precision="fp32", seed=3))
    b = run(SamplingParams(precision="fp32", seed=3))
    c = run(SamplingParams(precision="fp32", seed=4))
    assert all(torch.equal(x, y) for x, y in zip(a.codes, b.codes))
    assert not torch.equal(a.codes[0], c.codes[0])


def test_candidates_do_not_depend_on_batch_split() -> None:
    together = run(SamplingParams(precision="fp32", n_candidates=3, seeds=(5, 6, 7), max_batch_size=3))
    split = run(SamplingParams(precision="fp32", n_candidates=3, seeds=(5, 6, 7), max_batch_size=2))
    alone = run(SamplingParams(precision="fp32", n_candidates=1, seeds=(6,)))
    for lv in range(3):
        assert torch.equal(together.codes[lv], split.codes[lv])
        assert torch.equal(together.codes[lv][1], alone.codes[lv][0])


def test_each_level_has_its_own_stream_so_levels_sampled_one_call_each_match_one_call() -> None:
    params = SamplingParams(precision="fp32", n_candidates=2, seeds=(5, 9))
    together = run(params)
    codes = empty(2)
    for level in (2, 1, 0):  # as the daemon samples: one level per call
        codes = list(levels(priors(), codes, 32 * 40, [level], params).codes)
    assert all(torch.equal(a, b) for a, b in zip(together.codes, codes))


def test_primed_codes_are_kept_and_extended() -> None:
    prime = [torch.randint(0, 16, (1, t)) for t in (80, 20, 5)]
    res = run(SamplingParams(precision="fp32"), codes=prime)
    for lv in range(3):
        assert torch.equal(res.codes[lv][:, : prime[lv].shape[1]], prime[lv])
    assert res.codes[2].shape[1] == 40


def test_progress_reports_every_few_tokens() -> None:
    seen: list[Progress] = []
    run(SamplingParams(precision="fp32", progress_every=4), progress=seen.append)
    top = [p for p in seen if p.level == 2]
    assert top[-1].done == top[-1].total == 40
    assert all(b.done - a.done <= 4 for a, b in zip(top, top[1:]) if b.done > a.done)
    bottom = [p for p in seen if p.level == 0]
    assert bottom[-1].done == bottom[-1].total == 640
    assert bottom[-1].windows == (bottom[-1].window or 0) + 1 > 1
    assert {p.stage for p in seen} == {"sample"}


def test_cancel_stops_promptly_and_engine_is_reusable() -> None:
    token = CancelToken()
    calls = []

    def progress(p: Progress) -> None:
        calls.append(p)
        if p.level == 1 and p.done >= 8:
            token.cancel("user stopped")

    with pytest.raises(Cancelled, match="user stopped"):
        run(SamplingParams(precision="fp32", progress_every=1), progress=progress, cancel=token)
    assert calls[-1].level == 1 and calls[-1].done == 8  # nothing after the cancel point
    again = run(SamplingParams(precision="fp32"), cancel=CancelToken())
    assert again.codes[0].shape == (1, 640)


def test_cancel_from_another_thread() -> None:
    token = CancelToken()
    timer = threading.Timer(0.05, token.cancel)
    timer.start()
    with pytest.raises(Cancelled):
        run(SamplingParams(precision="fp32"), samples=32 * 20000, cancel=token)
    timer.join()


def test_missing_prior_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no prior for level 1"):
        levels({2: ToyPrior(2, 16)}, empty(1), 32 * 40, [2, 1], SamplingParams())


def test_cancel_is_checked_between_context_chunks() -> None:
    from model.sampling.session import Draw, sample_window

    token = CancelToken()
    calls = []

    class Session:
        fold = 0

        def feed(self, codes: torch.Tensor) -> torch.Tensor:
            calls.append(codes.shape[1])
            if len(calls) == 2:
                token.cancel()
            return torch.zeros(1, 16)

    with pytest.raises(Cancelled):
        sample_window(Session(), torch.zeros(1, 100, dtype=torch.long), torch.rand(1, 5), Draw(chunk_size=10), token)
    assert calls == [10, 10]  # stopped after the second of ten context chunks


def test_rows_must_match_candidates() -> None:
    with pytest.raises(InputError, match="1 rows for 2 candidates"):
        levels(priors(), empty(1), 32 * 40, [2], SamplingParams(n_candidates=2))


def test_each_window_gets_its_labels_and_its_slice_of_the_level_above() -> None:
    from types import SimpleNamespace

    calls: dict[int, list] = {2: [], 1: []}

    class Labels:
        def __init__(self, level: int) -> None:
            self.level = level

        def for_window(self, start: int, hop: int | None = None, n_ctx: int | None = None) -> SimpleNamespace:
            calls[self.level].append((start, hop, n_ctx))
            return SimpleNamespace(y=torch.tensor([start, 1, 2]))

    ps = priors()
    seen = []
    original = ps[1].open_window

    def spy(labels: torch.Tensor | None, upper: torch.Tensor | None, batch: int) -> object:
        seen.append((labels, upper))
        return original(labels, upper, batch)

    ps[1].open_window = spy  # type: ignore[method-assign]
    res = levels(ps, empty(1), 32 * 40, [2, 1], SamplingParams(precision="fp32"), labels={2: Labels(2), 1: Labels(1)})
    starts_1 = [s for s, _, _ in calls[1]]
    assert starts_1 == list(range(0, 160 - 16 + 8, 8))  # hop 8 tokens at level 1 (fraction 0.5 of 16)
    assert all(h == 8 and c == 16 for _, h, c in calls[1]) and all(h == 32 for _, h, _ in calls[2])
    for start, (labels, upper) in zip(starts_1, seen):
        assert labels[0, 0] == start
        assert torch.equal(upper, res.codes[2][:, start // 4 : start // 4 + 4])
