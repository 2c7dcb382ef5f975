"""Checkpoints: segue's model directory format, builders by component kind, and the importers.

- ``model_dir``: manifest + per-component config JSON + safetensors (``save_component``, ``load_component``).
- ``builders``: kind -> module registry, strict loading, ``load_vqvae``, ``model_identity``.
- ``openai`` / ``hf`` / ``hf_keys``: reading official ``.pth.tar`` files and Hugging Face folders.
- ``priors``: components ``prior_level_N`` (``load_prior``, ``available_levels``); ``prior_import`` /
  ``hf_priors``: which hyper-parameters describe a prior file or a Hugging Face prior config.
- ``convert``: the importers behind ``segue convert``.
"""

from model.checkpoint.builders import build_component, load_vqvae, model_identity, register_kind
from model.checkpoint.convert import ConvertResult, convert_hf, convert_openai
from model.checkpoint.model_dir import ComponentEntry, Manifest, load_component, read_manifest, save_component
from model.checkpoint.priors import available_levels, load_prior

__all__ = [
    "ComponentEntry",
    "available_levels",
    "ConvertResult",
    "Manifest",
    "build_component",
    "convert_hf",
    "convert_openai",
    "load_component",
    "load_prior",
    "load_vqvae",
    "model_identity",
    "read_manifest",
    "register_kind",
    "save_component",
]
