"""The conditioner networks: feature frames -> an addition to a prior's ``x_cond``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import cast

import torch
from torch import Tensor, nn

from common.errors import InputError
from model.conditioners.config import ConditionerConfig


@dataclass(frozen=True)
class ConditionInput:
    """One condition for one window: ``features`` (N, T, F) at the prior level's token rate and
    ``coverage`` (N, T) in [0, 1], 1 where the condition has data (a clip that ends inside the window,
    a stem that starts late: 0 there). A condition absent from a job is simply not passed."""

    features: Tensor
    coverage: Tensor

    def __post_init__(self) -> None:
        f, c = self.features, self.coverage
        if f.dim() != 3 or c.dim() != 2 or tuple(c.shape) != tuple(f.shape[:2]):
            raise InputError(
                f"condition features must be (N, T, F) with coverage (N, T); got {tuple(f.shape)} and {tuple(c.shape)}"
            )


class FeatureConditioner(nn.Module):
    """(N, T, F) frames -> (N, T, W): a per-frame projection, a temporal convolution over ``kernel`` tokens,
    and an output projection initialised to zero, times the coverage mask."""

    def __init__(self, config: ConditionerConfig) -> None:
        super().__init__()
        c = self.config = config
        self.norm = nn.LayerNorm(c.n_features)
        self.proj_in = nn.Linear(c.n_features, c.hidden)
        self.conv = nn.Conv1d(c.hidden, c.hidden, c.kernel, padding=c.kernel // 2)
        self.act = nn.GELU()
        self.proj_out = nn.Linear(c.hidden, c.width)
        nn.init.zeros_(self.proj_out.weight)  # untrained: adds exactly zero, the prior is unchanged
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, item: ConditionInput) -> Tensor:
        c = self.config
        if item.features.shape[-1] != c.n_features:
            raise InputError(
                f"condition {c.name!r} takes {c.n_features} features per frame, got {item.features.shape[-1]}"
            )
        dtype = self.proj_in.weight.dtype
        h = self.act(self.proj_in(self.norm(item.features.to(dtype))))  # (N, T, H)
        h = self.act(self.conv(h.transpose(1, 2))).transpose(1, 2)  # (N, T, H)
        return self.proj_out(h) * item.coverage.to(dtype)[..., None]  # (N, T, W)


class ConditionerSet(nn.Module):
    """The conditioners of one prior level, by name. ``forward`` sums what the given conditions add."""

    def __init__(self, configs: Iterable[ConditionerConfig] = ()) -> None:
        super().__init__()
        self.nets = nn.ModuleDict()
        for config in configs:
            self.add(config)

    def add(self, config: ConditionerConfig) -> FeatureConditioner:
        if config.name in self.nets:
            raise InputError(f"a conditioner named {config.name!r} is attached already")
        net = self.nets[config.name] = FeatureConditioner(config)
        return net

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.nets.keys())

    def net(self, name: str) -> FeatureConditioner:
        return cast(FeatureConditioner, self.nets[name])

    def configs(self) -> tuple[ConditionerConfig, ...]:
        return tuple(self.net(name).config for name in self.names)

    def forward(self, inputs: Mapping[str, ConditionInput], generator: torch.Generator | None = None) -> Tensor | None:
        """Sum of the conditioners' outputs (N, T, W) for the conditions in ``inputs``; ``None`` if none
        is given. A name with no conditioner is an ``InputError`` naming the ones there are. While
        training, each condition is dropped per example with its config's ``dropout``."""
        unknown = sorted(set(inputs) - set(self.nets))
        if unknown:
            have = ", ".join(self.names) or "none"
            raise InputError(f"no conditioner for {', '.join(unknown)} on this level (it has: {have})")
        total: Tensor | None = None
        for name, item in inputs.items():
            net = self.net(name)
            if self.training and net.config.dropout > 0:
                n = item.coverage.shape[0]
                keep = torch.rand(n, generator=generator, device=item.coverage.device) >= net.config.dropout
                item = ConditionInput(item.features, item.coverage * keep[:, None].to(item.coverage.dtype))
            out = net(item)
            total = out if total is None else total + out
        return total


def freeze_except(model: nn.Module, trainable: Iterable[nn.Module]) -> int:
    """Freeze every parameter of ``model`` except those of ``trainable`` (the conditioners, adapters):
    an artist teaches an official prior new conditions without changing its own weights. Returns the
    number of parameters left trainable."""
    keep = {id(p) for module in trainable for p in module.parameters()}
    count = 0
    for p in model.parameters():
        p.requires_grad_(id(p) in keep)
        count += p.numel() if id(p) in keep else 0
    return count
