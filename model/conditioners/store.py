"""Conditioners in a model directory: one component per conditioner, apart from the prior's weights.

Component ``conditioner.level<L>.<name>`` of kind ``feature-conditioner`` holds a ``ConditionerConfig``
and the network's weights, so adapters trained for an official prior travel without its gigabytes and a
model directory with no such component loads exactly as before.
"""

from __future__ import annotations

import os

import torch

from common.errors import CheckpointError, ConfigError
from model.checkpoint.model_dir import load_component, read_manifest, save_component
from model.conditioners.config import ConditionerConfig
from model.conditioners.network import ConditionerSet

KIND = "feature-conditioner"


def component_name(level: int, name: str) -> str:
    return f"conditioner.level{level}.{name}"


def save_conditioners(model_dir: str | os.PathLike[str], conditioners: ConditionerSet) -> list[str]:
    """Write each conditioner of ``conditioners`` as its own component; returns the component names."""
    written = []
    for config in conditioners.configs():
        net = conditioners.net(config.name)
        component = component_name(config.level, config.name)
        state = {k: v.detach().to(torch.float32).contiguous() for k, v in net.state_dict().items()}
        save_component(model_dir, component, KIND, config.to_dict(), state)
        written.append(component)
    return written


def load_conditioners(model_dir: str | os.PathLike[str], level: int, *, verify: bool = True) -> ConditionerSet:
    """The conditioners saved for prior ``level`` (an empty set when there are none)."""
    prefix = f"conditioner.level{level}."
    entries = [e for e in read_manifest(model_dir).components if e.kind == KIND and e.name.startswith(prefix)]
    conditioners = ConditionerSet()
    for entry in entries:
        loaded = load_component(model_dir, entry.name, verify=verify)
        try:
            config = ConditionerConfig.from_dict(loaded.config)
        except ConfigError as exc:
            raise CheckpointError(f"{model_dir}: component {entry.name}: {exc}") from None
        if config.level != level or component_name(level, config.name) != entry.name:
            raise CheckpointError(f"{model_dir}: component {entry.name} holds the config of {config.name!r} at level {config.level}")
        net = conditioners.add(config)
        try:
            net.load_state_dict(loaded.state_dict, strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"{model_dir}: component {entry.name}: weights do not fit its config ({exc})") from None
    return conditioners
