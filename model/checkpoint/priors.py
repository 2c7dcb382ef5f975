"""Priors in a segue model directory: components ``prior_level_0/1/2`` of kind "prior".

A model directory holds one VQ-VAE and any set of priors. ``load_prior(dir, level)`` builds one with its
weights loaded strictly, after checking that it generates codes of the directory's VQ-VAE (same level
count, hops, codebook size and sample rate), so a prior converted against another VQ-VAE is refused with
the reason instead of producing noise. ``prior_config_for_level`` / ``preset_prior_config`` are how the
importers turn Jukebox hyper-parameters or a release name into a ``PriorConfig``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from common.errors import CheckpointError, ConfigError
from model.checkpoint.builders import check_state_dict
from model.checkpoint.model_dir import load_component, read_manifest

if TYPE_CHECKING:
    from model.prior.prior import JukeboxPrior
    from model.prior.prior_config import PriorConfig
    from model.vqvae import VQVAEConfig

PRIOR_KIND = "prior"
PRESETS = ("5b", "5b_lyrics", "1b_lyrics")  # released model sets: top prior + the shared upsamplers
_PRIOR_NAME = re.compile(r"^prior_level_(\d+)$")
_GEOMETRY_HPS = ("downs_t", "strides_t", "sr")  # Jukebox names a prior shares with its VQ-VAE (besides l_bins)


def prior_component(level: int) -> str:
    """Component name of the prior that generates ``level`` (0 = bottom, hop 8)."""
    return f"prior_level_{level}"


def available_levels(model_dir: str | os.PathLike[str]) -> tuple[int, ...]:
    """Levels (ascending) for which the model directory holds a prior."""
    manifest = read_manifest(model_dir)
    return tuple(
        sorted(
            int(m[1]) for e in manifest.components if e.kind == PRIOR_KIND and (m := _PRIOR_NAME.match(e.name))
        )
    )


def load_prior(model_dir: str | os.PathLike[str], level: int, *, verify: bool = True) -> JukeboxPrior:
    """The prior of ``level`` (CPU, eval mode, weights in the stored dtype), checked against the VQ-VAE."""
    directory = Path(model_dir)
    have = available_levels(directory)
    if level not in have:
        listed = ", ".join(str(lv) for lv in have) or "none"
        raise CheckpointError(
            f"{directory}: has no prior for level {level} (prior levels it has: {listed}); add one with "
            f"'segue convert --format openai --prior-level-{level} prior_level_{level}.pth.tar ... -o {directory}'"
        )
    loaded = load_component(directory, prior_component(level), verify=verify)
    source = str(directory / loaded.entry.weights_file)
    config = prior_config_from_dict(loaded.config, str(directory / loaded.entry.config_file))
    if config.level != level:
        raise CheckpointError(
            f"{directory / loaded.entry.config_file}: stored as {prior_component(level)} but its config says "
            f"level {config.level}; re-run 'segue convert'"
        )
    check_prior_fits_vqvae(config, read_vqvae_config(directory), source)
    return build_prior(config, loaded.state_dict, source)


def build_prior(config: PriorConfig, state_dict: Mapping[str, torch.Tensor], source: str) -> JukeboxPrior:
    """A ``JukeboxPrior`` holding ``state_dict`` (strictly checked), each tensor cast to its parameter's dtype.

    The module is laid out on the meta device and the given tensors become its parameters, so a 5B prior
    is never randomly initialised or held twice; tied weights (x_out = x_emb) stay one parameter.
    """
    from model.prior.prior import JukeboxPrior

    with torch.device("meta"):
        module = JukeboxPrior(config)
    check_state_dict(module, state_dict, source)
    canonical: dict[int, str] = {}
    aliases: dict[str, str] = {}  # parameter name -> name of the parameter it is tied to
    for name, param in module.named_parameters(remove_duplicate=False):
        if id(param) in canonical:
            aliases[name] = canonical[id(param)]
        else:
            canonical[id(param)] = name
    expected = module.state_dict()
    cast = {k: v.to(expected[k].dtype) for k, v in state_dict.items()}
    module.load_state_dict(cast, strict=True, assign=True)
    for alias, name in aliases.items():
        owner, _, attr = alias.rpartition(".")
        setattr(module.get_submodule(owner), attr, module.get_parameter(name))
    left = [n for n, t in (*module.named_parameters(), *module.named_buffers()) if t.is_meta]
    if left:
        raise CheckpointError(f"{source}: weights {left[:3]} were not loaded")
    return module.eval()


def prior_config_from_dict(config: Mapping[str, Any], source: str) -> PriorConfig:
    from model.prior.prior_config import PriorConfig

    try:
        return PriorConfig.from_dict(config)
    except ConfigError as exc:
        raise CheckpointError(f"{source}: not a valid prior config ({exc})") from exc


def read_vqvae_config(model_dir: str | os.PathLike[str]) -> VQVAEConfig:
    """The directory's ``VQVAEConfig``, read from its config JSON only (the weights are not loaded)."""
    from model.vqvae import VQVAEConfig

    directory = Path(model_dir)
    entry = read_manifest(directory).component("vqvae", directory)
    path = directory / entry.config_file
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return VQVAEConfig.from_dict(dict(document["config"]))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable VQ-VAE config ({exc})") from exc
    except ConfigError as exc:
        raise CheckpointError(f"{path}: not a valid VQ-VAE config ({exc})") from exc


