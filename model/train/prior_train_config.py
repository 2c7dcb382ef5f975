"""``PriorTrainConfig``: one prior training run (optimiser, schedule, precision, EMA, what is trained).

Condition dropout for classifier-free guidance is not set here: each conditioner's own
``ConditionerConfig.dropout`` applies (it is saved with the conditioner, so the model directory says how
it was trained). The learning rate is a pure function of the step (``lr_at``), so a resumed run needs no
scheduler state beyond the step.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

from common.errors import ConfigError

DECAYS = ("constant", "linear", "cosine")
PRECISIONS = ("fp32", "bf16")
TRAIN_MODES = ("all", "conditioners", "adapters")
# Fields that do not change the weights: a resumed run may change them.
CADENCE_FIELDS = ("log_every", "checkpoint_every", "val_every", "val_batches")


@dataclass(frozen=True)
class PriorTrainConfig:
    """``steps`` optimiser steps of ``batch_size`` windows. The lr warms up linearly over ``warmup_steps``,
    then decays (``decay``) to ``final_lr_fraction * lr`` at the last step. ``ema_decay`` 0 turns the EMA
    off (the live weights are saved). ``train``: ``all`` (prior, conditioners and adapters given),
    ``conditioners`` (only the conditioners) or ``adapters`` (LoRA adapters and conditioners; the prior's
    own weights frozen). ``val_every`` 0: validate only at the end (when validation items are given)."""

    steps: int = 1000
    batch_size: int = 4
    lr: float = 3e-4
    warmup_steps: int = 100
    decay: Literal["constant", "linear", "cosine"] = "cosine"
    final_lr_fraction: float = 0.1
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    precision: Literal["fp32", "bf16"] = "fp32"
    ema_decay: float = 0.999
    train: Literal["all", "conditioners", "adapters"] = "all"
    seed: int = 0
    log_every: int = 25
    checkpoint_every: int = 500
    val_every: int = 0
    val_batches: int = 4

    def __post_init__(self) -> None:
        positive = ("steps", "batch_size", "log_every", "checkpoint_every", "val_batches")
        for name in positive:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"prior training: {name} = {value!r} must be a whole number of at least 1")
        for name in ("warmup_steps", "val_every", "seed"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"prior training: {name} = {value!r} must be a whole number of 0 or more")
        if not (isinstance(self.lr, int | float) and 0 < self.lr < math.inf):
            raise ConfigError(f"prior training: lr = {self.lr!r} must be a positive finite number")
        if self.decay not in DECAYS:
            raise ConfigError(f"prior training: decay {self.decay!r} is not one of {', '.join(DECAYS)}")
        if not 0.0 <= self.final_lr_fraction <= 1.0:
            raise ConfigError(f"prior training: final_lr_fraction = {self.final_lr_fraction} must lie in [0, 1]")
        if not 0.0 <= self.weight_decay < math.inf:
            raise ConfigError(f"prior training: weight_decay = {self.weight_decay} must be 0 or more")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"prior training: betas {self.betas} must be two numbers in [0, 1)")
        if not 0.0 < self.grad_clip < math.inf:
            raise ConfigError(f"prior training: grad_clip = {self.grad_clip} must be a positive finite number")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"prior training: precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise ConfigError(f"prior training: ema_decay = {self.ema_decay} must lie in [0, 1) (0 = no EMA)")
        if self.train not in TRAIN_MODES:
            raise ConfigError(f"prior training: train {self.train!r} is not one of {', '.join(TRAIN_MODES)}")
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PriorTrainConfig:
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"prior training config: unknown field(s) {unknown}")
        values = dict(d)
        if "betas" in values:
            values["betas"] = tuple(values["betas"])
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"prior training config: {exc}") from None


def lr_at(step: int, config: PriorTrainConfig) -> float:
    """The learning rate of step ``step`` (0-based): linear warm-up, then the decay to the final fraction."""
    c = config
    if step < c.warmup_steps:
        return c.lr * (step + 1) / c.warmup_steps
    span = max(1, c.steps - 1 - c.warmup_steps)
    t = min(1.0, (step - c.warmup_steps) / span)  # 0 after warm-up .. 1 at the last step
    floor = c.final_lr_fraction
    if c.decay == "constant":
        factor = 1.0
    elif c.decay == "linear":
        factor = 1.0 - (1.0 - floor) * t
    else:
        factor = floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * t))
    return c.lr * factor
