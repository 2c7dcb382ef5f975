"""A prior's precision, chosen once where the model is loaded: fp32, bf16, or ``auto`` by a short measurement.

``place_prior`` moves a prior to its device in the chosen precision and keeps no other copy of its weights:
for ``bf16`` it casts on the CPU before the move, so the device never holds the fp32 weights. ``auto`` times a
few single-token steps of the loaded prior in fp32 and in bf16 at the run's batch size (``measure_precision``,
a fraction of a second for small priors), keeps the faster, and remembers the choice per (prior config,
batch, device, threads) for the process. While bf16 is timed, the fp32 weights wait on the CPU (by reference
when the prior is on the CPU, copied there from any other device), so the device never holds both.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

from common.errors import InputError
from model.prior.autoregressive import ConditionalAutoregressive
from model.prior.prior import JukeboxPrior
from model.sampling.params import PRECISIONS

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
BF16_MARGIN = 0.9  # auto picks bf16 only when its step takes under 90 % of the fp32 step's time (noise guard)
WARMUP_STEPS, TIMED_STEPS = 2, 5

Timer = Callable[[], float]
_CHOICES: dict[tuple[object, ...], str] = {}


def pick_precision(fp32_seconds: float, bf16_seconds: float) -> str:
    """The decision of ``auto`` from the measured seconds per step of each precision."""
    return "bf16" if bf16_seconds < BF16_MARGIN * fp32_seconds else "fp32"


def place_prior(
    prior: JukeboxPrior, device: torch.device | str, precision: str, batch: int = 1, timer: Timer = time.perf_counter
) -> str:
    """Move ``prior`` to ``device`` in ``precision`` (``PRECISIONS``; ``auto`` measured at ``batch`` rows).
    Returns the precision it now runs in."""
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r} is not known: use one of {', '.join(PRECISIONS)}")
    if precision == "bf16":
        prior.to(torch.bfloat16)  # on the CPU, before the move: the device only ever sees bf16 weights
    prior.to(device)
    if precision == "auto":
        precision = measure_precision(prior, batch, timer)
        if precision == "bf16":
            prior.to(torch.bfloat16)  # in place: each fp32 weight is freed as its bf16 copy is made
    return "bf16" if prior.prior.x_emb.weight.dtype == torch.bfloat16 else "fp32"


def measure_precision(prior: JukeboxPrior, batch: int, timer: Timer = time.perf_counter) -> str:
    """``fp32`` or ``bf16``: which one steps ``prior`` (on its device, in fp32 now) faster at ``batch`` rows.

    Times ``TIMED_STEPS`` single-token eager steps after ``WARMUP_STEPS`` in each precision (the fastest step
    counts) and applies ``pick_precision``. The prior's weights are the same tensors afterwards. Cached per
    (config, batch, device, torch threads): speed depends on shapes, not on weight values.
    """
    core = prior.prior
    device = core.x_emb.weight.device
    key = (prior.config, batch, str(device), torch.get_num_threads())
    if key not in _CHOICES:
        if core.x_emb.weight.dtype != torch.float32:
            raise InputError(f"auto precision measures a prior in fp32; this one runs in {core.x_emb.weight.dtype}")
        fp32 = step_seconds(core, batch, timer)
        with _cast_aside(core, torch.bfloat16):
            bf16 = step_seconds(core, batch, timer)
        _CHOICES[key] = pick_precision(fp32, bf16)
    return _CHOICES[key]


def step_seconds(core: ConditionalAutoregressive, batch: int, timer: Timer = time.perf_counter) -> float:
    """Seconds of the fastest of ``TIMED_STEPS`` single-token eager steps of the transformer ``core`` at
    ``batch`` rows in its current dtype (random inputs, inference mode)."""
    weight = core.x_emb.weight
    dtype, device, tc = weight.dtype, weight.device, core.config.transformer
    g = torch.Generator().manual_seed(0)
    y = torch.randn(batch, 1, core.width, generator=g).to(device, dtype)  # (B, 1, W)
    enc = torch.randn(batch, tc.encoder_dims, core.width, generator=g).to(device, dtype) if tc.encoder_dims else None
    token = torch.zeros(batch, 1, dtype=torch.long, device=device)  # (B, 1)
    best = float("inf")
    with torch.inference_mode():
        cache = core.new_cache(batch, dtype, device)
        core.step(token[:, :0], cache, y_cond=y, encoder_kv=enc)  # position 0 (y_cond unused with a start token)
        for i in range(WARMUP_STEPS + TIMED_STEPS):
            if cache.length >= core.n_ctx:
                break
            _sync(device)
            t0 = timer()
            core.step(token, cache)
            _sync(device)
            if i >= WARMUP_STEPS:
                best = min(best, timer() - t0)
    return best


@contextmanager
def _cast_aside(module: nn.Module, dtype: torch.dtype) -> Iterator[None]:
    """Run ``module`` in ``dtype`` for the block, then restore its very tensors (dtypes included). The
    originals wait on the CPU: by reference when they are there, copied there otherwise."""
    saved: list[tuple[nn.Module, str, bool, Tensor]] = []
    for owner in module.modules():
        for kind, table in ((True, owner._parameters), (False, owner._buffers)):
            for name, t in table.items():
                if t is not None and t.is_floating_point():
                    original = t.data if kind else t
                    saved.append((owner, name, kind, original if original.device.type == "cpu" else original.cpu()))
    device = next(iter(module.parameters())).device
    module.to(dtype)
    try:
        yield
    finally:
        for owner, name, is_param, original in saved:
            restored = original.to(device)
            if is_param:
                owner._parameters[name].data = restored  # type: ignore[union-attr]
            else:
                owner._buffers[name] = restored


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
