"""The resumable state of a prior training run: ``run_dir/checkpoint.safetensors``.

One safetensors file, written atomically (a temporary file in the same folder, fsynced, ``os.replace``d,
``model.atomic``), so a run killed at any moment (``kill -9`` included) leaves the previous complete
checkpoint or the new one. Tensors: ``model.<name>`` the live trained parameters, ``ema.<name>`` their
average, ``optim.<i>.<key>`` AdamW's state of parameter ``i``, ``rng.torch`` the global torch generator.
Everything else is JSON in the file's metadata (``segue``): format and version, step, elapsed seconds,
the training config, the prior/conditioner/adapter configs, the parameter names in optimiser order, a
fingerprint of the data and AdamW's parameter groups. Nothing is unpickled when it is read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import Tensor

from common.errors import CheckpointError
from model.atomic import atomic_path

FORMAT = "segue-prior-training"
VERSION = 1
FILENAME = "checkpoint.safetensors"


@dataclass(frozen=True)
class TrainingCheckpoint:
    """A checkpoint read back: ``header`` (the JSON), the live ``model`` and ``ema`` parameters by name,
    the optimiser's ``state_dict`` and the global torch generator's state."""

    header: dict[str, Any]
    model: dict[str, Tensor]
    ema: dict[str, Tensor]
    optimiser: dict[str, Any]
    torch_rng: Tensor

    @property
    def step(self) -> int:
        return int(self.header["step"])


def checkpoint_path(run_dir: str | os.PathLike[str]) -> Path:
    return Path(run_dir) / FILENAME


def save_checkpoint(
    run_dir: str | os.PathLike[str], header: Mapping[str, Any], model: Mapping[str, Tensor],
    ema: Mapping[str, Tensor], optimiser: Mapping[str, Any],
) -> Path:  # fmt: skip
    """Write the checkpoint atomically; ``header`` must be JSON-safe and hold ``step``."""
    tensors: dict[str, Tensor] = {}
    for prefix, named in (("model", model), ("ema", ema)):
        for name, t in named.items():
            tensors[f"{prefix}.{name}"] = t.detach().cpu().contiguous().clone()
    for index, state in optimiser["state"].items():
        for key, value in state.items():
            tensors[f"optim.{index}.{key}"] = torch.as_tensor(value).detach().cpu().contiguous().clone()
    tensors["rng.torch"] = torch.get_rng_state()
    document = {"format": FORMAT, "version": VERSION, **header, "optim_groups": optimiser["param_groups"]}
    path = checkpoint_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"segue": json.dumps(document)})
    return path


def load_checkpoint(run_dir: str | os.PathLike[str]) -> TrainingCheckpoint | None:
    """The run's checkpoint, or None when it has none; a file that is not one is a ``CheckpointError``."""
    path = checkpoint_path(run_dir)
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is not iterable)
        header = json.loads(meta["segue"])
    except (SafetensorError, OSError, KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable prior training checkpoint ({exc}); move it away to start afresh") from None
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise CheckpointError(
            f"{path}: format {header.get('format')!r} version {header.get('version')!r}, "
            f"this segue reads {FORMAT!r} version {VERSION}"
        )
    model = {k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")}
    ema = {k.removeprefix("ema."): v for k, v in tensors.items() if k.startswith("ema.")}
    state: dict[int, dict[str, Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    groups = header.pop("optim_groups")
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimiser = {"state": state, "param_groups": groups}
    if "rng.torch" not in tensors:
        raise CheckpointError(f"{path}: has no torch generator state (rng.torch)")
    return TrainingCheckpoint(header, model, ema, optimiser, tensors["rng.torch"])
