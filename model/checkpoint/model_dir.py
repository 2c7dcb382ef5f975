"""segue's own model directory: a manifest plus, per component, a config JSON and safetensors weights.

```
MODEL_DIR/
  manifest.json            {"format": "segue-model", "version": 1, "name": ..., "components": [...]}
  vqvae.config.json        {"format": "segue-component-config", "version": 1, "kind": "vqvae", "config": {...}}
  vqvae.safetensors        weights, loaded without any unpickling
  prior_level_2.config.json / prior_level_2.safetensors ...
```

Each manifest entry records the component's name, kind, file names and the sha256 of its weights,
so a damaged or swapped weights file is caught before it is loaded. All files are written
atomically (``model.atomic``), the manifest last, so a crashed conversion never leaves a manifest
that points at missing weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from common.errors import CheckpointError
from model.atomic import atomic_path, atomic_write_text

MODEL_FORMAT = "segue-model"
MODEL_FORMAT_VERSION = 1
CONFIG_FORMAT = "segue-component-config"
CONFIG_FORMAT_VERSION = 1
MANIFEST = "manifest.json"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ComponentEntry:
    """One component of a model directory as listed in its manifest."""

    name: str  # "vqvae", "prior_level_0", ...
    kind: str  # builder kind, e.g. "vqvae"
    config_file: str
    weights_file: str
    sha256: str  # of the weights file

    def to_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "kind": self.kind,
            "config": self.config_file,
            "weights": self.weights_file,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class Manifest:
    name: str
    components: tuple[ComponentEntry, ...]

    def component(self, name: str, model_dir: Path) -> ComponentEntry:
        for entry in self.components:
            if entry.name == name:
                return entry
        have = ", ".join(e.name for e in self.components) or "none"
        raise CheckpointError(f"{model_dir}: has no component '{name}' (it has: {have})")

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "version": MODEL_FORMAT_VERSION,
            "name": self.name,
            "components": [e.to_dict() for e in self.components],
        }


@dataclass(frozen=True)
class LoadedComponent:
    entry: ComponentEntry
    config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(model_dir: str | os.PathLike[str]) -> Manifest:
    directory = Path(model_dir)
    path = directory / MANIFEST
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: model directory not found (create one with 'segue convert')")
    if not path.is_file():
        raise CheckpointError(
            f"{directory}: not a segue model directory (no {MANIFEST}; see 'segue convert')"
        )
    data = _read_json(path)
    if data.get("format") != MODEL_FORMAT:
        raise CheckpointError(f"{path}: not a segue model manifest (format {data.get('format')!r})")
    if data.get("version") != MODEL_FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: model format version {data.get('version')!r} is not supported "
            f"(this segue reads version {MODEL_FORMAT_VERSION})"
        )
    try:
        components = tuple(
            ComponentEntry(c["name"], c["kind"], c["config"], c["weights"], c["sha256"])
            for c in data["components"]
        )
        return Manifest(str(data["name"]), components)
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path}: manifest is incomplete ({exc!r})") from exc


def save_component(
    model_dir: str | os.PathLike[str],
    name: str,
    kind: str,
    config: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    *,
    model_name: str | None = None,
) -> ComponentEntry:
    """Write (or replace) one component and update the manifest; creates ``model_dir`` if needed."""
    if not _NAME.match(name):
        raise CheckpointError(f"component name {name!r} must be letters, digits, '_', '-' or '.'")
    directory = Path(model_dir)
    directory.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(directory) if (directory / MANIFEST).is_file() else Manifest(directory.name, ())
    entry_config = f"{name}.config.json"
    entry_weights = f"{name}.safetensors"
    document = {
        "format": CONFIG_FORMAT,
        "version": CONFIG_FORMAT_VERSION,
        "kind": kind,
        "config": dict(config),
    }
    atomic_write_text(directory / entry_config, json.dumps(document, indent=2, sort_keys=True) + "\n")
    with atomic_path(directory / entry_weights) as tmp:
        save_file(_plain_tensors(state_dict), str(tmp), metadata={"component": name, "kind": kind})
        sha = sha256_file(tmp)
    entry = ComponentEntry(name, kind, entry_config, entry_weights, sha)
    others = tuple(e for e in manifest.components if e.name != name)
    updated = Manifest(model_name or manifest.name, (*others, entry))
    atomic_write_text(directory / MANIFEST, json.dumps(updated.to_dict(), indent=2) + "\n")
    return entry


def load_component(model_dir: str | os.PathLike[str], name: str, *, verify: bool = True) -> LoadedComponent:
    """Read one component's config and weights; ``verify`` checks the weights' sha256 against the manifest."""
    directory = Path(model_dir)
    entry = read_manifest(directory).component(name, directory)
    config_path = directory / entry.config_file
    weights_path = directory / entry.weights_file
    if not config_path.is_file():
        raise CheckpointError(f"{config_path}: missing (listed in {directory / MANIFEST})")
    if not weights_path.is_file():
        raise CheckpointError(f"{weights_path}: missing (listed in {directory / MANIFEST})")
    document = _read_json(config_path)
    if document.get("format") != CONFIG_FORMAT or document.get("version") != CONFIG_FORMAT_VERSION:
        raise CheckpointError(
            f"{config_path}: unsupported component config (format {document.get('format')!r}, "
            f"version {document.get('version')!r}; expected {CONFIG_FORMAT!r} version {CONFIG_FORMAT_VERSION})"
        )
    if document.get("kind") != entry.kind:
        raise CheckpointError(
            f"{config_path}: kind {document.get('kind')!r} disagrees with manifest ({entry.kind!r})"
        )
    if verify and sha256_file(weights_path) != entry.sha256:
        raise CheckpointError(
            f"{weights_path}: weights do not match the manifest checksum (file damaged or replaced); "
            "re-run 'segue convert'"
        )
    try:
        state_dict = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({exc})") from exc
    config = document.get("config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_path}: 'config' must be a JSON object")
    return LoadedComponent(entry, config, state_dict)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def _plain_tensors(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses tensors that share memory (tied embeddings): give each its own copy.
    seen: set[int] = set()
    out = {}
    for key, tensor in state_dict.items():
        t = tensor.detach().cpu().contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen:
            t = t.clone()
        seen.add(ptr)
        out[key] = t
    return out
