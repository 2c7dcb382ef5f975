"""Convert official OpenAI checkpoints and Hugging Face folders into a segue model directory.

Every converted component is built and loaded strictly before anything is written, so a conversion
either produces a directory that loads, or fails with a ``CheckpointError`` naming the problem.
The directory is assembled beside the target and swapped in at the end: an interrupted conversion
never leaves a half-written model behind, and ``force`` replaces an older conversion as a whole.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from model.atomic import TEMP_PREFIX
from model.checkpoint.builders import build_module, model_identity
from model.checkpoint.hf import hf_vqvae_hps, read_hf_dir, split_hf_state_dict
from model.checkpoint.model_dir import MANIFEST, ComponentEntry, read_manifest, save_component
from model.checkpoint.openai import read_openai_checkpoint
from model.errors import CheckpointError, ConfigError


@dataclass(frozen=True)
class ConvertResult:
    model_dir: Path
    components: tuple[ComponentEntry, ...]
    identity: str  # name@hash of the VQ-VAE, as written into codes files
    skipped: tuple[str, ...] = ()  # components found in the source that this version cannot convert yet


def read_hps_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Jukebox hyper-parameters from a JSON object (Jukebox names, e.g. ``{"l_bins": 1024}``)."""
    file = Path(path)
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{file}: no such file") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{file}: not readable JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: hyper-parameters must be a JSON object of Jukebox names")
    return data


def vqvae_config_from_hps(hps: Mapping[str, Any], source: str) -> Any:
    """``VQVAEConfig`` from Jukebox hps layered over the released VQ-VAE (keys not given keep released values)."""
    from model.vqvae import VQVAEConfig, official_vqvae_config

    merged = {**official_vqvae_config().to_jukebox_hps(), **hps}
    try:
        return VQVAEConfig.from_jukebox_hps(merged)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def convert_openai(
    vqvae_path: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    hps_path: str | os.PathLike[str] | None = None,
    trust_pickle: bool = False,
    force: bool = False,
    name: str | None = None,
) -> ConvertResult:
    """Convert an official ``vqvae.pth.tar`` (hyper-parameters: ``hps_path`` > ``checkpoint['hps']`` > released)."""
    out = Path(out_dir)
    _check_target(out, force)
    checkpoint = read_openai_checkpoint(vqvae_path, trust_pickle=trust_pickle)
    if any(k.startswith(("prior.", "prime_prior.", "conditioner_blocks.")) for k in checkpoint.state_dict):
        raise CheckpointError(
            f"{vqvae_path}: is a prior checkpoint (prior_level_N.pth.tar), not the VQ-VAE; pass vqvae.pth.tar to --vqvae"
        )
    if hps_path is not None:
        hps, hps_source = read_hps_file(hps_path), str(hps_path)
    else:
        hps, hps_source = checkpoint.hps or {}, f"{vqvae_path} (saved hps)"
    config = vqvae_config_from_hps(hps, hps_source)
    module = build_module("vqvae", config.to_dict(), checkpoint.state_dict, str(vqvae_path))
    return _write_model(
        out, name or out.name, {"vqvae": ("vqvae", config.to_dict(), module.state_dict())}, ()
    )


def convert_hf(
    hf_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    trust_pickle: bool = False,
    force: bool = False,
    name: str | None = None,
) -> ConvertResult:
    """Convert a Hugging Face Jukebox folder (stand-alone ``JukeboxVQVAE`` or whole ``JukeboxModel``)."""
    out = Path(out_dir)
    _check_target(out, force)
    checkpoint = read_hf_dir(hf_dir, trust_pickle=trust_pickle)
    parts = split_hf_state_dict(checkpoint)
    if "vqvae" not in parts:
        raise CheckpointError(f"{hf_dir}: holds no VQ-VAE weights")
    config = vqvae_config_from_hps(hf_vqvae_hps(checkpoint), str(Path(hf_dir) / "config.json"))
    module = build_module("vqvae", config.to_dict(), parts["vqvae"], str(hf_dir))
    skipped = tuple(sorted(p for p in parts if p != "vqvae"))
    return _write_model(
        out, name or out.name, {"vqvae": ("vqvae", config.to_dict(), module.state_dict())}, skipped
    )


def _check_target(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise CheckpointError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise CheckpointError(
                f"{out}: directory is not empty; choose another -o or pass --force to replace it"
            )
        if not (out / MANIFEST).is_file():
            raise CheckpointError(
                f"{out}: not empty and not a segue model directory; refusing to replace it even with --force"
            )
    if not out.parent.is_dir():
        raise CheckpointError(f"{out}: parent directory {out.parent} does not exist")


def _write_model(
    out: Path,
    name: str,
    components: Mapping[str, tuple[str, dict[str, Any], Mapping[str, torch.Tensor]]],
    skipped: tuple[str, ...],
) -> ConvertResult:
    staging = out.parent / f"{TEMP_PREFIX}{secrets.token_hex(6)}-{out.name}"
    old = out.parent / f"{TEMP_PREFIX}{secrets.token_hex(6)}-old-{out.name}"
    try:
        for component, (kind, config, state_dict) in components.items():
            save_component(staging, component, kind, config, state_dict, model_name=name)
        replaced = out.exists()
        if replaced:
            os.replace(out, old)
        try:
            os.replace(staging, out)
        except OSError:
            if replaced:
                os.replace(old, out)  # put the previous model back
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    manifest = read_manifest(out)
    return ConvertResult(out, manifest.components, model_identity(out), skipped)
