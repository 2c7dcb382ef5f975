"""Loading what sampling needs from a model directory: the VQ-VAE and one prior per level.

Priors are components of kind ``"prior"`` (config: ``PriorConfig.to_dict()``, weights: the
``JukeboxPrior`` state dict), conventionally named ``prior_level_{L}``. This module registers that
kind with the checkpoint registry if nothing else has (a small helper kept here until the
checkpoint package builds priors itself).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from model.checkpoint.builders import build_component, builder_for, load_vqvae, model_identity, register_kind
from model.checkpoint.model_dir import ComponentEntry, read_manifest, save_component
from model.errors import CheckpointError
from model.prior.prior import JukeboxPrior
from model.prior.prior_config import PriorConfig
from model.sampling.jukebox import JukeboxLevel
from model.sampling.lengths import Geometry
from model.sampling.setup import geometry_for
from model.vqvae import VQVAE

PRIOR_KIND = "prior"


def _build_prior(config: Mapping[str, Any]) -> nn.Module:
    return JukeboxPrior(PriorConfig.from_dict(dict(config)))


def ensure_prior_kind() -> None:
    """Make ``build_component`` able to build priors (no-op if another module registered the kind)."""
    try:
        builder_for(PRIOR_KIND)
    except CheckpointError:
        register_kind(PRIOR_KIND, _build_prior)


def save_prior(model_dir: str | os.PathLike[str], prior: JukeboxPrior, model_name: str | None = None) -> ComponentEntry:
    """Store ``prior`` as component ``prior_level_{level}`` of a model directory."""
    name = f"prior_level_{prior.config.level}"
    return save_component(model_dir, name, PRIOR_KIND, prior.config.to_dict(), prior.state_dict(), model_name=model_name)


@dataclass
class SamplingModel:
    """A model directory loaded for sampling."""

    vqvae: VQVAE
    priors: dict[int, JukeboxPrior]
    identity: str  # name@hash of the VQ-VAE weights (stored in codes files)

    @property
    def geometry(self) -> Geometry:
        c = self.vqvae.config
        return geometry_for(tuple(c.hop_lengths), c.sample_rate, {lv: p.config for lv, p in self.priors.items()})

    def levels(self) -> dict[int, JukeboxLevel]:
        return {lv: JukeboxLevel(p) for lv, p in self.priors.items()}

    @property
    def configs(self) -> dict[int, PriorConfig]:
        return {lv: p.config for lv, p in self.priors.items()}


def load_sampling_model(model_dir: str | os.PathLike[str], device: str | torch.device = "cpu") -> SamplingModel:
    """The VQ-VAE and every prior of ``model_dir``, on ``device``, checked to fit each other."""
    ensure_prior_kind()
    manifest = read_manifest(model_dir)
    vqvae = load_vqvae(model_dir).to(device)
    priors: dict[int, JukeboxPrior] = {}
    for entry in manifest.components:
        if entry.kind != PRIOR_KIND:
            continue
        module = build_component(model_dir, entry.name)
        if not isinstance(module, JukeboxPrior):
            raise CheckpointError(f"{model_dir}: component {entry.name!r} is a {type(module).__name__}, not a prior")
        c = module.config
        hops = vqvae.config.hop_lengths
        if c.levels != len(hops) or c.hop_length != hops[c.level] or c.n_bins != vqvae.config.codebook_size:
            raise CheckpointError(
                f"{model_dir}: prior {entry.name!r} (level {c.level}, hop {c.hop_length}, {c.n_bins} codes) does not "
                f"fit the VQ-VAE (hops {tuple(hops)}, {vqvae.config.codebook_size} codes)"
            )
        if c.level in priors:
            raise CheckpointError(f"{model_dir}: two priors for level {c.level}")
        priors[c.level] = module.to(device).eval()
    if not priors:
        raise CheckpointError(f"{model_dir}: has no priors (components of kind '{PRIOR_KIND}'); it can encode and decode only")
    return SamplingModel(vqvae.eval(), priors, model_identity(model_dir))
