"""VQ-VAE configuration: one frozen dataclass of the architecture, with Jukebox's hyper-parameter names mapped
in one table. How it is trained (loss weights, codebook EMA) is ``model.vqvae.training.VQVAETraining``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.errors import ConfigError
from model.vqvae.training import TRAINING_KEYS

# our field name -> Jukebox hps name (the only place the two vocabularies meet)
JUKEBOX_NAMES: dict[str, str] = {
    "sample_rate": "sr",
    "levels": "levels",
    "downs_t": "downs_t",
    "strides_t": "strides_t",
    "emb_width": "emb_width",
    "codebook_size": "l_bins",
    "width": "width",
    "depth": "depth",
    "m_conv": "m_conv",
    "dilation_growth_rate": "dilation_growth_rate",
    "dilation_cycle": "dilation_cycle",
    "multipliers": "hvqvae_multipliers",
    "reverse_decoder_dilation": "vqvae_reverse_decoder_dilation",
    "zero_out": "zero_out",
    "res_scale": "res_scale",
}

# Jukebox's DEFAULTS (hparams.py "audio", "vqvae", "vqvae_conv_block") for keys missing from an hps mapping
JUKEBOX_DEFAULTS: dict[str, Any] = {
    "sr": 44100,
    "levels": 2,
    "downs_t": (1, 1),
    "strides_t": (2, 2),
    "emb_width": 64,
    "l_bins": 512,
    "width": 128,
    "depth": 3,
    "m_conv": 1.0,
    "dilation_growth_rate": 1,
    "dilation_cycle": None,
    "hvqvae_multipliers": None,
    "vqvae_reverse_decoder_dilation": True,
    "zero_out": False,
    "res_scale": False,
}


@dataclass(frozen=True)
class VQVAEConfig:
    """Hierarchical VQ-VAE hyper-parameters. Defaults are the released Jukebox VQ-VAE (spec 1.1).

    Level 0 is the bottom (smallest hop). ``multipliers[l]`` scales width and depth of encoder/decoder l.
    ``res_scale`` is Jukebox's flag: residual branches are scaled by 1/sqrt(depth) when set.
    """

    sample_rate: int = 44100
    levels: int = 3
    downs_t: tuple[int, ...] = (3, 2, 2)  # stride-2 stages per level block
    strides_t: tuple[int, ...] = (2, 2, 2)
    emb_width: int = 64  # latent / codebook vector width
    codebook_size: int = 2048  # codes per level (l_bins)
    width: int = 32
    depth: int = 4
    m_conv: float = 1.0  # hidden width of a residual block = m_conv * width
    dilation_growth_rate: int = 3
    dilation_cycle: int | None = None
    multipliers: tuple[int, ...] | None = (2, 1, 1)
    reverse_decoder_dilation: bool = True
    zero_out: bool = False
    res_scale: bool = False

    def __post_init__(self) -> None:
        _validate(self)

    # --- derived -------------------------------------------------------------------------------
    @property
    def downsamples(self) -> tuple[int, ...]:
        """Downsampling factor of each level block (stride ** downs)."""
        return tuple(s**d for s, d in zip(self.strides_t, self.downs_t))

    @property
    def hop_lengths(self) -> tuple[int, ...]:
        """Audio samples per token at each level (cumulative product of the downsamples)."""
        return tuple(math.prod(self.downsamples[: i + 1]) for i in range(self.levels))

    @property
    def level_multipliers(self) -> tuple[int, ...]:
        return self.multipliers if self.multipliers is not None else (1,) * self.levels

    def level_width(self, level: int) -> int:
        return self.width * self.level_multipliers[level]

    def level_depth(self, level: int) -> int:
        return self.depth * self.level_multipliers[level]

    # --- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict (tuples become lists) for our checkpoint format."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> VQVAEConfig:
        """Inverse of ``to_dict``. The training keys that configs written before ``VQVAETraining`` carry
        (commit, loss_fn, codebook_decay, ...) are skipped: read them with ``VQVAETraining.from_vqvae_dict``."""
        d = {k: v for k, v in d.items() if k not in TRAINING_KEYS}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"VQ-VAE config: unknown key(s) {unknown}; allowed: {sorted(known)}")
        return cls(**{k: _coerce(k, v) for k, v in d.items()})

    def to_jukebox_hps(self) -> dict[str, Any]:
        return {JUKEBOX_NAMES[k]: v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_jukebox_hps(cls, hps: Mapping[str, Any]) -> VQVAEConfig:
        """Build from Jukebox hps names; missing keys take Jukebox's defaults, other keys are ignored."""
        values = {ours: hps.get(theirs, JUKEBOX_DEFAULTS[theirs]) for ours, theirs in JUKEBOX_NAMES.items()}
        try:
            return cls(**{k: _coerce(k, v) for k, v in values.items()})
        except ConfigError as e:
            raise ConfigError(_rename_in_message(str(e))) from None