def read_prior_config(model_dir: str | os.PathLike[str], level: int) -> PriorConfig:
    """The ``PriorConfig`` of the directory's level-``level`` prior, from its config JSON only (no weights)."""
    directory = Path(model_dir)
    entry = read_manifest(directory).component(prior_component(level), directory)
    path = directory / entry.config_file
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        config = dict(document["config"])
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable prior config ({exc})") from exc
    return prior_config_from_dict(config, str(path))


def check_prior_fits_vqvae(prior: PriorConfig, vqvae: VQVAEConfig, source: str) -> None:
    """``CheckpointError`` naming each disagreement between a prior and the VQ-VAE whose codes it models."""
    problems = []
    if prior.levels != vqvae.levels:
        problems.append(f"the prior expects a {prior.levels}-level VQ-VAE, this one has {vqvae.levels} levels")
    elif not 0 <= prior.level < vqvae.levels:
        problems.append(f"prior level {prior.level} is outside the VQ-VAE's levels 0..{vqvae.levels - 1}")
    geo = prior.geometry
    if tuple(geo.downs_t) != tuple(vqvae.downs_t) or tuple(geo.strides_t) != tuple(vqvae.strides_t):
        problems.append(
            f"hops differ (prior downs_t {list(geo.downs_t)} strides_t {list(geo.strides_t)}, "
            f"VQ-VAE downs_t {list(vqvae.downs_t)} strides_t {list(vqvae.strides_t)})"
        )
    if prior.n_bins != vqvae.codebook_size:
        problems.append(f"the prior models {prior.n_bins} codes, the VQ-VAE's codebook has {vqvae.codebook_size}")
    if prior.labels.sample_rate != vqvae.sample_rate:
        problems.append(f"sample rate {prior.labels.sample_rate} Hz vs the VQ-VAE's {vqvae.sample_rate} Hz")
    if problems:
        raise CheckpointError(
            f"{source}: this level-{prior.level} prior does not fit the model's VQ-VAE: {'; '.join(problems)}. "
            "A prior only works with the VQ-VAE it was trained on"
        )


