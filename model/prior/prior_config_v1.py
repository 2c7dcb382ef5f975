"""Version 1 of the prior config format: one flat mapping of 43 names (``width``, ``prime_width``,
``cond_width``, ``labels``, ``lyrics``, ...), as model directories converted before the nested format
(version 2) store it, and as the Jukebox hps translator speaks it.

``FLAT_NAMES`` maps each flat name to its place in the nested ``PriorConfig`` (part, field[, field]);
``from_flat`` reads such a mapping and ``to_flat`` writes one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from common.errors import ConfigError

if TYPE_CHECKING:
    from model.prior.prior_config import PriorConfig

_TRANSFORMER = ("width", "depth", "heads", "attn_order", "blocks", "init_scale", "m_attn", "m_mlp")
_LABELS = ("y_bins", "t_bins", "max_bow_genre_size", "min_duration", "max_duration", "sample_rate")
_CONDITIONER = ("width", "depth", "m_conv", "dilation_growth_rate", "dilation_cycle", "res_scale")

# flat (version 1) name -> path in the nested config; a path of one name is a field of PriorConfig itself
FLAT_NAMES: dict[str, tuple[str, ...]] = {
    "level": ("level",),
    "n_ctx": ("n_ctx",),
    **{name: ("transformer", name) for name in _TRANSFORMER},
    "n_bins": ("n_bins",),
    "merged_decoder": ("merged_decoder",),
    "fp16_params": ("fp16_params",),
    "labels": ("labels", "enabled"),
    "labels_v3": ("labels", "v3"),
    **{name: ("labels", name) for name in _LABELS},
    "lyrics": ("lyrics", "kind"),
    "n_tokens": ("lyrics", "n_tokens"),
    "n_vocab": ("lyrics", "n_vocab"),
    "prime_loss_fraction": ("lyrics", "loss_fraction"),
    **{f"prime_{name}": ("lyrics", "encoder", name) for name in _TRANSFORMER},
    "alignment_layer": ("lyrics", "alignment_layer"),
    "alignment_head": ("lyrics", "alignment_head"),
    **{f"cond_{name}": ("upsampler", name) for name in _CONDITIONER},
    "downs_t": ("geometry", "downs_t"),
    "strides_t": ("geometry", "strides_t"),
}
# flat names version 1 required (the rest had defaults)
REQUIRED = ("level", "n_ctx", "width", "depth", "heads", "attn_order", "blocks", "init_scale")


def from_flat(data: Mapping[str, Any]) -> PriorConfig:
    """A ``PriorConfig`` from a version-1 flat mapping; unknown or missing names raise ``ConfigError``."""
    from model.prior.prior_config import PriorConfig

    if not isinstance(data, Mapping):
        raise ConfigError(f"prior config must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - set(FLAT_NAMES) - {"version"})
    if unknown:
        raise ConfigError(
            f"prior config (flat, version 1): unknown keys {unknown}; allowed: {sorted(FLAT_NAMES)}"
        )
    missing = [name for name in REQUIRED if name not in data]
    if missing:
        raise ConfigError(f"prior config (flat, version 1): missing required keys {missing}")
    nested: dict[str, Any] = {}
    for name, value in data.items():
        if name == "version":
            continue
        *parents, leaf = FLAT_NAMES[name]
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = list(value) if isinstance(value, tuple) else value
    lyrics = nested.get("lyrics", {})
    if "encoder" in lyrics:  # version 1 may give some prime_* only: the rest keep Jukebox's defaults
        from model.prior.prior_parts import JUKEBOX_ENCODER, part_to_dict

        lyrics["encoder"] = {**part_to_dict(JUKEBOX_ENCODER), **lyrics["encoder"]}
    return PriorConfig.from_dict({**nested, "version": 2})


def to_flat(config: PriorConfig) -> dict[str, Any]:
    """The version-1 flat mapping of ``config`` (tuples kept as tuples)."""
    out: dict[str, Any] = {}
    for name, path in FLAT_NAMES.items():
        value: Any = config
        for attr in path:
            value = getattr(value, attr)
        out[name] = value
    return out