def official_vqvae_config() -> VQVAEConfig:
    """The VQ-VAE shared by the released 5b, 5b_lyrics and 1b_lyrics models (spec 1.1)."""
    return VQVAEConfig()


_INT_TUPLES = ("downs_t", "strides_t", "multipliers")
_INTS = ("sample_rate", "levels", "emb_width", "codebook_size", "width", "depth", "dilation_growth_rate")
_FLOATS = ("m_conv",)
_BOOLS = ("reverse_decoder_dilation", "zero_out", "res_scale")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _coerce(key: str, v: Any) -> Any:
    """Accept JSON forms (lists for tuples, ints for floats); reject wrong types with a ConfigError."""
    if key in _INT_TUPLES:
        if v is None and key == "multipliers":
            return None
        if not isinstance(v, (list, tuple)) or not all(_is_int(x) for x in v):
            raise ConfigError(f"VQ-VAE config: {key} must be a list of integers, got {v!r}")
        return tuple(v)
    if key in _FLOATS:
        if not (_is_int(v) or isinstance(v, float)):
            raise ConfigError(f"VQ-VAE config: {key} must be a number, got {v!r}")
        return float(v)
    if key in _INTS and not _is_int(v):
        raise ConfigError(f"VQ-VAE config: {key} must be an integer, got {v!r}")
    if key in _BOOLS and not isinstance(v, bool):
        raise ConfigError(f"VQ-VAE config: {key} must be true or false, got {v!r}")
    if key == "dilation_cycle" and v is not None and not _is_int(v):
        raise ConfigError(f"VQ-VAE config: dilation_cycle must be an integer or null, got {v!r}")
    return v


def _validate(c: VQVAEConfig) -> None:
    for key in _INTS + _FLOATS + _BOOLS + ("dilation_cycle",):
        _coerce(key, getattr(c, key))
    for key in _INT_TUPLES:
        value = getattr(c, key)
        if key == "multipliers" and value is None:
            continue
        if not isinstance(value, tuple) or not all(_is_int(x) for x in value):
            raise ConfigError(f"VQ-VAE config: {key} must be a tuple of integers, got {value!r}")
    if c.levels < 1:
        raise ConfigError(f"VQ-VAE config: levels must be >= 1, got {c.levels}")
    for key in ("downs_t", "strides_t") + (("multipliers",) if c.multipliers is not None else ()):
        value = getattr(c, key)
        if len(value) != c.levels:
            raise ConfigError(f"VQ-VAE config: {key} needs one entry per level ({c.levels}), got {list(value)}")
        if any(x < 1 for x in value):
            raise ConfigError(f"VQ-VAE config: {key} entries must be >= 1, got {list(value)}")
    if any(s % 2 for s in c.strides_t):
        raise ConfigError(f"VQ-VAE config: strides_t entries must be even, got {list(c.strides_t)}")
    for key in ("sample_rate", "emb_width", "codebook_size", "width", "depth", "dilation_growth_rate"):
        if getattr(c, key) < 1:
            raise ConfigError(f"VQ-VAE config: {key} must be >= 1, got {getattr(c, key)}")
    if c.dilation_cycle is not None and c.dilation_cycle < 1:
        raise ConfigError(f"VQ-VAE config: dilation_cycle must be >= 1 or null, got {c.dilation_cycle}")
    if c.m_conv <= 0 or int(c.m_conv * c.width) < 1:
        raise ConfigError(f"VQ-VAE config: m_conv must be > 0 (m_conv*width >= 1), got {c.m_conv}")


def _rename_in_message(message: str) -> str:
    """Report Jukebox's key names when the config came from Jukebox hps."""
    for ours, theirs in JUKEBOX_NAMES.items():
        if f" {ours} " in message:
            return message.replace(f" {ours} ", f" {theirs} (our {ours}) ", 1)
    return message
