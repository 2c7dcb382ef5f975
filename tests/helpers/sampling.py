"""Engine calls for tests of the sampling engine itself: every level of ``sample_levels`` in one call.

The product samples through the tasks of ``model.tasks``; engine tests that only need codes from priors
(no VQ-VAE) use ``sample_all`` instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from common.progress import CancelToken, ProgressFn
from model.sampling.engine import Labeller, LevelPlan, sample_levels
from model.sampling.hooks import Hooks
from model.sampling.lengths import Geometry
from model.sampling.params import SamplingParams
from model.sampling.result import SampleResult
from model.sampling.session import LevelPrior


def sample_all(
    levels: Mapping[int, LevelPrior], geometry: Geometry, length: int, params: SamplingParams,
    labels: Mapping[int, Labeller] | None = None, *, lowest_level: int = 0, codes: Sequence[Tensor] | None = None,
    progress: ProgressFn | None = None, cancel: CancelToken | None = None,
) -> SampleResult:  # fmt: skip
    """Sample ``length`` samples from the top level (or, when ``codes`` already cover the top level, from the
    level below) down to ``lowest_level``; ``codes`` per level (1 or n rows) are kept and extended."""
    n, top = params.n_candidates, geometry.n_levels - 1
    given = list(codes) if codes is not None else [torch.zeros(1, 0, dtype=torch.long)] * geometry.n_levels
    given = [c if c.shape[0] == n else c.expand(n, -1) for c in given]
    first = top if given[top].shape[1] < geometry.tokens(length, top) else top - 1
    plan = LevelPlan(levels, geometry, tuple(given), length, tuple(range(first, lowest_level - 1, -1)), labels or {}, "test")
    return sample_levels(plan, params, Hooks(progress=progress, cancel=cancel))
