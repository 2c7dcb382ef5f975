"""Files bundled with segue: the demo clip and the small trained demo model."""

from __future__ import annotations

from pathlib import Path

ASSETS = Path(__file__).resolve().parent


def demo_clip_path() -> Path:
    """12 s of music rendered by scripts/demo_synth.py (44.1 kHz mono FLAC)."""
    return ASSETS / "demo_clip.flac"


def demo_model_dir() -> Path:
    """The bundled demo model directory (trained by scripts/train_demo_vqvae.py)."""
    return ASSETS / "demo_model"
