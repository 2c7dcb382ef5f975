"""Checkpoints: segue's model directory format, builders by component kind, and the importers.

- ``model_dir``: manifest + per-component config JSON + safetensors (``save_component``, ``load_component``).
- ``builders``: kind -> module registry, strict loading, ``load_vqvae``, ``model_identity``.
- ``openai`` / ``hf`` / ``hf_keys``: reading official ``.pth.tar`` files and Hugging Face folders.
- ``convert``: the importers behind ``segue convert``.
"""

from model.checkpoint.builders import build_component, load_vqvae, model_identity, register_kind
from model.checkpoint.convert import ConvertResult, convert_hf, convert_openai
from model.checkpoint.model_dir import ComponentEntry, Manifest, load_component, read_manifest, save_component

__all__ = [
    "ComponentEntry",
    "ConvertResult",
    "Manifest",
    "build_component",
    "convert_hf",
    "convert_openai",
    "load_component",
    "load_vqvae",
    "model_identity",
    "read_manifest",
    "register_kind",
    "save_component",
]
