"""Reading Hugging Face ``transformers`` Jukebox snapshots (a directory with config.json + weights).

Two layouts are understood: a stand-alone ``JukeboxVQVAE`` (``model_type`` "jukebox_vqvae", keys
without prefix) and a whole ``JukeboxModel`` (``model_type`` "jukebox", keys ``vqvae.*`` and
``priors.{k}.*``). Weights come from ``model.safetensors`` (optionally sharded with an index) or
``pytorch_model.bin``, a pickle opened with ``weights_only=True``. transformers itself is never
imported: names are mapped by ``model.checkpoint.hf_keys``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from common.errors import CheckpointError
from model.checkpoint.hf_keys import prior_hf_to_openai, split_hf_model_key, vqvae_keys_hf_to_openai
from model.checkpoint.openai import load_torch_file

JUKEBOX_SAMPLE_RATE = 44100


@dataclass(frozen=True)
class HFCheckpoint:
    config: dict[str, Any]  # config.json as read
    state_dict: dict[str, torch.Tensor]  # HF key names
    path: Path

    @property
    def is_full_model(self) -> bool:
        return self.config.get("model_type") == "jukebox" or "vqvae_config" in self.config


def read_hf_dir(hf_dir: str | os.PathLike[str], *, trust_pickle: bool = False) -> HFCheckpoint:
    directory = Path(hf_dir)
    if not directory.is_dir():
        raise CheckpointError(f"{directory}: not a directory (expected a Hugging Face model folder)")
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{directory}: no config.json; not a Hugging Face model folder")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_path}: not readable JSON ({exc})") from exc
    if not isinstance(config, dict) or config.get("model_type") not in ("jukebox", "jukebox_vqvae"):
        found = config.get("model_type") if isinstance(config, dict) else None
        raise CheckpointError(
            f"{config_path}: model_type {found!r} is not a Jukebox model ('jukebox' or 'jukebox_vqvae')"
        )
    return HFCheckpoint(config, _read_weights(directory, trust_pickle), directory)


def _read_weights(directory: Path, trust_pickle: bool) -> dict[str, torch.Tensor]:
    single = directory / "model.safetensors"
    index = directory / "model.safetensors.index.json"
    legacy = directory / "pytorch_model.bin"
    if single.is_file():
        return _load_safetensors(single)
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{index}: not a valid safetensors index ({exc})") from exc
        state: dict[str, torch.Tensor] = {}
        for shard in shards:
            state.update(_load_safetensors(directory / shard))
        return state
    if legacy.is_file():
        loaded = load_torch_file(legacy, trust_pickle=trust_pickle)
        if not isinstance(loaded, Mapping) or not all(isinstance(v, torch.Tensor) for v in loaded.values()):
            raise CheckpointError(f"{legacy}: not a state dict of tensors")
        return dict(loaded)
    raise CheckpointError(f"{directory}: no weights (model.safetensors, its index, or pytorch_model.bin)")


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc


def hf_vqvae_hps(checkpoint: HFCheckpoint) -> dict[str, Any]:
    """The VQ-VAE's hyper-parameters in Jukebox names (for ``VQVAEConfig.from_jukebox_hps``)."""
    config = checkpoint.config
    vq = config.get("vqvae_config", config) if checkpoint.is_full_model else config
    if not isinstance(vq, dict):
        raise CheckpointError(f"{checkpoint.path / 'config.json'}: 'vqvae_config' is not an object")
    return hf_vqvae_config_to_hps(vq, sample_rate=int(config.get("sampling_rate", JUKEBOX_SAMPLE_RATE)))


# HF JukeboxVQVAEConfig field -> Jukebox hps name (spec section 8).
_VQVAE_NAMES = {
    "levels": "levels",
    "res_downs_t": "downs_t",
    "res_strides_t": "strides_t",
    "embed_dim": "emb_width",
    "nb_discrete_codes": "l_bins",
    "lmu": "l_mu",
    "commit": "commit",
    "res_conv_width": "width",
    "res_conv_depth": "depth",
    "multipliers": "hvqvae_multipliers",
    "res_convolution_multiplier": "m_conv",
    "res_dilation_growth_rate": "dilation_growth_rate",
    "res_dilation_cycle": "dilation_cycle",
    "zero_out": "zero_out",
    "conv_res_scale": "res_scale",
    "init_scale": "init_scale",
    "sample_length": "sample_length",
}


def hf_vqvae_config_to_hps(
    vq: Mapping[str, Any], *, sample_rate: int = JUKEBOX_SAMPLE_RATE
) -> dict[str, Any]:
    """Translate an HF ``JukeboxVQVAEConfig`` dict to Jukebox hps (``VQVAEConfig.from_jukebox_hps`` input)."""
    if vq.get("act_fn", "relu") != "relu":
        raise CheckpointError(f"HF VQ-VAE act_fn {vq.get('act_fn')!r} is not supported (Jukebox uses 'relu')")
    if int(vq.get("conv_input_shape", 1)) != 1:
        raise CheckpointError(
            f"HF VQ-VAE conv_input_shape {vq.get('conv_input_shape')} is not supported (mono only)"
        )
    hps: dict[str, Any] = {"sr": sample_rate, "vqvae_reverse_decoder_dilation": True}
    for hf_name, jukebox_name in _VQVAE_NAMES.items():
        if hf_name in vq:
            value = vq[hf_name]
            hps[jukebox_name] = tuple(value) if isinstance(value, list) else value
    hps["res_scale"] = bool(hps.get("res_scale") or False)
    return hps


def split_hf_state_dict(checkpoint: HFCheckpoint) -> dict[str, dict[str, torch.Tensor]]:
    """Split and rename to OpenAI names: ``{"vqvae": ..., "prior_level_2": ..., ...}`` (levels bottom = 0)."""
    state = checkpoint.state_dict
    if not checkpoint.is_full_model:
        return {"vqvae": _rename_vqvae(state, checkpoint.path)}
    levels = len(checkpoint.config.get("prior_config_list") or []) or int(
        checkpoint.config.get("nb_priors", 3)
    )
    parts: dict[str, dict[str, torch.Tensor]] = {}
    try:
        for key, tensor in state.items():
            component, level, inner = split_hf_model_key(key, levels)
            name = "vqvae" if component == "vqvae" else f"prior_level_{level}"
            parts.setdefault(name, {})[inner] = tensor
    except KeyError as exc:
        raise CheckpointError(f"{checkpoint.path}: unexpected weight name ({exc.args[0]})") from exc
    out: dict[str, dict[str, torch.Tensor]] = {}
    for name, part in parts.items():
        if name == "vqvae":
            out[name] = _rename_vqvae(part, checkpoint.path)
        else:
            try:
                out[name] = {prior_hf_to_openai(k): v for k, v in part.items()}
            except KeyError as exc:
                raise CheckpointError(f"{checkpoint.path}: {name}: {exc.args[0]}") from exc
    return out


def _rename_vqvae(state: Mapping[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    try:
        names = vqvae_keys_hf_to_openai(state.keys())
    except KeyError as exc:
        raise CheckpointError(f"{path}: {exc.args[0]}") from exc
    return {names[k]: v for k, v in state.items()}
