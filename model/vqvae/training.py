"""``VQVAETraining``: how a VQ-VAE learns (spec 1.3-1.4), apart from what it is (``VQVAEConfig``).

The loss weights (reconstruction kind, spectral, multispectral, commitment) and the codebook EMA
(decay, revival threshold) matter only while training: a model directory stores the architecture, and
sampling or decoding never reads these. VQ-VAE configs written before the split carry these keys;
``VQVAEConfig.from_dict`` skips them and ``VQVAETraining.from_vqvae_dict`` reads them back, so an old
model directory still loads and fine-tuning it keeps its recipe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import ConfigError

LOSS_FNS = ("l1", "l2", "linf", "lmix")

# our field name -> Jukebox hps name
JUKEBOX_TRAINING_NAMES: dict[str, str] = {
    "commit": "commit",
    "spectral": "spectral",
    "multispectral": "multispectral",
    "loss_fn": "loss_fn",
    "lmix_l1": "lmix_l1",
    "lmix_l2": "lmix_l2",
    "lmix_linf": "lmix_linf",
    "linf_k": "linf_k",
    "codebook_decay": "l_mu",
    "revival_threshold": "revival_threshold",
}
# Jukebox's DEFAULTS (hparams.py "vqvae") for keys missing from an hps mapping
JUKEBOX_TRAINING_DEFAULTS: dict[str, Any] = {
    "commit": 1.0,
    "spectral": 0.0,
    "multispectral": 1.0,
    "loss_fn": "l2",
    "lmix_l1": 0.0,
    "lmix_l2": 0.0,
    "lmix_linf": 0.0,
    "linf_k": 2048,
    "l_mu": 0.99,
    "revival_threshold": 1.0,
}
TRAINING_KEYS = frozenset(JUKEBOX_TRAINING_NAMES)  # the keys VQ-VAE configs carried before the split

_FLOATS = (
    "commit",
    "spectral",
    "multispectral",
    "lmix_l1",
    "lmix_l2",
    "lmix_linf",
    "codebook_decay",
    "revival_threshold",
)


@dataclass(frozen=True)
class VQVAETraining:
    """Loss weights and codebook EMA of VQ-VAE training. Defaults are the released VQ-VAE's recipe.

    ``loss = sum recons + spectral * sum spec + multispectral * sum multispec + commit * sum commit``,
    with recons by ``loss_fn`` (``lmix`` = ``lmix_l1``*l1 + ``lmix_l2``*l2 + ``lmix_linf``*linf over
    the ``linf_k`` largest residuals).
    """

    commit: float = 0.02  # commitment-loss weight
    spectral: float = 0.0
    multispectral: float = 1.0
    loss_fn: str = "lmix"
    lmix_l1: float = 0.0
    lmix_l2: float = 1.0
    lmix_linf: float = 0.02
    linf_k: int = 2048
    codebook_decay: float = 0.99  # EMA decay of the codebooks (l_mu)
    revival_threshold: float = 1.0  # codes with EMA usage below this are restarted

    def __post_init__(self) -> None:
        for name in _FLOATS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"VQ-VAE training: {name} must be a number >= 0, got {v!r}")
            object.__setattr__(self, name, float(v))
        if self.loss_fn not in LOSS_FNS:
            raise ConfigError(f"VQ-VAE training: loss_fn must be one of {LOSS_FNS}, got {self.loss_fn!r}")
        if isinstance(self.linf_k, bool) or not isinstance(self.linf_k, int) or self.linf_k < 1:
            raise ConfigError(f"VQ-VAE training: linf_k must be an integer >= 1, got {self.linf_k!r}")
        if not self.codebook_decay < 1.0:
            raise ConfigError(f"VQ-VAE training: codebook_decay must be in [0, 1), got {self.codebook_decay}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VQVAETraining:
        """Inverse of ``to_dict``; unknown keys raise ``ConfigError``, missing ones take the defaults."""
        unknown = sorted(set(d) - TRAINING_KEYS)
        if unknown:
            raise ConfigError(f"VQ-VAE training: unknown key(s) {unknown}; allowed: {sorted(TRAINING_KEYS)}")
        return cls(**d)

    @classmethod
    def from_vqvae_dict(cls, d: Mapping[str, Any]) -> VQVAETraining:
        """The training keys of a VQ-VAE config dict written before the split (defaults for absent ones)."""
        return cls.from_dict({k: v for k, v in d.items() if k in TRAINING_KEYS})

    def to_jukebox_hps(self) -> dict[str, Any]:
        return {JUKEBOX_TRAINING_NAMES[k]: v for k, v in self.to_dict().items()}

    @classmethod
    def from_jukebox_hps(cls, hps: Mapping[str, Any]) -> VQVAETraining:
        """From Jukebox hps names; missing keys take Jukebox's defaults, other keys are ignored."""
        values = {
            ours: hps.get(theirs, JUKEBOX_TRAINING_DEFAULTS[theirs])
            for ours, theirs in JUKEBOX_TRAINING_NAMES.items()
        }
        try:
            return cls(**values)
        except ConfigError as e:
            message = str(e)
            for ours, theirs in JUKEBOX_TRAINING_NAMES.items():
                if f" {ours} " in message:
                    message = message.replace(f" {ours} ", f" {theirs} (our {ours}) ", 1)
                    break
            raise ConfigError(message) from None