def prior_config_for_level(
    hps: Mapping[str, Any], level: int, vqvae: VQVAEConfig, source: str
) -> PriorConfig:
    """``PriorConfig`` from Jukebox hps for the prior of ``level``; geometry not in ``hps`` comes from ``vqvae``.

    The number of codes is always the VQ-VAE's, as in Jukebox (``make_prior``: ``bins=vqvae.l_bins``):
    saved prior hps often keep the library default ``l_bins=512``, which the original never reads.
    ``check_codes_in_weights`` then holds the weights to that number. Other geometry that ``hps`` does
    give is kept, so a disagreement with the VQ-VAE is reported, not hidden.
    """
    from model.checkpoint.jukebox_hps import prior_config_from_hps

    if not isinstance(hps, Mapping):
        raise ConfigError(f"{source}: hyper-parameters must be a JSON object of Jukebox names")
    if "level" in hps and hps["level"] != level:
        raise ConfigError(
            f"{source}: hyper-parameters are for level {hps['level']!r}, but the file was given as prior level {level}"
        )
    vq_hps = vqvae.to_jukebox_hps()
    fallback = {k: vq_hps[k] for k in _GEOMETRY_HPS if k in vq_hps and hps.get(k) is None}
    fallback["l_bins"] = vqvae.codebook_size  # wins over the prior's own l_bins
    try:
        return prior_config_from_hps({**hps, "level": level}, fallback)
    except TypeError as exc:  # a required field (prior_width, n_ctx, ...) is missing
        raise ConfigError(
            f"{source}: incomplete prior hyper-parameters ({exc}); give at least prior_width, prior_depth, heads, "
            "attn_order, blocks, init_scale and n_ctx (or sample_length), or use --preset"
        ) from exc
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def preset_prior_config(preset: str, level: int) -> PriorConfig:
    """The released prior of ``level`` in model set ``preset`` (5b, 5b_lyrics, 1b_lyrics)."""
    from model.prior import presets

    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    if level == 2:
        return presets.official(f"prior_{preset}")
    if level in (0, 1):
        return presets.official(f"upsampler_level_{level}")
    raise ConfigError(f"preset {preset!r} has priors for levels 0, 1 and 2, not level {level}")


def check_codes_in_weights(config: PriorConfig, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """``CheckpointError`` when the weights model another number of codes than ``config.n_bins`` (the VQ-VAE's).

    Read from the rows of the code embedding and output (``prior.x_emb`` / ``prior.x_out``; a merged-lyrics
    prior shares them with the lyric characters, which ``explain_vocab_mismatch`` checks) and of an
    upsampler's embedding of the codes above (``conditioner_blocks.0.x_emb``).
    """
    keys = [] if config.lyrics.kind == "merged" else ["prior.x_emb.weight", "prior.x_out.weight"]
    if config.is_upsampler:
        keys.append("conditioner_blocks.0.x_emb.weight")
    for key in keys:
        weight = state_dict.get(key)
        if weight is None or weight.dim() != 2 or weight.shape[0] == config.n_bins:
            continue  # absent or odd tensors are named by the strict state-dict check
        rows = int(weight.shape[0])
        raise CheckpointError(
            f"{source}: this level-{config.level} prior does not fit the model's VQ-VAE: its weights model {rows} "
            f"codes ({key} has {rows} rows), the VQ-VAE's codebook has {config.n_bins}. A prior only works with "
            "the VQ-VAE it was trained on"
        )


def explain_vocab_mismatch(config: PriorConfig, state_dict: Mapping[str, torch.Tensor], source: str) -> None:
    """A clear ``CheckpointError`` when the token embedding's rows disagree with the configured vocabulary.

    The usual cause is a lyrics vocabulary size of 80 where the 1b_lyrics release uses 79 (2048 + 79 = 2127
    rows; Hugging Face's default prior config has 80, giving 2128).
    """
    weight = state_dict.get("prior.x_emb.weight")
    if weight is None or weight.dim() != 2 or weight.shape[0] == config.vocab_size:
        return
    rows = int(weight.shape[0])
    if config.lyrics.kind == "merged":
        raise CheckpointError(
            f"{source}: the token embedding has {rows} rows but the config gives {config.n_bins} music codes + "
            f"{config.lyrics.n_vocab} lyric characters = {config.vocab_size}. The released 1b_lyrics prior has 2127 = "
            f"2048 + 79 (v3 lyrics vocabulary); Hugging Face's default prior config says 80 (2128). Set the lyrics "
            f"vocabulary (n_vocab, or lyric_vocab_size in a Hugging Face config.json) to {rows - config.n_bins}"
        )
    raise CheckpointError(
        f"{source}: the token embedding has {rows} rows but the config gives a vocabulary of {config.vocab_size} "
        f"(codebook size {config.n_bins}); the hyper-parameters do not describe this checkpoint"
    )
