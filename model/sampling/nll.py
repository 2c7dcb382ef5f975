"""How likely a prior finds given codes: bits per token (negative log-likelihood / ln 2).

Codes longer than one window are scored in windows that advance by a whole window (the last one is
pulled back to end at the last code); every code is scored once, with the context its window gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from common.errors import InputError
from common.progress import CancelToken, Progress, ProgressFn, report
from model.sampling.engine import Labeller
from model.sampling.jukebox import JukeboxLevel
from model.sampling.windows import plan_windows


@dataclass(frozen=True)
class NLLResult:
    per_token: Tensor  # (N, T) float32 bits of each code given the codes before it (within its window)
    windows: int

    @property
    def bits_per_token(self) -> float:
        return float(self.per_token.mean())


def code_nll(
    level: JukeboxLevel, codes: Tensor, labels: Labeller | None = None, upper: Tensor | None = None,
    precision: str = "fp32", progress: ProgressFn | None = None, cancel: CancelToken | None = None,
) -> NLLResult:  # fmt: skip
    """Bits of every code in ``codes`` (N, T) under ``level``'s prior; ``upper`` (N, T / 4) for upsamplers."""
    prior, c = level.prior, level.prior.config
    n, total = codes.shape
    if total < 1:
        raise InputError("there are no codes to score at this level")
    if c.is_upsampler and (upper is None or total < c.n_ctx):
        raise InputError(
            f"scoring level {c.level} needs at least one window ({c.n_ctx} codes) and the level-{c.level + 1} codes "
            f"above it; got {total} codes"
        )
    level.use_precision(precision)
    windows = plan_windows(total, c.n_ctx, 1.0)
    out = torch.zeros(n, total, dtype=torch.float32)  # (N, T)
    with torch.inference_mode():
        for index, w in enumerate(windows):
            if cancel is not None:
                cancel.raise_if_cancelled()
            y = None if labels is None else labels.for_window(w.start, c.hop_length, c.n_ctx).y.expand(n, -1).to(level.device)
            up = None
            if upper is not None:
                r = c.cond_downsample
                up = upper[:, w.start // r : (w.start + c.n_ctx) // r].to(level.device)  # (N, n_ctx / r)
            window = codes[:, w.start : w.end].to(level.device)  # (N, L)
            logits = prior(window, prior.conditioning(y, up), return_logits=True).logits  # (N, P + L, V)
            targets = window
            if c.lyrics.kind == "merged":
                logits, targets = logits[:, c.lyrics.n_tokens :], window + c.lyrics.n_vocab  # music positions, merged ids
            bits = F.cross_entropy(logits.float().transpose(1, 2), targets, reduction="none") / math.log(2.0)  # (N, L)
            out[:, w.start + w.context : w.end] = bits[:, w.context :].cpu()
            report(progress, Progress("eval", w.end, total, c.level, index, len(windows)))
    return NLLResult(out, len(windows))
