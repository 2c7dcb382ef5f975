"""State-dict key names: OpenAI Jukebox checkpoints <-> the Hugging Face ``transformers`` port.

Pure string functions, no torch. The rules (jukebox-spec section 8) in short:

- VQ-VAE encoder ``level_blocks.j.model.i.0`` (stride conv) -> ``downsample_block.{2i}``,
  ``model.i.1`` (res stack) -> ``downsample_block.{2i+1}``, res block ``model.d.model.{1|3}`` ->
  ``resnet_block.d.conv1d_{1|2}``, the final ``model.{down_t}`` -> ``proj_out``.
- VQ-VAE decoder ``model.0`` -> ``proj_in``, ``model.i.0`` (res stack, i >= 1) -> ``upsample_block.{2i-2}``,
  ``model.i.1`` (transposed conv) -> ``upsample_block.{2i-1}``; bottleneck ``.k`` -> ``.codebook``.
- Priors: Conv1D ``.w/.b`` -> ``.weight/.bias``; ``x_emb`` -> ``embed_tokens``; ``ln_0/1`` ->
  ``layer_norm_0/1``; ``prior.x_out`` -> ``prior.fc_proj_out``; ``y_emb`` -> ``metadata_embedding``
  with ``.emb`` dropped for artist/genre only; the lyric encoder ``prime_prior`` -> ``encoder``,
  ``prime_state_proj`` -> ``encoder.proj_in``, ``prime_state_ln`` -> ``encoder.final_layer_norm``,
  ``prime_x_out`` -> ``encoder.lm_head``; the upsampler conditioner ``conditioner_blocks.0.cond.model``
  -> ``conditioner_blocks.upsampler`` (``proj_in`` / ``upsample_block``, its res blocks live under
  ``.blocks.`` in OpenAI files), ``conditioner_blocks.0.x_emb`` -> ``conditioner_blocks.embed_tokens``,
  ``conditioner_blocks.0.ln`` -> ``conditioner_blocks.layer_norm``.
- Whole HF ``JukeboxModel``: ``vqvae.`` prefix for the VQ-VAE, ``priors.{k}.`` for the priors with
  k = 2 - level (HF numbers priors top first; its VQ-VAE keeps OpenAI order, level 0 = bottom).

Unknown keys raise ``KeyError`` naming the key, so a checkpoint from a different model is caught
early instead of being loaded half-way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

_PARAM = r"(weight|bias)"

# ---- VQ-VAE ----------------------------------------------------------------------------------------------

_OA_ENC_CONV = re.compile(rf"^encoders\.(\d+)\.level_blocks\.(\d+)\.model\.(\d+)\.0\.{_PARAM}$")
_OA_ENC_RES = re.compile(
    rf"^encoders\.(\d+)\.level_blocks\.(\d+)\.model\.(\d+)\.1\.model\.(\d+)\.model\.([13])\.{_PARAM}$"
)
_OA_ENC_OUT = re.compile(rf"^encoders\.(\d+)\.level_blocks\.(\d+)\.model\.(\d+)\.{_PARAM}$")
_OA_DEC_IN = re.compile(rf"^decoders\.(\d+)\.level_blocks\.(\d+)\.model\.0\.{_PARAM}$")
_OA_DEC_RES = re.compile(
    rf"^decoders\.(\d+)\.level_blocks\.(\d+)\.model\.(\d+)\.0\.model\.(\d+)\.model\.([13])\.{_PARAM}$"
)
_OA_DEC_UP = re.compile(rf"^decoders\.(\d+)\.level_blocks\.(\d+)\.model\.(\d+)\.1\.{_PARAM}$")
_OA_DEC_OUT = re.compile(rf"^decoders\.(\d+)\.out\.{_PARAM}$")
_OA_CODEBOOK = re.compile(r"^bottleneck\.level_blocks\.(\d+)\.k$")

_HF_ENC_BLOCK = re.compile(rf"^encoders\.(\d+)\.level_blocks\.(\d+)\.downsample_block\.(\d+)\.{_PARAM}$")
_HF_ENC_RES = re.compile(
    rf"^encoders\.(\d+)\.level_blocks\.(\d+)\.downsample_block\.(\d+)\.resnet_block\.(\d+)\.conv1d_([12])\.{_PARAM}$"
)
_HF_ENC_OUT = re.compile(rf"^encoders\.(\d+)\.level_blocks\.(\d+)\.proj_out\.{_PARAM}$")
_HF_DEC_IN = re.compile(rf"^decoders\.(\d+)\.level_blocks\.(\d+)\.proj_in\.{_PARAM}$")
_HF_DEC_BLOCK = re.compile(rf"^decoders\.(\d+)\.level_blocks\.(\d+)\.upsample_block\.(\d+)\.{_PARAM}$")
_HF_DEC_RES = re.compile(
    rf"^decoders\.(\d+)\.level_blocks\.(\d+)\.upsample_block\.(\d+)\.resnet_block\.(\d+)\.conv1d_([12])\.{_PARAM}$"
)
_HF_CODEBOOK = re.compile(r"^bottleneck\.level_blocks\.(\d+)\.codebook$")

_RES_CONV_OA_TO_HF = {"1": "1", "3": "2"}  # OpenAI res block Sequential index -> HF conv1d_N
_RES_CONV_HF_TO_OA = {"1": "1", "2": "3"}


def vqvae_openai_to_hf(key: str) -> str:
    """Map one OpenAI VQ-VAE key (``vqvae.pth.tar['model']``) to its HF ``JukeboxVQVAE`` name."""
    if m := _OA_ENC_RES.match(key):
        lvl, j, i, d, c, p = m.groups()
        return f"encoders.{lvl}.level_blocks.{j}.downsample_block.{2 * int(i) + 1}.resnet_block.{d}.conv1d_{_RES_CONV_OA_TO_HF[c]}.{p}"
    if m := _OA_ENC_CONV.match(key):
        lvl, j, i, p = m.groups()
        return f"encoders.{lvl}.level_blocks.{j}.downsample_block.{2 * int(i)}.{p}"
    if m := _OA_ENC_OUT.match(key):
        lvl, j, _, p = m.groups()
        return f"encoders.{lvl}.level_blocks.{j}.proj_out.{p}"
    if m := _OA_DEC_IN.match(key):
        lvl, j, p = m.groups()
        return f"decoders.{lvl}.level_blocks.{j}.proj_in.{p}"
    if m := _OA_DEC_RES.match(key):
        lvl, j, i, d, c, p = m.groups()
        return f"decoders.{lvl}.level_blocks.{j}.upsample_block.{2 * int(i) - 2}.resnet_block.{d}.conv1d_{_RES_CONV_OA_TO_HF[c]}.{p}"
    if m := _OA_DEC_UP.match(key):
        lvl, j, i, p = m.groups()
        return f"decoders.{lvl}.level_blocks.{j}.upsample_block.{2 * int(i) - 1}.{p}"
    if _OA_DEC_OUT.match(key):
        return key
    if m := _OA_CODEBOOK.match(key):
        return f"bottleneck.level_blocks.{m.group(1)}.codebook"
    raise KeyError(f"not an OpenAI Jukebox VQ-VAE key: {key!r}")


def vqvae_hf_to_openai(key: str, downs_t: int) -> str:
    """Map one HF VQ-VAE key back; ``downs_t`` (stride-2 stages of this encoder block) numbers ``proj_out``."""
    if m := _HF_ENC_RES.match(key):
        lvl, j, b, d, c, p = m.groups()
        i, s = divmod(int(b), 2)
        if s != 1:
            raise KeyError(f"HF VQ-VAE key has a res block at an even downsample_block index: {key!r}")
        return f"encoders.{lvl}.level_blocks.{j}.model.{i}.1.model.{d}.model.{_RES_CONV_HF_TO_OA[c]}.{p}"
    if m := _HF_ENC_BLOCK.match(key):
        lvl, j, b, p = m.groups()
        i, s = divmod(int(b), 2)
        if s != 0:
            raise KeyError(f"HF VQ-VAE key has a conv at an odd downsample_block index: {key!r}")
        return f"encoders.{lvl}.level_blocks.{j}.model.{i}.0.{p}"
    if m := _HF_ENC_OUT.match(key):
        lvl, j, p = m.groups()
        return f"encoders.{lvl}.level_blocks.{j}.model.{downs_t}.{p}"
    if m := _HF_DEC_IN.match(key):
        lvl, j, p = m.groups()
        return f"decoders.{lvl}.level_blocks.{j}.model.0.{p}"
    if m := _HF_DEC_RES.match(key):
        lvl, j, b, d, c, p = m.groups()
        i, s = divmod(int(b) + 2, 2)
        if s != 0:
            raise KeyError(f"HF VQ-VAE key has a res block at an odd upsample_block index: {key!r}")
        return f"decoders.{lvl}.level_blocks.{j}.model.{i}.0.model.{d}.model.{_RES_CONV_HF_TO_OA[c]}.{p}"
    if m := _HF_DEC_BLOCK.match(key):
        lvl, j, b, p = m.groups()
        i, s = divmod(int(b) + 2, 2)
        if s != 1:
            raise KeyError(f"HF VQ-VAE key has a transposed conv at an even upsample_block index: {key!r}")
        return f"decoders.{lvl}.level_blocks.{j}.model.{i}.1.{p}"
    if _OA_DEC_OUT.match(key):
        return key
    if m := _HF_CODEBOOK.match(key):
        return f"bottleneck.level_blocks.{m.group(1)}.k"
    raise KeyError(f"not a Hugging Face JukeboxVQVAE key: {key!r}")


def vqvae_keys_hf_to_openai(keys: Iterable[str]) -> dict[str, str]:
    """Map a whole HF VQ-VAE state dict's keys; each encoder block's ``downs_t`` is read off the keys."""
    keys = list(keys)
    last_block: dict[tuple[str, str], int] = {}
    for key in keys:
        if m := _HF_ENC_BLOCK.match(key) or _HF_ENC_RES.match(key):
            where = (m.group(1), m.group(2))
            last_block[where] = max(last_block.get(where, -1), int(m.group(3)))
    mapping = {}
    for key in keys:
        m = _HF_ENC_OUT.match(key)
        downs_t = (last_block.get((m.group(1), m.group(2)), -1) + 1) // 2 if m else 0
        mapping[key] = vqvae_hf_to_openai(key, downs_t)
    return mapping


# ---- priors ----------------------------------------------------------------------------------------------

# Whole-key rewrites, tried in order; each is (OpenAI pattern, HF template, HF pattern, OpenAI template).
_COND = r"conditioner_blocks"
_PRIOR_RULES: list[tuple[str, str, str, str]] = [
    # upsampler conditioner (a decoder-like conv stack over the level-above codes)
    (
        rf"^{_COND}\.0\.cond\.model\.0\.{_PARAM}$",
        r"conditioner_blocks.upsampler.proj_in.\1",
        rf"^{_COND}\.upsampler\.proj_in\.{_PARAM}$",
        r"conditioner_blocks.0.cond.model.0.\1",
    ),
    (
        rf"^{_COND}\.0\.cond\.model\.(\d+)\.0\.blocks\.(\d+)\.model\.([13])\.{_PARAM}$",
        "<cond-res>",
        rf"^{_COND}\.upsampler\.upsample_block\.(\d+)\.resnet_block\.(\d+)\.conv1d_([12])\.{_PARAM}$",
        "<cond-res>",
    ),
    (
        rf"^{_COND}\.0\.cond\.model\.(\d+)\.1\.{_PARAM}$",
        "<cond-up>",
        rf"^{_COND}\.upsampler\.upsample_block\.(\d+)\.{_PARAM}$",
        "<cond-up>",
    ),
    (
        rf"^{_COND}\.0\.x_emb\.weight$",
        "conditioner_blocks.embed_tokens.weight",
        rf"^{_COND}\.embed_tokens\.weight$",
        "conditioner_blocks.0.x_emb.weight",
    ),
    (
        rf"^{_COND}\.0\.ln\.{_PARAM}$",
        r"conditioner_blocks.layer_norm.\1",
        rf"^{_COND}\.layer_norm\.{_PARAM}$",
        r"conditioner_blocks.0.ln.\1",
    ),
    # label (metadata) embeddings
    (
        r"^y_emb\.(artist_emb|bow_genre_emb)\.emb\.weight$",
        r"metadata_embedding.\1.weight",
        r"^metadata_embedding\.(artist_emb|bow_genre_emb)\.weight$",
        r"y_emb.\1.emb.weight",
    ),
    (
        r"^y_emb\.(total_length_emb|absolute_pos_emb|relative_pos_emb)\.emb\.weight$",
        r"metadata_embedding.\1.emb.weight",
        r"^metadata_embedding\.(total_length_emb|absolute_pos_emb|relative_pos_emb)\.emb\.weight$",
        r"y_emb.\1.emb.weight",
    ),
    # lyric encoder of the 5b_lyrics top prior
    (r"^prime_state_proj\.([wb])$", "<proj-in>", rf"^encoder\.proj_in\.{_PARAM}$", "<proj-in>"),
    (
        rf"^prime_state_ln\.{_PARAM}$",
        r"encoder.final_layer_norm.\1",
        rf"^encoder\.final_layer_norm\.{_PARAM}$",
        r"prime_state_ln.\1",
    ),
    (r"^prime_x_out\.weight$", "encoder.lm_head.weight", r"^encoder\.lm_head\.weight$", "prime_x_out.weight"),
    (
        r"^prime_prior\.start_token$",
        "encoder.start_token",
        r"^encoder\.start_token$",
        "prime_prior.start_token",
    ),
    # the autoregressive transformers (music prior and lyric encoder)
    (
        r"^prior\.x_out\.weight$",
        "prior.fc_proj_out.weight",
        r"^prior\.fc_proj_out\.weight$",
        "prior.x_out.weight",
    ),
    (
        r"^(prior|prime_prior)\.x_emb\.weight$",
        "<x-emb>",
        r"^(prior|encoder)\.embed_tokens\.weight$",
        "<x-emb>",
    ),
    (
        r"^(prior|prime_prior)\.pos_emb\.pos_emb$",
        "<pos-emb>",
        r"^(prior|encoder)\.pos_emb\.pos_emb$",
        "<pos-emb>",
    ),
    (
        r"^(prior|prime_prior)\.transformer\._attn_mods\.(\d+)\.(attn\.c_attn|attn\.c_proj|attn\.c_enc_kv|mlp\.c_fc|mlp\.c_proj)\.([wb])$",
        "<conv1d>",
        rf"^(prior|encoder)\.transformer\._attn_mods\.(\d+)\.(attn\.c_attn|attn\.c_proj|attn\.c_enc_kv|mlp\.c_fc|mlp\.c_proj)\.{_PARAM}$",
        "<conv1d>",
    ),
    (
        rf"^(prior|prime_prior)\.transformer\._attn_mods\.(\d+)\.ln_([01])\.{_PARAM}$",
        "<ln>",
        rf"^(prior|encoder)\.transformer\._attn_mods\.(\d+)\.layer_norm_([01])\.{_PARAM}$",
        "<ln>",
    ),
]
_COMPILED = [(re.compile(a), b, re.compile(c), d) for a, b, c, d in _PRIOR_RULES]

_WB_TO_PARAM = {"w": "weight", "b": "bias"}
_PARAM_TO_WB = {"weight": "w", "bias": "b"}
_OA_NET = {"prior": "prior", "prime_prior": "encoder"}
_HF_NET = {v: k for k, v in _OA_NET.items()}

_SPECIAL_OA_TO_HF: dict[str, Callable[[re.Match[str]], str]] = {
    "<cond-res>": lambda m: (
        f"conditioner_blocks.upsampler.upsample_block.{2 * int(m[1]) - 2}.resnet_block.{m[2]}"
        f".conv1d_{_RES_CONV_OA_TO_HF[m[3]]}.{m[4]}"
    ),
    "<cond-up>": lambda m: f"conditioner_blocks.upsampler.upsample_block.{2 * int(m[1]) - 1}.{m[2]}",
    "<proj-in>": lambda m: f"encoder.proj_in.{_WB_TO_PARAM[m[1]]}",
    "<x-emb>": lambda m: f"{_OA_NET[m[1]]}.embed_tokens.weight",
    "<pos-emb>": lambda m: f"{_OA_NET[m[1]]}.pos_emb.pos_emb",
    "<conv1d>": lambda m: f"{_OA_NET[m[1]]}.transformer._attn_mods.{m[2]}.{m[3]}.{_WB_TO_PARAM[m[4]]}",
    "<ln>": lambda m: f"{_OA_NET[m[1]]}.transformer._attn_mods.{m[2]}.layer_norm_{m[3]}.{m[4]}",
}


def _cond_res_to_openai(m: re.Match[str]) -> str:
    i, s = divmod(int(m[1]) + 2, 2)
    if s != 0:
        raise KeyError(f"HF upsampler res block at an odd upsample_block index: {m[0]!r}")
    return f"conditioner_blocks.0.cond.model.{i}.0.blocks.{m[2]}.model.{_RES_CONV_HF_TO_OA[m[3]]}.{m[4]}"


def _cond_up_to_openai(m: re.Match[str]) -> str:
    i, s = divmod(int(m[1]) + 2, 2)
    if s != 1:
        raise KeyError(f"HF upsampler transposed conv at an even upsample_block index: {m[0]!r}")
    return f"conditioner_blocks.0.cond.model.{i}.1.{m[2]}"


_SPECIAL_HF_TO_OA: dict[str, Callable[[re.Match[str]], str]] = {
    "<cond-res>": _cond_res_to_openai,
    "<cond-up>": _cond_up_to_openai,
    "<proj-in>": lambda m: f"prime_state_proj.{_PARAM_TO_WB[m[1]]}",
    "<x-emb>": lambda m: f"{_HF_NET[m[1]]}.x_emb.weight",
    "<pos-emb>": lambda m: f"{_HF_NET[m[1]]}.pos_emb.pos_emb",
    "<conv1d>": lambda m: f"{_HF_NET[m[1]]}.transformer._attn_mods.{m[2]}.{m[3]}.{_PARAM_TO_WB[m[4]]}",
    "<ln>": lambda m: f"{_HF_NET[m[1]]}.transformer._attn_mods.{m[2]}.ln_{m[3]}.{m[4]}",
}


def prior_openai_to_hf(key: str) -> str:
    """Map one key of an OpenAI prior file (``prior_level_N.pth.tar['model']``) to HF ``JukeboxPrior`` names."""
    for oa, hf_template, _, _ in _COMPILED:
        if m := oa.match(key):
            special = _SPECIAL_OA_TO_HF.get(hf_template)
            return special(m) if special else m.expand(hf_template)
    raise KeyError(f"not an OpenAI Jukebox prior key: {key!r}")


def prior_hf_to_openai(key: str) -> str:
    """Map one HF ``JukeboxPrior`` key back to the OpenAI name."""
    for _, _, hf, oa_template in _COMPILED:
        if m := hf.match(key):
            special = _SPECIAL_HF_TO_OA.get(oa_template)
            return special(m) if special else m.expand(oa_template)
    raise KeyError(f"not a Hugging Face JukeboxPrior key: {key!r}")


# ---- whole HF JukeboxModel -------------------------------------------------------------------------------


def hf_prior_index(level: int, levels: int = 3) -> int:
    """HF ``priors.{k}`` index of the prior for OpenAI ``level`` (HF numbers priors top first)."""
    if not 0 <= level < levels:
        raise KeyError(f"prior level {level} is outside 0..{levels - 1}")
    return levels - 1 - level


def split_hf_model_key(key: str, levels: int = 3) -> tuple[str, int | None, str]:
    """Split a ``JukeboxModel`` key into ("vqvae", None, inner) or ("prior", OpenAI level, inner)."""
    if key.startswith("vqvae."):
        return "vqvae", None, key[len("vqvae.") :]
    if m := re.match(r"^priors\.(\d+)\.(.+)$", key):
        index = int(m[1])
        if index >= levels:
            raise KeyError(f"HF key {key!r} names prior {index}, but the model has {levels} priors")
        return "prior", levels - 1 - index, m[2]
    raise KeyError(f"not a Hugging Face JukeboxModel key: {key!r}")
