"""Convert official OpenAI checkpoints and Hugging Face folders into a segue model directory.

Every converted component is built and loaded strictly before it is written, so a conversion either
produces a directory that loads, or fails with a ``CheckpointError`` naming the problem. Priors are
checked against the VQ-VAE of the same directory (levels, hops, codebook size, sample rate).
The directory is assembled beside the target and swapped in at the end: an interrupted conversion
never leaves a half-written model behind, and ``force`` replaces an older conversion as a whole.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from common.errors import CheckpointError, ConfigError
from model.atomic import TEMP_PREFIX
from model.checkpoint.builders import build_module, model_identity
from model.checkpoint.hf import hf_vqvae_hps, read_hf_dir, split_hf_state_dict
from model.checkpoint.hf_priors import hf_prior_config_to_hps, hf_prior_configs
from model.checkpoint.model_dir import MANIFEST, ComponentEntry, read_manifest, save_component
from model.checkpoint.openai import read_openai_checkpoint
from model.checkpoint.prior_import import HpsSets, import_prior_file, split_hps
from model.checkpoint.priors import (
    PRIOR_KIND,
    build_prior,
    check_codes_in_weights,
    check_prior_fits_vqvae,
    explain_vocab_mismatch,
    prior_component,
    prior_config_for_level,
    read_vqvae_config,
)

Part = tuple[str, dict[str, Any], Mapping[str, torch.Tensor]]
"""One component to write: (kind, config dict, state dict)."""


@dataclass(frozen=True)
class ConvertResult:
    model_dir: Path
    components: tuple[ComponentEntry, ...]
    identity: str  # name@hash of the VQ-VAE, as written into codes files
    skipped: tuple[str, ...] = ()  # priors listed in a Hugging Face config.json whose weights are absent


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
    vqvae_path: str | os.PathLike[str] | None,
    out_dir: str | os.PathLike[str],
    *,
    priors: Mapping[int, str | os.PathLike[str]] | None = None,
    hps_path: str | os.PathLike[str] | None = None,
    preset: str | None = None,
    trust_pickle: bool = False,
    force: bool = False,
    name: str | None = None,
) -> ConvertResult:
    """Convert an official ``vqvae.pth.tar`` and/or ``prior_level_N.pth.tar`` files (``priors`` = {level: path}).

    VQ-VAE hyper-parameters: ``hps_path`` > ``checkpoint['hps']`` > released. Priors: see
    ``model.checkpoint.prior_import``. Without ``vqvae_path`` the priors are added to the existing model
    directory ``out_dir`` (its VQ-VAE fixes their geometry); a prior level it already has needs ``force``.
    With ``vqvae_path`` a new directory is written (``force`` replaces an old one as a whole).
    """
    out = Path(out_dir)
    prior_files = {int(level): Path(p) for level, p in (priors or {}).items()}
    if vqvae_path is None and not prior_files:
        raise ConfigError("nothing to convert: give the VQ-VAE (vqvae.pth.tar) and/or prior_level_N.pth.tar files")
    hps = HpsSets()
    if hps_path is not None:
        hps = split_hps(read_hps_file(hps_path), sorted(prior_files), str(hps_path))
    components: dict[str, Part] = {}
    base: Path | None = None
    if vqvae_path is None:
        base = _check_add_target(out, prior_files, force)
        vqvae_config = read_vqvae_config(out)
        name = name or read_manifest(out).name
    else:
        _check_target(out, force)
        vqvae_config = _convert_vqvae_file(Path(vqvae_path), hps, trust_pickle, components)

    def parts() -> Iterator[tuple[str, Part]]:
        yield from components.items()
        for level, path in sorted(prior_files.items()):  # one prior in memory at a time
            config, state = import_prior_file(level, path, hps, preset, vqvae_config, trust_pickle=trust_pickle)
            yield prior_component(level), (PRIOR_KIND, config, state)

    return _write_model(out, name or out.name, parts(), (), base=base)


def _convert_vqvae_file(
    path: Path,
    hps: HpsSets,
    trust_pickle: bool,
    components: dict[str, Part],
) -> Any:
    checkpoint = read_openai_checkpoint(path, trust_pickle=trust_pickle)
    if any(k.startswith(("prior.", "prime_prior.", "conditioner_blocks.")) for k in checkpoint.state_dict):
        raise CheckpointError(
            f"{path}: is a prior checkpoint (prior_level_N.pth.tar), not the VQ-VAE; pass vqvae.pth.tar to --vqvae"
        )
    if hps.vqvae is not None:
        vq_hps, hps_source = hps.vqvae, hps.source
    else:
        vq_hps, hps_source = checkpoint.hps or {}, f"{path} (saved hps)"
    config = vqvae_config_from_hps(vq_hps, hps_source)
    components["vqvae"] = _vqvae_part(config, checkpoint.state_dict, str(path))
    return config


def _vqvae_part(config: Any, state_dict: Mapping[str, torch.Tensor], source: str) -> Part:
    """Load the VQ-VAE strictly (a checkpoint that does not fit fails here) and return what to write."""
    module = build_module("vqvae", config.to_dict(), state_dict, source)
    return "vqvae", config.to_dict(), module.state_dict()


def convert_hf(
    hf_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    trust_pickle: bool = False,
    force: bool = False,
    name: str | None = None,
) -> ConvertResult:
    """Convert a Hugging Face Jukebox folder: a stand-alone ``JukeboxVQVAE``, or a whole ``JukeboxModel``
    (VQ-VAE and every prior)."""
    out = Path(out_dir)
    _check_target(out, force)
    checkpoint = read_hf_dir(hf_dir, trust_pickle=trust_pickle)
    parts = split_hf_state_dict(checkpoint)
    if "vqvae" not in parts:
        raise CheckpointError(f"{hf_dir}: holds no VQ-VAE weights")
    config = vqvae_config_from_hps(hf_vqvae_hps(checkpoint), str(Path(hf_dir) / "config.json"))
    components = {"vqvae": _vqvae_part(config, parts.pop("vqvae"), str(hf_dir))}
    priors = hf_prior_configs(checkpoint) if checkpoint.is_full_model else []
    skipped: list[str] = []

    def all_parts() -> Iterator[tuple[str, Part]]:
        yield from components.items()
        for index, hf_config in enumerate(priors):
            level = len(priors) - 1 - index
            component = prior_component(level)
            if component not in parts:  # listed in config.json, no weights saved: reported, not invented
                skipped.append(component)
                continue
            source = f"{hf_dir} priors.{index} ({component})"
            prior_hps = hf_prior_config_to_hps(hf_config, level, source)
            try:
                prior_config = prior_config_for_level(prior_hps, level, config, source)
            except ConfigError as exc:
                raise CheckpointError(f"config.json does not describe a valid prior: {exc}") from exc
            check_prior_fits_vqvae(prior_config, config, source)
            state = parts.pop(component)
            check_codes_in_weights(prior_config, state, source)
            explain_vocab_mismatch(prior_config, state, source)
            prior = build_prior(prior_config, state, source)
            yield component, (PRIOR_KIND, prior_config.to_dict(), prior.state_dict())

    return _write_model(out, name or out.name, all_parts(), skipped)


def _check_add_target(out: Path, prior_files: Mapping[int, Path], force: bool) -> Path:
    """Checks for adding priors to the existing model directory ``out``; returns it."""
    if not (out / MANIFEST).is_file():
        raise CheckpointError(
            f"{out}: no segue model directory to add priors to; a new model directory also needs "
            "--vqvae vqvae.pth.tar"
        )
    manifest = read_manifest(out)
    names = {e.name for e in manifest.components}
    if "vqvae" not in names:
        raise CheckpointError(f"{out}: has no VQ-VAE; convert vqvae.pth.tar into it first (--vqvae)")
    present = [prior_component(lv) for lv in sorted(prior_files) if prior_component(lv) in names]
    if present and not force:
        raise CheckpointError(
            f"{out}: already has {', '.join(present)}; pass --force to replace {'it' if len(present) == 1 else 'them'}"
        )
    return out


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
    components: Iterable[tuple[str, Part]],
    skipped: Sequence[str],
    *,
    base: Path | None = None,
) -> ConvertResult:
    """Stage ``base``'s files (hard links, no copying of gigabytes) plus ``components`` (built lazily, one at
    a time), then swap the staged directory in for ``out``."""
    staging = out.parent / f"{TEMP_PREFIX}{secrets.token_hex(6)}-{out.name}"
    old = out.parent / f"{TEMP_PREFIX}{secrets.token_hex(6)}-old-{out.name}"
    try:
        if base is not None:
            _link_files(base, staging)
        for component, (kind, config, state_dict) in components:
            save_component(staging, component, kind, config, state_dict, model_name=name)
            del state_dict
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
    return ConvertResult(out, manifest.components, model_identity(out), tuple(skipped))


def _link_files(source: Path, target: Path) -> None:
    # save_component replaces files by rename, so a linked file in the staging copy is never written through.
    target.mkdir()
    for path in source.iterdir():
        if path.is_file() and not path.name.startswith(TEMP_PREFIX):
            try:
                os.link(path, target / path.name)
            except OSError:
                shutil.copy2(path, target / path.name)
