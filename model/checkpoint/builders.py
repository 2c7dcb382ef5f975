"""Build modules from a model directory: a small registry of component kind -> builder.

A builder turns a component's config dict into an (uninitialised) module; ``build_component`` then
loads the weights strictly, so every missing, unexpected or wrongly shaped tensor is reported in one
``CheckpointError`` instead of surfacing later as garbage audio. Kinds: "vqvae" and "prior"
(``model.checkpoint.priors.load_prior`` adds the checks against the directory's VQ-VAE).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from common.errors import CheckpointError, ConfigError
from model.checkpoint.model_dir import load_component, read_manifest

if TYPE_CHECKING:
    from model.vqvae import VQVAE

Builder = Callable[[Mapping[str, Any]], nn.Module]
_BUILDERS: dict[str, Builder] = {}


def register_kind(kind: str, builder: Builder) -> None:
    """Register how to build components of ``kind`` from their config dict."""
    _BUILDERS[kind] = builder


def builder_for(kind: str) -> Builder:
    if kind not in _BUILDERS:
        raise CheckpointError(f"unknown component kind {kind!r} (known: {', '.join(sorted(_BUILDERS))})")
    return _BUILDERS[kind]


def _build_vqvae(config: Mapping[str, Any]) -> nn.Module:
    # Imported on use so reading a manifest never pays for importing every model family.
    from model.vqvae import VQVAE, VQVAEConfig

    return VQVAE(VQVAEConfig.from_dict(dict(config)))


def _build_prior(config: Mapping[str, Any]) -> nn.Module:
    from model.prior.prior import JukeboxPrior
    from model.prior.prior_config import PriorConfig

    return JukeboxPrior(PriorConfig.from_dict(dict(config)))


register_kind("vqvae", _build_vqvae)
register_kind("prior", _build_prior)  # components prior_level_0/1/2; see model.checkpoint.priors


def check_state_dict(module: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """Raise ``CheckpointError`` listing (a few) missing/unexpected keys and shape mismatches."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    wrong = [
        f"{k} {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state_dict and tuple(state_dict[k].shape) != tuple(v.shape)
    ]
    problems = []
    for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", wrong)):
        if items:
            more = f" and {len(items) - 3} more" if len(items) > 3 else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:3])}{more}")
    if problems:
        raise CheckpointError(f"{source}: weights do not fit the model ({'; '.join(problems)})")


def build_module(
    kind: str, config: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor], source: str
) -> nn.Module:
    """Build a ``kind`` module from ``config`` and load ``state_dict`` strictly; ``source`` names it in errors."""
    try:
        module = builder_for(kind)(config)
    except (ConfigError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{source}: config does not describe a valid {kind} ({exc})") from exc
    check_state_dict(module, state_dict, source)
    module.load_state_dict(dict(state_dict), strict=True)
    return module.eval()


def build_component(model_dir: str | os.PathLike[str], name: str, *, verify: bool = True) -> nn.Module:
    """Build component ``name`` of a model directory with its weights loaded (CPU, eval mode)."""
    loaded = load_component(model_dir, name, verify=verify)
    return build_module(
        loaded.entry.kind, loaded.config, loaded.state_dict, str(Path(model_dir) / loaded.entry.weights_file)
    )


def load_vqvae(model_dir: str | os.PathLike[str], *, verify: bool = True) -> VQVAE:
    """The model directory's VQ-VAE (component ``vqvae``), weights loaded, in eval mode."""
    from model.vqvae import VQVAE

    module = build_component(model_dir, "vqvae", verify=verify)
    if not isinstance(module, VQVAE):
        raise CheckpointError(f"{model_dir}: component 'vqvae' is a {type(module).__name__}, not a VQ-VAE")
    return module


def model_identity(model_dir: str | os.PathLike[str], component: str = "vqvae") -> str:
    """``name@hash``: the model's name and the first 10 hex digits of ``component``'s weights sha256.

    Stored in codes files so decode can tell codes made by a different VQ-VAE.
    """
    directory = Path(model_dir)
    manifest = read_manifest(directory)
    return f"{manifest.name}@{manifest.component(component, directory).sha256[:10]}"
