"""What the engine needs from one level's prior, and the token loop of one window.

``LevelPrior`` opens a ``WindowSession`` per window (conditioning fixed, cache rewound). The session
only feeds codes and returns next-code logits; ``sample_window`` is the generate loop: it refills the
window's context in chunks, then samples one code at a time, checking for cancellation between model
calls. It never sees the model, only a session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor

from common.progress import CancelToken
from model.sampling.logits import sample_from_logits


class WindowSession(Protocol):
    """One window of one sub-batch, with its conditioning fixed and a fresh cache.

    ``fold`` > 0: the logits cover ``fold`` extra ids in front of the codes (1b_lyrics' lyric ids), which
    ``sample_from_logits`` folds into code 0 after temperature and filtering; 0: logits over the codes only.
    """

    fold: int

    def feed(self, codes: Tensor) -> Tensor:
        """Feed the next known codes (B, T) (T may be 0 on the first call only); return logits (B, V) for the
        code after them. The first call also feeds the window's start position."""
        ...


class LevelPrior(Protocol):
    """One level's prior as seen by the engine."""

    @property
    def level(self) -> int: ...

    @property
    def n_ctx(self) -> int:
        """Music tokens per window."""
        ...

    @property
    def cond_downsample(self) -> int:
        """Codes of this level per code of the level above (0 for the top level)."""
        ...

    @property
    def device(self) -> torch.device: ...

    def use_precision(self, precision: str) -> None:
        """Run in ``"fp32"`` or ``"bf16"`` from now on."""
        ...

    def open_window(
        self, labels: Tensor | None, upper: Tensor | None, batch: int, conditions: Any = None,
        label_weights: Tensor | None = None,
    ) -> WindowSession:
        """Start a window for ``batch`` rows: ``labels`` (B, n_y) int64, ``upper`` (B, n_ctx / cond_downsample),
        ``conditions`` the window's MIDI/stem/grid conditions and guidance (``model.conditioners.window``);
        ``label_weights`` (K,) of a style blend, with ``labels`` (B, K, n_y) (passed only when the song has one)."""
        ...


@dataclass(frozen=True)
class Draw:
    """How one window draws its tokens: temperature, filters, context chunking and report interval."""

    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 0.0
    chunk_size: int = 32  # context codes fed per model call when the window refills its cache
    report_every: int = 8  # ``on_tokens`` at least every this many tokens


def sample_window(
    session: WindowSession,
    context: Tensor,
    uniforms: Tensor,
    draw: Draw,
    cancel: CancelToken | None = None,
    on_tokens: Callable[[int], None] | None = None,
) -> Tensor:
    """Sample ``uniforms.shape[1]`` new tokens after ``context`` (B, C). Returns (B, n_new) int64."""
    n_new = uniforms.shape[1]  # uniforms: (B, n_new), one per candidate per token
    new = torch.empty(context.shape[0], n_new, dtype=torch.long, device=context.device)  # (B, n_new)
    uniforms = uniforms.to(context.device)  # (B, n_new)
    chunk = draw.chunk_size
    logits = session.feed(context[:, :chunk])  # (B, V)
    for start in range(chunk, context.shape[1], chunk):
        _check(cancel)
        logits = session.feed(context[:, start : start + chunk])  # (B, V)
    for i in range(n_new):
        _check(cancel)
        new[:, i] = sample_from_logits(logits, uniforms[:, i], draw.temperature, draw.top_k, draw.top_p, session.fold)
        if i + 1 < n_new:
            logits = session.feed(new[:, i : i + 1])  # (B, V)
        if on_tokens is not None and ((i + 1) % draw.report_every == 0 or i + 1 == n_new):
            on_tokens(i + 1)
    return new


def _check(cancel: CancelToken | None) -> None:
    if cancel is not None:
        cancel.raise_if_cancelled()
