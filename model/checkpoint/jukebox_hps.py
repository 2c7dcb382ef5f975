"""Translation between ``PriorConfig`` fields and OpenAI Jukebox's hyper-parameter names (``hparams.py``).

Jukebox's names are flat, so the translation goes through the flat version-1 names of
``model/prior/prior_config_v1.py`` (``prime_width`` is ``lyrics.encoder.width``, ``cond_width`` is
``upsampler.width``, ...).

``prior_config_from_hps`` reads Jukebox hps into a ``PriorConfig``; ``hps_from_prior_config`` writes one
back. The dialect lives here, beside the other checkpoint translators; ``PriorConfig`` knows only its own
format (``to_dict``/``from_dict``), so the import runs one way: checkpoint -> prior.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.errors import ConfigError
from model.prior.prior_config import GeometryConfig, PriorConfig
from model.prior.prior_config_v1 import from_flat, to_flat

# our flat (version 1) name -> Jukebox hps name, for fields whose meaning is identical
_SAME_MEANING = {
    "level": "level",
    "n_ctx": "n_ctx",
    "width": "prior_width",
    "depth": "prior_depth",
    "heads": "heads",
    "attn_order": "attn_order",
    "blocks": "blocks",
    "init_scale": "init_scale",
    "m_attn": "m_attn",
    "m_mlp": "m_mlp",
    "n_bins": "l_bins",
    "merged_decoder": "merged_decoder",
    "fp16_params": "fp16_params",
    "labels": "labels",
    "labels_v3": "labels_v3",
    "y_bins": "y_bins",
    "t_bins": "t_bins",
    "max_bow_genre_size": "max_bow_genre_size",
    "min_duration": "min_duration",
    "max_duration": "max_duration",
    "sample_rate": "sr",
    "n_tokens": "n_tokens",
    "n_vocab": "n_vocab",
    "prime_loss_fraction": "prime_loss_fraction",
    "prime_width": "prime_width",
    "prime_depth": "prime_depth",
    "prime_heads": "prime_heads",
    "prime_attn_order": "prime_attn_order",
    "prime_blocks": "prime_blocks",
    "prime_init_scale": "prime_init_scale",
    "prime_m_attn": "prime_m_attn",
    "prime_m_mlp": "prime_m_mlp",
    "alignment_layer": "alignment_layer",
    "alignment_head": "alignment_head",
    "cond_width": "cond_width",
    "cond_depth": "cond_depth",
    "cond_m_conv": "cond_m_conv",
    "cond_dilation_growth_rate": "cond_dilation_growth_rate",
    "cond_dilation_cycle": "cond_dilation_cycle",
    "cond_res_scale": "cond_res_scale",
}
_VQVAE_NAMES = {"downs_t": "downs_t", "strides_t": "strides_t", "n_bins": "l_bins", "sample_rate": "sr"}
# Jukebox hps whose None means "unset" (their DEFAULTS); None is meaningful only for these of ours:
_NONE_IS_VALUE = {"alignment_layer", "alignment_head", "cond_dilation_cycle"}
# Jukebox hps that must be off for our priors (we do not implement them)
_MUST_BE_OFF = ("spread", "zero_out", "res_scale", "pos_init", "attn_dropout", "resid_dropout", "emb_dropout")


def prior_config_from_hps(hps: Mapping[str, Any], vqvae_hps: Mapping[str, Any] | None = None) -> PriorConfig:
    """A ``PriorConfig`` from OpenAI Jukebox hyper-parameters (``hparams.py`` names: prior_width, prior_depth,
    heads, attn_order, blocks, n_ctx, l_bins, y_bins, t_bins, labels_v3, use_tokens, n_tokens, n_vocab,
    single_enc_dec, prime_*, cond_*, alignment_*, fp16_params, ...). ``vqvae_hps`` gives levels, downs_t,
    strides_t, l_bins and sr, which win over the prior's copies (defaults: the released VQ-VAE)."""
    return from_flat(config_kwargs_from_hps(hps, vqvae_hps or {}))


