"""Train or fine-tune one prior level (top prior or upsampler) on VQ-VAE codes, single process.

``train_prior(prior, items, config, run_dir=...)`` runs AdamW with warm-up and decay, gradient-norm
clipping, optional bf16 autocast (chosen here, at the entry point), an EMA of the trained weights, the
conditioners' own condition dropout, metrics as JSON lines in ``run_dir/metrics.jsonl`` and a checkpoint
``run_dir/checkpoint.safetensors`` every ``checkpoint_every`` steps and at the end. Called again on the
same ``run_dir`` with the same config and data, it resumes from that checkpoint and ends with exactly the
weights an uninterrupted run would have: windows and dropout come from generators seeded by the step,
the learning rate is a function of the step, and the optimiser, EMA and torch generator are restored.

The prior, its conditioners and adapters are one ``PriorLoss`` module whose ``forward(batch)`` is the
loss: a DDP wrapper goes around it (``wrap=``) and each rank draws its own windows (``stream=`` rank).
``save_trained`` writes the EMA weights into a model directory that ``load_sampling_model`` reads.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.errors import ConfigError, InputError
from common.progress import CancelToken, Progress, ProgressFn, report
from model.conditioners.lora import LoraConv1D, LoraSet
from model.conditioners.lora_store import save_lora
from model.conditioners.network import ConditionerSet, freeze_except
from model.conditioners.store import save_conditioners
from model.prior.prior import JukeboxPrior
from model.prior.prior_types import PriorOutput
from model.sampling.loading import save_prior
from model.train.distributed import mean_over_ranks
from model.train.ema import ParameterEMA
from model.train.prior_checkpoint import load_checkpoint, save_checkpoint
from model.train.prior_data import PriorBatch, PriorTrainItem, PriorWindows
from model.train.prior_resume import check_resumable, run_header, trim_metrics
from model.train.prior_train_config import PriorTrainConfig, lr_at

METRICS = "metrics.jsonl"
LogFn = Callable[[dict[str, Any]], None]


class PriorLoss(nn.Module):
    """The prior with its conditioners and adapters; ``forward(batch)`` gives the window losses."""

    def __init__(self, prior: JukeboxPrior, conditioners: ConditionerSet | None = None, lora: LoraSet | None = None):
        super().__init__()
        self.prior, self.conditioners, self.lora = prior, conditioners, lora

    def forward(self, batch: PriorBatch, generator: torch.Generator | None = None) -> PriorOutput:
        extra = None
        if self.conditioners is not None and batch.conditions:
            extra = self.conditioners(batch.conditions, generator)  # (N, n_ctx, W); dropout while training
        cond = self.prior.conditioning(batch.labels, batch.upper, extra)
        return self.prior(batch.codes, cond)


@dataclass(frozen=True)
class TrainResult:
    """``step``: steps done in all; ``resumed_from``: the checkpoint's step, or None; ``ema``: the averaged
    weights (None when ``ema_decay`` is 0); ``logs``: this call's metric lines; ``validation``: the last
    validation line, or None."""

    step: int
    resumed_from: int | None
    ema: ParameterEMA | None
    logs: tuple[dict[str, Any], ...]
    validation: dict[str, Any] | None
    run_dir: Path


def train_prior(
    prior: JukeboxPrior, items: Sequence[PriorTrainItem], config: PriorTrainConfig, *,
    run_dir: str | os.PathLike[str], conditioners: ConditionerSet | None = None, lora: LoraSet | None = None,
    val_items: Sequence[PriorTrainItem] = (), log: LogFn | None = None, progress: ProgressFn | None = None,
    cancel: CancelToken | None = None, wrap: Callable[[nn.Module], nn.Module] | None = None, stream: int = 0,
    main: bool = True,
) -> TrainResult:  # fmt: skip
    """Train ``prior`` (and ``conditioners``/``lora``, as ``config.train`` says) in place; see the module
    docstring. The frozen parts keep ``requires_grad`` False only for the call; the modules end in eval mode
    holding the live (not averaged) weights. With ``main`` False (a DDP rank other than 0) nothing is
    written into ``run_dir``: the run reads its checkpoint and keeps its metric lines in the result only.
    Inside a torch.distributed group the logged losses are means over the ranks (model.train.distributed)."""
    run = Path(run_dir)
    check_training(prior, config, conditioners, lora)
    configs = conditioners.configs() if conditioners is not None else ()
    windows = PriorWindows(prior.config, items, configs, seed=config.seed)
    val = PriorWindows(prior.config, val_items, configs, seed=config.seed) if val_items else None
    module = PriorLoss(prior, conditioners, lora)
    trained: list[nn.Module] = {"all": [module], "conditioners": [conditioners], "adapters": [lora, conditioners]}[
        config.train
    ]  # type: ignore[assignment]
    flags = {p: p.requires_grad for p in module.parameters()}
    freeze_except(module, [m for m in trained if m is not None])
    named = {n: p for n, p in module.named_parameters() if p.requires_grad}
    optimiser = torch.optim.AdamW(named.values(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    ema = ParameterEMA(named, config.ema_decay) if config.ema_decay > 0 else None
    header = run_header(config, prior, conditioners, lora, list(named), windows.fingerprint())
    start, seconds = 0, 0.0
    checkpoint = load_checkpoint(run)
    if checkpoint is not None:
        check_resumable(run, checkpoint, header, config)
        with torch.no_grad():
            for name, p in named.items():
                p.copy_(checkpoint.model[name])
        if ema is not None:
            ema.load_state_dict(checkpoint.ema)
        optimiser.load_state_dict(checkpoint.optimiser)
        torch.set_rng_state(checkpoint.torch_rng)
        start, seconds = checkpoint.step, float(checkpoint.header["seconds"])
    if main:
        run.mkdir(parents=True, exist_ok=True)
        trim_metrics(run / METRICS, start)
    step_fn = wrap(module) if wrap is not None else module
    device = next(iter(named.values())).device
    logs: list[dict[str, Any]] = []
    last_val: dict[str, Any] | None = None
    sums = {"loss": 0.0, "gen_loss": 0.0, "prime_loss": 0.0, "grad_norm": 0.0}
    seen = skipped = 0
    began = since = time.perf_counter()

    def write(line: dict[str, Any]) -> None:
        if main:
            with open(run / METRICS, "a", encoding="utf-8") as f:
                f.write(json.dumps(line) + "\n")
        logs.append(line)
        if log is not None:
            log(line)

    try:
        module.train()
        for step in range(start, config.steps):
            if cancel is not None:
                cancel.raise_if_cancelled()
            lr = lr_at(step, config)
            for group in optimiser.param_groups:
                group["lr"] = lr
            batch = windows.batch(step, config.batch_size, stream).to(device)
            dropout_seed = int(np.random.SeedSequence([config.seed, stream, step]).generate_state(1)[0])
            generator = torch.Generator(device).manual_seed(dropout_seed)  # condition dropout of this step
            with _autocast(device, config.precision):
                out = step_fn(batch, generator)
            optimiser.zero_grad(set_to_none=True)
            out.loss.backward()
            norm = nn.utils.clip_grad_norm_(list(named.values()), config.grad_clip)
            if bool(torch.isfinite(norm)):
                optimiser.step()
                if ema is not None:
                    ema.update()
                for key, value in (("loss", out.loss), ("gen_loss", out.gen_loss), ("prime_loss", out.prime_loss)):
                    sums[key] += float(value.detach())
                sums["grad_norm"] += float(norm)
                seen += 1
            else:  # a non-finite gradient: the step is skipped, as Jukebox skips fp16 overflows
                skipped += 1
            done = step + 1
            report(progress, Progress("train", done, config.steps, level=prior.config.level))
            if done % config.log_every == 0 or done == config.steps:
                now = time.perf_counter()
                n = max(1, seen)  # seen and skipped agree over ranks: the averaged gradient is clipped alike
                sums.update(zip(sums, mean_over_ranks(list(sums.values()), device), strict=True))
                line = {"kind": "train", "step": done, **{k: v / n for k, v in sums.items()}, "lr": lr,
                        "skipped": skipped, "seconds": seconds + now - began,
                        "tokens_per_s": (seen + skipped) * batch.tokens / max(now - since, 1e-9)}  # fmt: skip
                write(line)
                sums, seen, skipped, since = dict.fromkeys(sums, 0.0), 0, 0, now
            if val is not None and ((config.val_every and done % config.val_every == 0) or done == config.steps):
                scores = validate(module, val, config, ema, device, stream)
                scores.update(zip(scores, mean_over_ranks(list(scores.values()), device), strict=True))
                last_val = {"kind": "val", "step": done, **scores}
                write(last_val)
            if main and (done % config.checkpoint_every == 0 or done == config.steps):
                state = {n: p.detach() for n, p in named.items()}
                save_checkpoint(run, {**header, "step": done, "seconds": seconds + time.perf_counter() - began},
                                state, ema.state_dict() if ema is not None else {}, optimiser.state_dict())  # fmt: skip
    finally:
        module.eval()
        for p, flag in flags.items():
            p.requires_grad_(flag)
    return TrainResult(max(start, config.steps), checkpoint.step if checkpoint else None, ema, tuple(logs), last_val, run)


@torch.no_grad()
def validate(
    module: PriorLoss, windows: PriorWindows, config: PriorTrainConfig, ema: ParameterEMA | None,
    device: torch.device, stream: int = 0,
) -> dict[str, float]:  # fmt: skip
    """Mean losses (bits per token) of the EMA weights over ``val_batches`` fixed batches of ``windows``,
    without condition dropout."""
    was_training = module.training
    module.eval()
    sums = {"val_loss": 0.0, "val_gen_loss": 0.0, "val_prime_loss": 0.0}
    try:
        with ema.applied() if ema is not None else contextlib.nullcontext():
            for i in range(config.val_batches):
                batch = windows.batch(i, config.batch_size, stream=1_000_000 + stream).to(device)
                with _autocast(device, config.precision):
                    out = module(batch)
                for key, value in zip(sums, (out.loss, out.gen_loss, out.prime_loss), strict=True):
                    sums[key] += float(value) / config.val_batches
    finally:
        module.train(was_training)
    return sums


def check_training(
    prior: JukeboxPrior, config: PriorTrainConfig, conditioners: ConditionerSet | None, lora: LoraSet | None
) -> None:
    """``ConfigError``/``InputError`` when what is to be trained does not fit the config or the prior."""
    c = prior.config
    if config.train == "adapters" and lora is None:
        raise ConfigError("train='adapters' needs LoRA adapters: attach them first (model.conditioners.lora.attach_lora)")
    if config.train == "conditioners" and (conditioners is None or not conditioners.names):
        raise ConfigError("train='conditioners' needs at least one conditioner (a ConditionerSet with networks)")
    for k in conditioners.configs() if conditioners is not None else ():
        if k.level != c.level or k.width != c.transformer.width:
            raise InputError(
                f"conditioner {k.name!r} is for level {k.level} with width {k.width}; "
                f"this prior is level {c.level} with width {c.transformer.width}"
            )
    if lora is not None:
        attached = {id(m.adapter) for m in prior.modules() if isinstance(m, LoraConv1D)}
        if lora.config.level != c.level or not attached >= {id(a) for a in lora.adapters.values()}:
            raise InputError(f"the LoRA adapters (level {lora.config.level}) are not attached to this level-{c.level} prior")
    if config.train == "all" and any(p.dtype != torch.float32 for p in prior.parameters()):
        raise ConfigError("train='all' needs the prior's weights in float32 (this one stores fp16/bf16 weights): cast it")


def save_trained(
    model_dir: str | os.PathLike[str], prior: JukeboxPrior, ema: ParameterEMA | None = None,
    conditioners: ConditionerSet | None = None, lora: LoraSet | None = None, *, with_prior: bool = True,
) -> list[str]:  # fmt: skip
    """Write the averaged weights (the live ones without ``ema``) as the prior component ``prior_level_L``
    (unless ``with_prior`` is False: adapters for an official prior travel without it), each conditioner
    and the adapters; returns the component names written."""
    written = []
    with ema.applied() if ema is not None else contextlib.nullcontext():
        if with_prior:
            written.append(save_prior(model_dir, prior).name)
        if conditioners is not None and conditioners.names:
            written += save_conditioners(model_dir, conditioners)
        if lora is not None:
            written.append(save_lora(model_dir, lora))
    return written


def _autocast(device: torch.device, precision: str) -> Any:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


__all__ = ["PriorLoss", "TrainResult", "check_training", "save_trained", "train_prior", "validate"]
