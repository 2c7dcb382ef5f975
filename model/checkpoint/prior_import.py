"""Importing prior checkpoints: which hyper-parameters describe each file, and the strict build.

Hyper-parameters of a prior, first source that applies: ``--hps HPS.json`` (one object for the one prior
given, or objects keyed ``prior_level_N`` / ``vqvae``), ``--preset`` (released configs), the hps saved in
the checkpoint (``checkpoint['hps']``). With none of these the error says what to pass.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from common.errors import CheckpointError, ConfigError
from model.checkpoint.openai import read_openai_checkpoint
from model.checkpoint.priors import (
    build_prior,
    check_codes_in_weights,
    check_prior_fits_vqvae,
    explain_vocab_mismatch,
    preset_prior_config,
    prior_config_for_level,
)

if TYPE_CHECKING:
    from model.prior.prior_config import PriorConfig
    from model.vqvae import VQVAEConfig

_KEYED = re.compile(r"^(vqvae|prior_level_\d+)$")
_VQVAE_PREFIXES = ("encoders.", "decoders.", "bottleneck.")


@dataclass(frozen=True)
class HpsSets:
    """Hyper-parameters read from ``--hps``: for the VQ-VAE and per prior level (each may be absent)."""

    vqvae: dict[str, Any] | None = None
    priors: dict[int, dict[str, Any]] = field(default_factory=dict)
    source: str = ""


def split_hps(data: Mapping[str, Any], prior_levels: Sequence[int], source: str) -> HpsSets:
    """Interpret one ``--hps`` JSON object given the prior levels being converted.

    Keyed (every key ``vqvae`` or ``prior_level_N``): each part goes to its component. A single object of
    Jukebox names: the VQ-VAE's when no prior is given, the prior's when exactly one is given.
    """
    if data and all(_KEYED.match(str(k)) for k in data):
        parts: dict[str, dict[str, Any]] = {}
        for key, value in data.items():
            if not isinstance(value, dict):
                raise ConfigError(f"{source}: '{key}' must be a JSON object of Jukebox hyper-parameters")
            parts[key] = value
        priors = {lv: parts[f"prior_level_{lv}"] for lv in prior_levels if f"prior_level_{lv}" in parts}
        return HpsSets(parts.get("vqvae"), priors, source)
    if not prior_levels:
        return HpsSets(dict(data), {}, source)
    if len(prior_levels) == 1:
        return HpsSets(None, {prior_levels[0]: dict(data)}, source)
    raise ConfigError(
        f"{source}: holds one set of hyper-parameters but {len(prior_levels)} priors are given; key it by "
        "component: {\"prior_level_0\": {...}, \"prior_level_1\": {...}, \"prior_level_2\": {...}, \"vqvae\": {...}}"
    )


def resolve_prior_config(
    level: int,
    path: Path,
    saved_hps: Mapping[str, Any] | None,
    hps: HpsSets,
    preset: str | None,
    vqvae: VQVAEConfig,
) -> PriorConfig:
    """The config of the prior in ``path`` at ``level`` from the first source that applies (module docstring)."""
    if level in hps.priors:
        config = prior_config_for_level(hps.priors[level], level, vqvae, f"{hps.source} (prior_level_{level})")
    elif preset is not None:
        config = preset_prior_config(preset, level)
    elif saved_hps:
        config = prior_config_for_level(saved_hps, level, vqvae, f"{path} (saved hps)")
    else:
        raise ConfigError(
            f"{path}: no hyper-parameters for prior level {level} (the file has none saved). Pass --preset "
            "5b|5b_lyrics|1b_lyrics for the released models, or --hps HPS.json with its Jukebox hyper-parameters"
        )
    check_prior_fits_vqvae(config, vqvae, str(path))
    return config


def import_prior_file(
    level: int,
    path: str | os.PathLike[str],
    hps: HpsSets,
    preset: str | None,
    vqvae: VQVAEConfig,
    *,
    trust_pickle: bool = False,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Read an official ``prior_level_N.pth.tar`` and return (config dict, state dict in the module's dtypes).

    fp16 or fp32 tensors on disk are both accepted: loading casts each to its parameter's dtype (Conv1D
    weights stay float16 for 5b/5b_lyrics, as the released models run them).
    """
    file = Path(path)
    checkpoint = read_openai_checkpoint(file, trust_pickle=trust_pickle)
    if any(k.startswith(_VQVAE_PREFIXES) for k in checkpoint.state_dict):
        raise CheckpointError(
            f"{file}: is a VQ-VAE checkpoint (vqvae.pth.tar), not a prior; pass it to --vqvae"
        )
    config = resolve_prior_config(level, file, checkpoint.hps, hps, preset, vqvae)
    check_codes_in_weights(config, checkpoint.state_dict, str(file))  # not the hps' fault: another VQ-VAE
    try:
        explain_vocab_mismatch(config, checkpoint.state_dict, str(file))
        module = build_prior(config, checkpoint.state_dict, str(file))
    except CheckpointError as exc:
        if level in hps.priors or preset is not None:
            raise
        raise CheckpointError(
            f"{exc} (hyper-parameters from the file's saved hps; for a released file try --preset)"
        ) from exc
    return config.to_dict(), module.state_dict()