def config_kwargs_from_hps(hps: Mapping[str, Any], vqvae_hps: Mapping[str, Any]) -> dict[str, Any]:
    """The flat (version 1) ``PriorConfig`` mapping of Jukebox ``hps`` (+ VQ-VAE ``vqvae_hps``)."""
    if not isinstance(hps, Mapping) or not isinstance(vqvae_hps, Mapping):
        raise ConfigError("Jukebox hyper-parameters must be mappings of name -> value")
    for name in _MUST_BE_OFF:
        if hps.get(name) not in (None, 0, 0.0, False):
            raise ConfigError(f"Jukebox hps {name}={hps[name]!r} is not supported (allowed: off/0)")
    kwargs: dict[str, Any] = {}
    for ours, theirs in _SAME_MEANING.items():
        if theirs in hps and (hps[theirs] is not None or ours in _NONE_IS_VALUE):
            kwargs[ours] = hps[theirs]
    for ours, theirs in _VQVAE_NAMES.items():  # the VQ-VAE's geometry and codebook win over the prior's copies
        if vqvae_hps.get(theirs) is not None:
            kwargs[ours] = vqvae_hps[theirs]
    if hps.get("t_ranges") is not None:  # released top priors: total-length range in samples
        kwargs.update(_durations_from_t_ranges(hps["t_ranges"], kwargs.get("sample_rate", 44100)))
    if kwargs.get("n_vocab") == 0 and not hps.get("use_tokens"):  # Jukebox's data default; unused without lyrics
        del kwargs["n_vocab"]
    if "cond_res_scale" in kwargs:
        kwargs["cond_res_scale"] = bool(kwargs["cond_res_scale"])
    if "n_ctx" not in kwargs and "sample_length" in hps:
        kwargs["n_ctx"] = _n_ctx_from_sample_length(hps, kwargs)
    if hps.get("single_enc_dec"):
        kwargs["lyrics"] = "merged"
    elif hps.get("use_tokens") and hps.get("n_tokens", 0) > 0:
        kwargs["lyrics"] = "separate"
    else:
        kwargs["lyrics"] = "none"
        kwargs["n_tokens"] = 0
    if not kwargs.get("labels", True) and not isinstance(kwargs.get("y_bins", ()), (list, tuple)):
        kwargs.pop("y_bins", None)  # Jukebox's unset default 0; unused without labels
    for name in ("downs_t", "strides_t", "y_bins"):
        if name in kwargs:
            if not isinstance(kwargs[name], (list, tuple)):
                raise ConfigError(f"Jukebox hps {name} must be a list of integers, got {kwargs[name]!r}")
            kwargs[name] = tuple(kwargs[name])
    return kwargs


def _durations_from_t_ranges(t_ranges: Any, sr: int) -> dict[str, float]:
    try:
        (lo, hi), _, _ = t_ranges
        return {"min_duration": round(float(lo) / sr, 6), "max_duration": round(float(hi) / sr, 6)}
    except (TypeError, ValueError):
        raise ConfigError(f"Jukebox hps t_ranges must be ((min, max), (0, max), (0, 1)) in samples, got {t_ranges!r}") from None


def _n_ctx_from_sample_length(hps: Mapping[str, Any], kwargs: Mapping[str, Any]) -> int:
    default = GeometryConfig()
    downs, strides = kwargs.get("downs_t", default.downs_t), kwargs.get("strides_t", default.strides_t)
    level = kwargs.get("level", 0)
    hop = 1
    for s, d in list(zip(strides, downs))[: level + 1]:
        hop *= s**d
    return int(hps["sample_length"]) // hop


def hps_from_prior_config(c: PriorConfig) -> dict[str, Any]:
    """Jukebox hps of ``c``; includes the VQ-VAE names (levels, downs_t, strides_t) too, so
    ``prior_config_from_hps(h, h)`` with ``h = hps_from_prior_config(c)`` rebuilds ``c``."""
    flat = to_flat(c)
    hps: dict[str, Any] = {theirs: flat[ours] for ours, theirs in _SAME_MEANING.items()}
    hps["y_bins"] = tuple(c.labels.y_bins)
    hps["use_tokens"] = c.lyrics.kind != "none"
    hps["single_enc_dec"] = c.lyrics.kind == "merged"
    hps["levels"] = c.levels
    if c.time_signal:
        labels = c.labels
        lo, hi = labels.min_duration * labels.sample_rate, labels.max_duration * labels.sample_rate
        hps["t_ranges"] = ((lo, hi), (0.0, hi), (0.0, 1.0))
    hps["downs_t"] = tuple(c.geometry.downs_t)
    hps["strides_t"] = tuple(c.geometry.strides_t)
    for name in _MUST_BE_OFF:
        hps[name] = None if name == "spread" else (0.0 if name.endswith("dropout") else False)
    return hps
