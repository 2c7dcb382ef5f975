"""Priors of a Hugging Face ``JukeboxModel`` folder: their config.json entries in Jukebox hps names.

``config.json`` lists the priors top first (``prior_config_list[k]`` is OpenAI level ``levels - 1 - k``).
Like HF's ``JukeboxModel``, the top-level sampling_rate, timing_dims, min/max_duration, max_nb_genres and
metadata_conditioning replace each prior's own values. HF config names map to Jukebox names as in
jukebox-spec section 8.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.errors import CheckpointError
from model.checkpoint.hf import HFCheckpoint

# HF attention_pattern -> Jukebox attn_order (the layouts the released models use)
ATTENTION_PATTERNS = {
    "full_dense_attention": 0,
    "raw_column_previous_row_attention": 2,
    "large_separated_enc_dec_w_lyrics": 10,
    "enc_dec_with_lyrics": 12,
}
# HF JukeboxPriorConfig field -> Jukebox hps name
_PRIOR_NAMES = {
    "hidden_size": "prior_width",
    "num_layers": "prior_depth",
    "n_heads": "heads",
    "blocks": "blocks",
    "init_scale": "init_scale",
    "attention_multiplier": "m_attn",
    "mlp_multiplier": "m_mlp",
    "n_ctx": "n_ctx",
    "music_vocab_size": "l_bins",
    "merged_decoder": "merged_decoder",
    "metadata_conditioning": "labels",
    "metadata_dims": "y_bins",
    "timing_dims": "t_bins",
    "max_nb_genres": "max_bow_genre_size",
    "min_duration": "min_duration",
    "max_duration": "max_duration",
    "sampling_rate": "sr",
    "nb_relevant_lyric_tokens": "n_tokens",
    "lyric_vocab_size": "n_vocab",
    "encoder_loss_fraction": "prime_loss_fraction",
    "res_conv_width": "cond_width",
    "res_conv_depth": "cond_depth",
    "res_convolution_multiplier": "cond_m_conv",
    "res_dilation_growth_rate": "cond_dilation_growth_rate",
    "res_dilation_cycle": "cond_dilation_cycle",
    "conv_res_scale": "cond_res_scale",
    "res_downs_t": "downs_t",
    "res_strides_t": "strides_t",
    "spread": "spread",
    "zero_out": "zero_out",
    "attn_res_scale": "res_scale",
    "attn_dropout": "attn_dropout",
    "resid_dropout": "resid_dropout",
    "emb_dropout": "emb_dropout",
}
_ENCODER_NAMES = {
    "hidden_size": "prime_width",
    "num_layers": "prime_depth",
    "n_heads": "prime_heads",
    "blocks": "prime_blocks",
    "init_scale": "prime_init_scale",
    "attention_multiplier": "prime_m_attn",
    "mlp_multiplier": "prime_m_mlp",
}
V3_LABEL_BINS = (604, 7898)
# JukeboxModel copies these from its own config into every prior config
SHARED_FIELDS = ("sampling_rate", "timing_dims", "min_duration", "max_duration", "max_nb_genres", "metadata_conditioning")


def hf_prior_configs(checkpoint: HFCheckpoint) -> list[dict[str, Any]]:
    """``config.json``'s prior configs, top first, with the model-wide fields applied as HF does."""
    config = checkpoint.config
    where = checkpoint.path / "config.json"
    listed = config.get("prior_config_list")
    if listed is None:
        listed = [config.get(f"prior_{k}") or {} for k in range(int(config.get("nb_priors", 3)))]
    if not isinstance(listed, list) or not all(isinstance(p, dict) for p in listed):
        raise CheckpointError(f"{where}: 'prior_config_list' must be a list of objects")
    shared = {name: config[name] for name in SHARED_FIELDS if name in config}
    return [{**p, **shared} for p in listed]


def hf_prior_config_to_hps(prior: Mapping[str, Any], level: int, source: str) -> dict[str, Any]:
    """Jukebox hps (``jukebox_hps.prior_config_from_hps`` input) of one HF prior config at OpenAI ``level``."""
    if prior.get("act_fn", "quick_gelu") != "quick_gelu":
        raise CheckpointError(f"{source}: act_fn {prior.get('act_fn')!r} is not supported (Jukebox uses quick_gelu)")
    hps: dict[str, Any] = {"level": level, "attn_order": _attn_order(prior, source)}
    for hf_name, jukebox_name in _PRIOR_NAMES.items():
        if hf_name in prior:
            value = prior[hf_name]
            hps[jukebox_name] = tuple(value) if isinstance(value, list) else value
    n_tokens = int(prior.get("nb_relevant_lyric_tokens") or 0)
    merged = bool(prior.get("is_encoder_decoder", False))
    if merged and n_tokens == 0:
        raise CheckpointError(
            f"{source}: is_encoder_decoder is set but nb_relevant_lyric_tokens is 0; a merged lyrics prior needs "
            "lyric tokens (set is_encoder_decoder to false for priors without lyrics)"
        )
    hps["single_enc_dec"] = merged
    hps["use_tokens"] = n_tokens > 0
    encoder = prior.get("encoder_config")
    if n_tokens > 0 and not merged:
        if not isinstance(encoder, Mapping):
            raise CheckpointError(f"{source}: a lyrics prior without is_encoder_decoder needs an encoder_config")
        hps["prime_attn_order"] = _attn_order(encoder, f"{source} encoder_config")
        for hf_name, jukebox_name in _ENCODER_NAMES.items():
            if hf_name in encoder:
                hps[jukebox_name] = encoder[hf_name]
    layer, head = prior.get("alignment_layer"), prior.get("alignment_head")
    depth, heads = int(prior.get("num_layers", 72)), int(prior.get("n_heads", 2))
    if n_tokens > 0 and isinstance(layer, int) and isinstance(head, int) and 0 <= layer < depth and 0 <= head < heads:
        hps["alignment_layer"], hps["alignment_head"] = layer, head
    else:  # HF's defaults (68, 2) are unchecked and meaningless without lyrics: no alignment head
        hps["alignment_layer"] = hps["alignment_head"] = None
    hps["cond_res_scale"] = bool(hps.get("cond_res_scale") or False)
    # HF has no labels_v3: the id tables' sizes tell v3 (1b_lyrics: 604 genres, 7898 artists) from v2 (120, 4111)
    hps["labels_v3"] = tuple(hps.get("y_bins") or ()) == V3_LABEL_BINS
    return hps


def _attn_order(prior: Mapping[str, Any], source: str) -> int:
    pattern = prior.get("attention_pattern", "enc_dec_with_lyrics")
    if pattern not in ATTENTION_PATTERNS:
        raise CheckpointError(
            f"{source}: attention_pattern {pattern!r} is not supported (known: {', '.join(ATTENTION_PATTERNS)})"
        )
    return ATTENTION_PATTERNS[pattern]
