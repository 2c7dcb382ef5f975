"""Adapters in a model directory: component ``adapter.level<L>`` of kind ``lora-adapter`` (a ``LoraConfig`` and
the adapters' weights), apart from the prior's weights, so an artist's adapters travel without the prior's
gigabytes and a model directory without one loads exactly as before."""

from __future__ import annotations

import os

import torch

from common.errors import CheckpointError, ConfigError, InputError
from model.checkpoint.model_dir import load_component, read_manifest, save_component
from model.conditioners.lora import LoraConfig, LoraSet, attach_lora
from model.prior.prior import JukeboxPrior

KIND = "lora-adapter"


def component_name(level: int) -> str:
    return f"adapter.level{level}"


def save_lora(model_dir: str | os.PathLike[str], lora: LoraSet) -> str:
    """Write ``lora`` as the component of its level (replacing one saved before); returns its name."""
    name = component_name(lora.config.level)
    state = {k: v.detach().to(torch.float32).contiguous() for k, v in lora.state_dict().items()}
    save_component(model_dir, name, KIND, lora.config.to_dict(), state)
    return name


def load_lora(
    model_dir: str | os.PathLike[str], level: int, prior: JukeboxPrior, *, verify: bool = True
) -> LoraSet | None:
    """Attach the adapters saved for ``level`` to ``prior`` and return them; ``None`` (and the prior untouched)
    when the directory has none. A component that does not fit the prior is a ``CheckpointError`` naming it,
    and leaves the prior as it was."""
    name = component_name(level)
    entry = next((e for e in read_manifest(model_dir).components if e.name == name), None)
    if entry is None:
        return None
    if entry.kind != KIND:
        raise CheckpointError(f"{model_dir}: component {name} is of kind {entry.kind!r}, not {KIND!r}")
    loaded = load_component(model_dir, name, verify=verify)
    try:
        config = LoraConfig.from_dict(loaded.config)
    except ConfigError as exc:
        raise CheckpointError(f"{model_dir}: component {name}: {exc}") from None
    if config.level != level:
        raise CheckpointError(f"{model_dir}: component {name} holds adapters of level {config.level}, not {level}")
    state = loaded.state_dict
    bad = sorted(k for k, v in state.items() if not v.is_floating_point() or not bool(v.isfinite().all()))
    if bad:
        raise CheckpointError(
            f"{model_dir}: component {name}: adapter weights that are not finite floats: {', '.join(bad)}"
        )
    try:
        return attach_lora(prior, config, state)
    except InputError as exc:
        raise CheckpointError(f"{model_dir}: component {name} does not fit this prior: {exc}") from None
    except RuntimeError as exc:
        raise CheckpointError(f"{model_dir}: component {name}: weights do not fit its config ({exc})") from None
