"""Conditions over a whole level, cut into each window's ``ConditionInput``; guidance scales per condition.

``LevelConditions`` holds, per condition name, the feature frames of the whole sampled length of one
level (T_total, F) and their coverage (T_total,); ``window(start, n_ctx, batch)`` gives the window's
slice as (batch, n_ctx, F), zero-padded with coverage 0 past the end. ``WindowConditions`` is what a level
prior's ``open_window`` receives: those inputs plus the guidance scale of each condition at this level.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from common.errors import InputError
from model.conditioners.network import ConditionInput


@dataclass(frozen=True)
class LevelFeatures:
    """One condition over a whole level: ``frames`` (T_total, F) float32, ``coverage`` (T_total,)."""

    frames: np.ndarray
    coverage: np.ndarray

    def __post_init__(self) -> None:
        if self.frames.ndim != 2 or self.coverage.shape != (self.frames.shape[0],):
            raise InputError(
                f"level features must be (T, F) with coverage (T,); got {self.frames.shape} and {self.coverage.shape}"
            )


@dataclass(frozen=True)
class WindowConditions:
    """A window's conditions (``inputs``) and the guidance scale of each (``guidance``; missing = 0)."""

    inputs: Mapping[str, ConditionInput]
    guidance: Mapping[str, float] = field(default_factory=dict)

    def guided(self) -> tuple[tuple[str, float], ...]:
        """(name, scale) of the conditions that are present and guided (scale not 0), in input order."""
        return tuple((name, float(self.guidance[name])) for name in self.inputs if self.guidance.get(name, 0.0) != 0.0)


@dataclass(frozen=True)
class LevelConditions:
    """Every condition of one level, by name, and their guidance scales at this level."""

    features: Mapping[str, LevelFeatures]
    guidance: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.guidance) - set(self.features))
        if unknown:
            raise InputError(f"guidance for {', '.join(unknown)}, but the job has no such condition")

    def window(self, start: int, n_ctx: int, batch: int, device: torch.device | None = None) -> WindowConditions:
        inputs = {}
        for name, f in self.features.items():
            frames = np.zeros((n_ctx, f.frames.shape[1]), dtype=np.float32)
            coverage = np.zeros(n_ctx, dtype=np.float32)
            part = f.frames[start : start + n_ctx]
            frames[: len(part)] = part
            coverage[: len(part)] = f.coverage[start : start + n_ctx]
            x = torch.from_numpy(frames).to(device)[None].expand(batch, -1, -1)
            c = torch.from_numpy(coverage).to(device)[None].expand(batch, -1)
            inputs[name] = ConditionInput(x, c)
        return WindowConditions(inputs, dict(self.guidance))
