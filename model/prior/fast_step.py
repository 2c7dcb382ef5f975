"""The compiled single-token step: ``ConditionalAutoregressive.static_step`` under ``torch.compile``.

``ConditionalAutoregressive.step`` slices each layer's cache to the positions its pattern needs, so shapes
change every token and each step costs ~20 eager ops per layer. ``static_step`` (attention math in
static_attention.py) computes the same logits with the same shapes at every position, which lets
``torch.compile`` turn the whole step (all layers, embedding, output head) into one graph of fused kernels
that is traced once per (batch, dtype) and reused for every token of every window.

Callers choose a step strategy (``STEPS``): ``eager`` (the sliced step), ``compiled`` (a ``FastStep`` per
cache, passed to ``JukeboxPrior.logits_step(..., fast=step)``) or ``auto`` (compiled where
``compile_support`` finds that torch.compile can work here, else eager). If compiling fails anyway, the
FastStep says why once (``logging``) and reports ``compiled = False``, and callers go back to the eager step.
See docs/priors.md, "Fast single-token step".
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from common.errors import InputError
from model.prior.cache import KVCache

if TYPE_CHECKING:
    from model.prior.autoregressive import ConditionalAutoregressive

log = logging.getLogger(__name__)

STEPS = ("auto", "compiled", "eager")  # auto: compiled where compile_support() finds no obstacle


def compile_support(device: torch.device | str) -> str | None:
    """Why ``torch.compile`` cannot compile the step on ``device`` here, or None when nothing stands in its way
    (it may still fail; ``FastStep`` then falls back). Checked: dynamo disabled (``TORCH_COMPILE_DISABLE=1``) or
    unsupported on this Python, a C++ compiler for CPU kernels, triton for CUDA kernels."""
    import torch._dynamo

    if torch._dynamo.config.disable:
        return "torch.compile is disabled (TORCH_COMPILE_DISABLE=1 or torch._dynamo.config.disable)"
    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile does not support this Python version or platform"
    kind = torch.device(device).type
    if kind == "cpu":
        cxx = [c for c in (os.environ.get("CXX"), "g++", "c++", "clang++") if c]
        if not any(shutil.which(c) for c in cxx):
            return "torch.compile on CPU needs a C++ compiler (g++, c++ or clang++; or $CXX) and none is on PATH"
    elif kind == "cuda":
        try:
            import triton  # noqa: F401
        except ImportError:
            return "torch.compile on CUDA needs the triton package, which is not installed"
    else:
        return f"the compiled step is not tried on {kind} devices"
    return None


def resolve_step(step: str, device: torch.device | str) -> str:
    """``step`` (one of ``STEPS``) -> ``"compiled"`` or ``"eager"`` on ``device``. ``auto`` logs why it falls
    back to eager; an explicit ``compiled`` that cannot work here is an ``InputError`` naming the reason."""
    if step not in STEPS:
        raise InputError(f"step {step!r} is not known: use one of {', '.join(STEPS)}")
    if step == "eager":
        return "eager"
    reason = compile_support(device)
    if reason is None:
        return "compiled"
    if step == "compiled":
        raise InputError(f"step 'compiled' cannot be used here: {reason}; use step 'eager' or 'auto'")
    log.info("single-token step: eager, because %s", reason)
    return "eager"


class FastStep:
    """Single-token steps of ``model`` over one ``cache`` through ``model.static_step``, compiled when ``compile``.

    ``step(token (N, 1), x_cond)`` feeds the token at position ``cache.length`` (>= 1) and returns float32
    logits (N, bins), advancing the cache; chunks and a window's first call stay with ``model.step``
    (``JukeboxPrior.logits_step`` routes them). ``compiled`` tells whether the compiled graph is in use;
    ``error`` why not. The graph is specialised to the cache's batch, dtype and device and to the shape of
    ``x_cond`` (None, broadcast or per position); another shape traces once more. Compiled with inductor's
    ``freezing``, the weights are constants of the graph: a FastStep serves the weights it first ran with
    (make a new one after loading others or casting the model). Once a call signature has run, later calls
    with it skip dynamo's guard checks (``skip_guard_eval_unsafe``), which this class makes safe by checking
    that signature itself.
    """

    def __init__(self, model: ConditionalAutoregressive, cache: KVCache, compile: bool = True) -> None:
        self.model, self.cache = model, cache
        self.error: str | None = None
        self._position = torch.zeros(1, dtype=torch.long, device=cache.layers[0].key.device)  # (1,)
        self._token = torch.zeros(cache.batch, 1, dtype=torch.long, device=self._position.device)  # (N, 1)
        self._seen: set[tuple[object, ...]] = set()  # call signatures the compiled graph has been traced for
        fn: Callable[[Tensor, Tensor, Tensor | None], Tensor] = self._eager
        if compile:
            fn = torch.compile(self._eager, dynamic=False, fullgraph=True, options={"freezing": True})
        self._fn = fn
        self.compiled = compile

    def _eager(self, token: Tensor, t: Tensor, x_cond: Tensor | None) -> Tensor:
        return self.model.static_step(token, self.cache, t, x_cond)

    def _compiled(self, token: Tensor, x_cond: Tensor | None) -> Tensor:
        cond = None if x_cond is None else (tuple(x_cond.shape), x_cond.stride(), x_cond.dtype, x_cond.device)
        weight = self.model.x_emb.weight
        signature = (cond, weight.dtype, weight.device, torch.is_grad_enabled(), torch.is_inference_mode_enabled())
        if signature in self._seen:  # traced for exactly these inputs: dynamo's guards would only repeat this
            try:
                with torch.compiler.set_stance("default", skip_guard_eval_unsafe=True):
                    return self._fn(self._token, self._position, x_cond)
            except RuntimeError:  # something this signature misses changed: trace again, with guards
                self._seen.discard(signature)
        logits = self._fn(self._token, self._position, x_cond)  # (N, bins); traces (compiles) on a new signature
        self._seen.add(signature)
        return logits

    def __call__(self, token: Tensor, x_cond: Tensor | None) -> Tensor:
        """token (N, 1) at position ``cache.length``; returns (N, bins) float32 and advances the cache."""
        self._position.fill_(self.cache.length)
        self._token.copy_(token)  # one input buffer: the graph never sees another stride or address
        if self.compiled:
            try:
                logits = self._compiled(token, x_cond)  # (N, bins)
            except Exception as exc:  # noqa: BLE001 - any compiler failure falls back to the eager step
                self.error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("compiled single-token step failed, using the eager step: %s", self.error)
                self.compiled = False
                logits = self._eager(self._token, self._position, x_cond)
        else:
            logits = self._eager(self._token, self._position, x_cond)
        self.cache.length += 1
        return logits  # (N, bins)
