"""Train or fine-tune a VQ-VAE on audio chunks (Jukebox recipe, spec 1.3-1.4 and 7, single process).

The codebooks learn by EMA (``model.vqvae.ema``), everything else by AdamW with linear warm-up and
gradient-norm clipping. Precision is chosen here, at the entry point: bf16 autocast on CPU is about
5x faster than fp32 on this project's machines; losses are computed in fp32 either way.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from common.errors import CheckpointError, InputError
from common.progress import CancelToken, Progress, ProgressFn, report
from model.atomic import atomic_path
from model.train.data import AudioChunks
from model.vqvae import VQVAE
from model.vqvae.bottleneck import BottleneckBlock
from model.vqvae.ema import CodebookEMA, make_codebook_emas
from model.vqvae.losses import Bandwidth, vqvae_loss
from model.vqvae.training import VQVAETraining


@dataclass(frozen=True)
class VQVAETrainConfig:
    """One training run: the optimiser and batches here, the loss weights and codebook EMA in ``training``."""

    steps: int = 1000
    batch_size: int = 4
    sample_length: int = 32768  # samples per chunk; a multiple of the top hop
    lr: float = 3e-4
    warmup_steps: int = 100
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    precision: Literal["fp32", "bf16"] = "fp32"
    restore_codebooks: bool = False  # fine-tuning: start the EMA from the model's trained codebooks
    log_every: int = 25
    checkpoint_every: int = 0  # with a checkpoint path: save every this many steps (0: only at the end)
    training: VQVAETraining = field(default_factory=VQVAETraining)


@dataclass(frozen=True)
class TrainLog:
    """Averages over the steps since the previous log line."""

    step: int
    loss: float
    recons: tuple[float, ...]  # per level, bottom first
    commit: tuple[float, ...]
    codebook_usage: tuple[float, ...]  # codes in use per level (EMA count above the threshold)
    lr: float
    seconds: float  # wall time since training started


def _lr_at(step: int, config: VQVAETrainConfig) -> float:
    return config.lr * min(1.0, (step + 1) / max(1, config.warmup_steps))


def check_train_config(vqvae: VQVAE, config: VQVAETrainConfig) -> None:
    top_hop = vqvae.config.hop_lengths[-1]
    if config.sample_length <= 0 or config.sample_length % top_hop:
        raise InputError(f"sample_length {config.sample_length} must be a positive multiple of the top hop {top_hop}")
    if config.steps < 1 or config.batch_size < 1:
        raise InputError(f"steps ({config.steps}) and batch_size ({config.batch_size}) must be at least 1")


def train_vqvae(
    vqvae: VQVAE,
    chunks: AudioChunks,
    bandwidth: Bandwidth,
    config: VQVAETrainConfig,
    *,
    emas: nn.ModuleList | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    on_log: Callable[[TrainLog], None] | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
) -> list[TrainLog]:
    """Run ``config.steps`` optimisation steps in place on ``vqvae``; returns the log lines.

    ``emas``: the codebook EMA state to continue from (a training checkpoint); a fresh one is made
    otherwise, initialised from the first batch, or from the model's codebooks when
    ``restore_codebooks`` is set.

    ``checkpoint``: a safetensors file of the whole training state (model, codebook EMA, optimiser,
    step, the chunk sampler's and torch's RNG), written atomically every ``checkpoint_every`` steps
    and at the end; when it exists, training resumes from it, bit-identical to an uninterrupted run
    with the same config and audio.
    """
    check_train_config(vqvae, config)
    if chunks.sample_length != config.sample_length:
        raise InputError(f"chunks are {chunks.sample_length} samples, config says {config.sample_length}")
    if emas is None:
        emas = make_codebook_emas(vqvae.config, config.training)
        if config.restore_codebooks:
            tokens = [config.batch_size * config.sample_length // hop for hop in vqvae.config.hop_lengths]
            for level, ema in enumerate(emas):
                block = vqvae.bottleneck.level_blocks[level]
                assert isinstance(block, BottleneckBlock) and isinstance(ema, CodebookEMA)
                ema.restore_k(block.k, tokens[level])
    optimiser = torch.optim.AdamW(vqvae.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    start = 0
    if checkpoint is not None and Path(checkpoint).is_file():
        start = load_train_state(checkpoint, vqvae, emas, optimiser, chunks)
    vqvae.train()
    logs: list[TrainLog] = []
    sums: dict[str, list[float]] = {}
    seen = 0
    started = time.perf_counter()
    try:
        for step in range(start, config.steps):
            if cancel is not None:
                cancel.raise_if_cancelled()
            for group in optimiser.param_groups:
                group["lr"] = _lr_at(step, config)
            audio = chunks.batch(config.batch_size)  # (N, T, 1)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.precision == "bf16"):
                output = vqvae(audio, ema=emas)
            loss = vqvae_loss(config.training, audio, output, bandwidth)
            optimiser.zero_grad(set_to_none=True)
            loss.total.backward()
            nn.utils.clip_grad_norm_(vqvae.parameters(), config.grad_clip)
            optimiser.step()
            _accumulate(sums, loss.total, loss.recons, loss.commit, [lv.codebook for lv in output.levels])
            seen += 1
            report(progress, Progress("train", step + 1, config.steps))
            if (step + 1) % config.log_every == 0 or step + 1 == config.steps:
                line = _log_line(step + 1, sums, seen, _lr_at(step, config), time.perf_counter() - started)
                logs.append(line)
                if on_log is not None:
                    on_log(line)
                sums, seen = {}, 0
            due = config.checkpoint_every > 0 and (step + 1) % config.checkpoint_every == 0
            if checkpoint is not None and (due or step + 1 == config.steps):
                save_train_state(checkpoint, vqvae, emas, optimiser, step + 1, chunks)
    finally:
        vqvae.eval()
    return logs


def save_train_state(
    path: str | os.PathLike[str],
    vqvae: VQVAE,
    emas: nn.ModuleList,
    optimiser: torch.optim.Optimizer,
    step: int,
    chunks: AudioChunks,
) -> None:
    """The training state after ``step`` steps as one safetensors file, written atomically."""
    tensors = {f"model.{k}": v for k, v in vqvae.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in emas.state_dict().items()})
    state = optimiser.state_dict()
    for index, values in state["state"].items():
        for name, value in values.items():
            tensors[f"optim.{index}.{name}"] = torch.as_tensor(value)
    tensors["rng.torch"] = torch.get_rng_state()
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    metadata = {
        "step": str(step),
        "param_groups": json.dumps(state["param_groups"]),
        "chunks_rng": json.dumps(chunks._rng.bit_generator.state),
    }
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_train_state(
    path: str | os.PathLike[str],
    vqvae: VQVAE,
    emas: nn.ModuleList,
    optimiser: torch.optim.Optimizer,
    chunks: AudioChunks,
) -> int:
    """Restore what ``save_train_state`` wrote into these objects; returns the step it was saved after."""
    from safetensors import safe_open

    try:
        tensors = load_file(str(path))
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
        step = int(metadata["step"])
        groups = json.loads(metadata["param_groups"])
        rng_state = json.loads(metadata["chunks_rng"])
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a VQ-VAE training checkpoint ({exc})") from None

    def part(prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}

    try:
        vqvae.load_state_dict(part("model."))
        emas.load_state_dict(part("ema."))
        optim_state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in part("optim.").items():
            index, name = key.split(".", 1)
            optim_state.setdefault(int(index), {})[name] = value
        optimiser.load_state_dict({"state": optim_state, "param_groups": groups})
    except (RuntimeError, ValueError, KeyError) as exc:
        raise CheckpointError(f"{path}: does not fit this VQ-VAE or config ({exc})") from None
    chunks._rng.bit_generator.state = rng_state
    torch.set_rng_state(tensors["rng.torch"])
    return step


def _accumulate(sums: dict[str, list[float]], total, recons, commits, codebooks) -> None:  # type: ignore[no-untyped-def]
    values = {
        "loss": [float(total.detach())],
        "recons": [float(r.detach()) for r in recons],
        "commit": [float(c.detach()) for c in commits],
        "usage": [float(cb.usage) if cb is not None else 0.0 for cb in codebooks],
    }
    for key, vals in values.items():
        acc = sums.setdefault(key, [0.0] * len(vals))
        for i, v in enumerate(vals):
            acc[i] += v


def _log_line(step: int, sums: dict[str, list[float]], seen: int, lr: float, seconds: float) -> TrainLog:
    def mean(key: str) -> tuple[float, ...]:
        return tuple(v / max(1, seen) for v in sums.get(key, []))

    return TrainLog(
        step=step,
        loss=mean("loss")[0],
        recons=mean("recons"),
        commit=mean("commit"),
        codebook_usage=mean("usage"),
        lr=lr,
        seconds=seconds,
    )
