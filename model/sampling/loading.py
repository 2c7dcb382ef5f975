"""Loading what sampling needs from a model directory: the VQ-VAE and one prior per level.

Priors are the model directory's ``prior_level_{L}`` components, loaded by
``model.checkpoint.priors.load_prior`` (strict keys, meta-device build, checked against the VQ-VAE).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from common.errors import CheckpointError, InputError
from model.checkpoint.builders import load_vqvae, model_identity
from model.checkpoint.model_dir import ComponentEntry, save_component
from model.checkpoint.priors import PRIOR_KIND, available_levels, load_prior, prior_component
from model.conditioners.config import ConditionerConfig
from model.conditioners.lora_store import load_lora
from model.conditioners.network import ConditionerSet
from model.conditioners.store import load_conditioners
from model.prior.fast_step import STEPS
from model.prior.prior import JukeboxPrior
from model.prior.prior_config import PriorConfig
from model.sampling.jukebox import JukeboxLevel
from model.sampling.lengths import Geometry
from model.sampling.params import PRECISIONS
from model.sampling.precision import place_prior
from model.sampling.setup import geometry_for
from model.vqvae import VQVAE


def save_prior(model_dir: str | os.PathLike[str], prior: JukeboxPrior, model_name: str | None = None) -> ComponentEntry:
    """Store ``prior`` as component ``prior_level_{level}`` of a model directory."""
    name = prior_component(prior.config.level)
    return save_component(model_dir, name, PRIOR_KIND, prior.config.to_dict(), prior.state_dict(), model_name=model_name)


@dataclass
class SamplingModel:
    """A model directory loaded for sampling."""

    vqvae: VQVAE
    priors: dict[int, JukeboxPrior]
    identity: str  # name@hash of the VQ-VAE weights (stored in codes files)
    step: str = "auto"  # single-token step strategy of every level (model/prior/fast_step.py STEPS)
    conditioners: dict[int, ConditionerSet] = field(default_factory=dict)  # MIDI/stem/grid, per level

    @property
    def geometry(self) -> Geometry:
        c = self.vqvae.config
        return geometry_for(tuple(c.hop_lengths), c.sample_rate, {lv: p.config for lv, p in self.priors.items()})

    def __post_init__(self) -> None:
        self._levels = {lv: JukeboxLevel(p, self.step, self.conditioners.get(lv)) for lv, p in self.priors.items()}

    def conditioner_configs(self) -> dict[int, tuple[ConditionerConfig, ...]]:
        """The conditioners of every level that has any."""
        return {lv: c.configs() for lv, c in self.conditioners.items() if c.names}

    def levels(self) -> dict[int, JukeboxLevel]:
        """One sampling adapter per level, the same objects on every call (they own the caches and
        compiled steps of their priors)."""
        return self._levels

    @property
    def device(self) -> torch.device:
        return next(self.vqvae.parameters()).device

    @property
    def configs(self) -> dict[int, PriorConfig]:
        return {lv: p.config for lv, p in self.priors.items()}


def load_sampling_model(
    model_dir: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    precision: str = "fp32",
    step: str = "auto",
    batch: int = 1,
) -> SamplingModel:
    """The VQ-VAE and every prior of ``model_dir``, on ``device``, checked to fit each other.

    ``precision`` of the priors (``fp32``, ``bf16``, or ``auto``: measured at ``batch`` rows, the run's
    sub-batch size) is chosen here, once: no other copy of the weights is kept (model/sampling/precision.py);
    the VQ-VAE stays fp32. ``step``: the single-token step strategy (``auto``, ``compiled``, ``eager``).
    """
    if precision not in PRECISIONS:
        raise InputError(f"precision {precision!r} is not known: use one of {', '.join(PRECISIONS)}")
    if step not in STEPS:
        raise InputError(f"step {step!r} is not known: use one of {', '.join(STEPS)}")
    vqvae = load_vqvae(model_dir).to(device)
    levels = available_levels(model_dir)
    if not levels:
        raise CheckpointError(f"{model_dir}: has no priors (components of kind '{PRIOR_KIND}'); it can encode and decode only")
    priors, conditioners = {}, {}
    for level in levels:
        priors[level] = prior = load_prior(model_dir, level).eval()
        place_prior(prior, device, precision, batch)
        adapters = load_lora(model_dir, level, prior)  # before the levels are built: a compiled step traces them
        if adapters is not None:
            adapters.to(device)
        attached = load_conditioners(model_dir, level)
        if attached.names:
            _check_width(model_dir, attached, prior)
            conditioners[level] = attached.eval().to(device)
    return SamplingModel(vqvae.eval(), priors, model_identity(model_dir), step, conditioners)


def _check_width(model_dir: str | os.PathLike[str], attached: ConditionerSet, prior: JukeboxPrior) -> None:
    width = prior.config.transformer.width
    for config in attached.configs():
        if config.width != width:
            raise CheckpointError(
                f"{model_dir}: conditioner {config.name!r} of level {config.level} adds width {config.width}, "
                f"but that level's prior has width {width}"
            )
