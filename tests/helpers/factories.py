"""Tiny seeded models for every test, in one place: VQ-VAE configs, the tiny priors, id tables, model folders.

VQ-VAEs come in two geometries: Jukebox-shaped (44.1 kHz, hops 8/32/128, so converted model directories and
codes files look like real ones) and two-level (hops 4/8, for training and demo runs). The VQ-VAE unit tests
keep their own 8 kHz config in tests/model/vqvae/conftest.py (tiny receptive fields, so chunking really cuts).
Priors are the tiny presets of ``model.prior.presets`` (n_ctx 32, 64 codes), one per released family.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from conditioning.ids import parse_id_lines
from conditioning.labels import Metadata, SongLabels, song_labels
from model.prior import presets
from model.prior.prior import JukeboxPrior
from model.prior.prior_config import PriorConfig
from model.sampling.jukebox import JukeboxLevel
from model.sampling.lengths import Geometry
from model.sampling.setup import geometry_for, label_set_for
from model.vqvae import VQVAE, VQVAEConfig

SR = 44100
HOPS = (8, 32, 128)
ARTISTS = {"v2": ["unknown;0", "ada;1", "bo;2"], "v3": ["unknown;0", "ada;1", "bo;2"]}
GENRES = {"v2": ["unknown;0", "jazz;1", "pop;2"], "v3": ["unknown;0", "jazz;1", "pop;2"]}


# ---- VQ-VAEs ------------------------------------------------------------------------------------------


def jukebox_shaped_config(**overrides: Any) -> VQVAEConfig:
    """44.1 kHz, 3 levels with hops 8/32/128, emb width 8, 32 codes, width 4, depth 2, multipliers 2/1/1."""
    values: dict[str, Any] = dict(
        sample_rate=SR, levels=3, downs_t=(3, 2, 2), strides_t=(2, 2, 2), emb_width=8, codebook_size=32,
        width=4, depth=2, multipliers=(2, 1, 1),
    )  # fmt: skip
    values.update(overrides)
    return VQVAEConfig(**values)


# The hyper-parameters an official ``hps`` of the VQ-VAE architecture states (the rest take Jukebox's defaults).
ARCHITECTURE_HPS = ("sr", "levels", "downs_t", "strides_t", "emb_width", "l_bins", "width", "depth", "hvqvae_multipliers")


def jukebox_hps(config: VQVAEConfig, keys: tuple[str, ...] = ARCHITECTURE_HPS) -> dict[str, Any]:
    """``config`` in Jukebox's names, only ``keys``: an hps file as the official tools write it."""
    return {k: v for k, v in config.to_jukebox_hps().items() if k in keys}


# The tiny priors' VQ-VAE: Jukebox-shaped with their 64 codes.
PRIOR_VQVAE = jukebox_shaped_config(codebook_size=64)
# What the sampling, CLI and daemon tests run: wider (8) and shallower (depth 1, no multipliers).
SAMPLING_VQVAE = jukebox_shaped_config(codebook_size=64, width=8, depth=1, multipliers=None)


def two_level_config(**overrides: Any) -> VQVAEConfig:
    """2 levels with hops 4/8, 16 codes, width 8, depth 1: trains and decodes in a blink."""
    values: dict[str, Any] = dict(
        levels=2, downs_t=(2, 1), strides_t=(2, 2), emb_width=8, codebook_size=16, width=8, depth=1,
        multipliers=(1, 1),
    )  # fmt: skip
    values.update(overrides)
    return VQVAEConfig(**values)


def tiny_vqvae(seed: int = 0, config: VQVAEConfig = SAMPLING_VQVAE) -> VQVAE:
    """``config`` built after ``torch.manual_seed(seed)``, in eval mode (default: the priors' hops and 64 codes)."""
    torch.manual_seed(seed)
    return VQVAE(config).eval()


def hf_vqvae_config(**overrides: Any) -> dict[str, Any]:
    """A Hugging Face ``JukeboxVQVAEConfig`` dict of the Jukebox-shaped geometry (dilation growth 3)."""
    config: dict[str, Any] = {
        "model_type": "jukebox_vqvae", "act_fn": "relu", "nb_discrete_codes": 32, "embed_dim": 8, "levels": 3,
        "res_downs_t": [3, 2, 2], "res_strides_t": [2, 2, 2], "res_conv_width": 4, "res_conv_depth": 2,
        "multipliers": [2, 1, 1], "res_convolution_multiplier": 1, "res_dilation_growth_rate": 3,
        "res_dilation_cycle": None, "conv_res_scale": False, "lmu": 0.99, "commit": 0.02, "zero_out": False,
    }  # fmt: skip
    config.update(overrides)
    return config


# HF ``JukeboxPriorConfig`` keyword arguments of a tiny 5b_lyrics-shaped top prior (79 layers, cross-attention,
# a 2-layer lyrics encoder) and of an upsampler; plain dicts, so this module needs no transformers.
HF_TINY_LAYERS: dict[str, Any] = dict(hidden_size=32, n_ctx=64, blocks=8, n_heads=1)
HF_TINY_LYRICS_ENCODER: dict[str, Any] = dict(
    hidden_size=32, num_layers=2, n_ctx=16, blocks=4, n_heads=1, attention_pattern="raw_column_previous_row_attention"
)


def hf_tiny_top_prior(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(
        is_encoder_decoder=False, attention_pattern="large_separated_enc_dec_w_lyrics", num_layers=79,
        nb_relevant_lyric_tokens=16, encoder_config=dict(HF_TINY_LYRICS_ENCODER), **HF_TINY_LAYERS,
    )  # fmt: skip
    return {**values, **overrides}


def hf_tiny_upsampler(**overrides: Any) -> dict[str, Any]:
    values: dict[str, Any] = dict(num_layers=2, attention_pattern="raw_column_previous_row_attention", **HF_TINY_LAYERS)
    return {**values, **overrides}


# ---- priors -------------------------------------------------------------------------------------------

# One tiny prior per released family (the names the conformance tests parametrise over).
TINY_PRIORS: dict[str, Callable[[], PriorConfig]] = {
    "upsampler_level_0": lambda: presets.tiny_upsampler(0),
    "upsampler_level_1": lambda: presets.tiny_upsampler(1),
    "top_prior": presets.tiny_prior,
    "separate_lyrics": presets.tiny_prior_separate,
    "merged_lyrics": presets.tiny_prior_merged,
}
TOP_FAMILIES = {name: TINY_PRIORS[name] for name in ("top_prior", "separate_lyrics", "merged_lyrics")}


def build(config: PriorConfig, seed: int = 0) -> JukeboxPrior:
    """A prior with lively N(0, 0.3) weights (LayerNorms kept), so tokens differ between seeds and positions."""
    torch.manual_seed(seed)
    prior = JukeboxPrior(config).eval()
    with torch.no_grad():
        for name, p in prior.named_parameters():
            if p.dim() >= 2 and "ln" not in name:
                p.normal_(std=0.3)
    return prior


def randomise(model: torch.nn.Module, seed: int = 1) -> None:
    """Every parameter random, N(0, 0.1) (LayerNorm gains near 1), so no weight hides behind its initial value."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = (torch.randn(p.shape, generator=g) * 0.1).to(p.dtype)
            p.copy_(1.0 + noise if name.endswith("weight") and p.dim() == 1 else noise)


def randomised_prior(config: PriorConfig, seed: int = 1) -> JukeboxPrior:
    prior = JukeboxPrior(config).eval()
    randomise(prior, seed)
    return prior


def tiny_configs(top: PriorConfig | None = None) -> dict[int, PriorConfig]:
    """Level → config of a three-level tiny model (default top: ``presets.tiny_prior``)."""
    return {2: top or presets.tiny_prior(), 1: presets.tiny_upsampler(1), 0: presets.tiny_upsampler(0)}


def tiny_levels(top: PriorConfig | None = None) -> dict[int, JukeboxLevel]:
    return {lv: JukeboxLevel(build(c, seed=lv)) for lv, c in tiny_configs(top).items()}


def tiny_geometry(configs: dict[int, PriorConfig] | None = None) -> Geometry:
    return geometry_for(HOPS, SR, configs or tiny_configs())


def tiny_labels(configs: dict[int, PriorConfig], lyrics: str = "", total_seconds: float = 2.0) -> dict[int, SongLabels]:
    """Labels of artist "ada", genre "jazz" from the tiny id tables, for each level of ``configs``."""
    meta = Metadata("ada", "jazz", lyrics, total_length=int(total_seconds * SR))
    out = {}
    for lv, c in configs.items():
        ls = label_set_for(c)
        artists = parse_id_lines(ARTISTS[ls.version], "artist", ls.version)
        genres = parse_id_lines(GENRES[ls.version], "genre", ls.version)
        out[lv] = song_labels(meta, ls, artists, genres)
    return out


def tiny_model_dir(path: Path, top: PriorConfig | None = None) -> Path:
    """A model directory with the tiny VQ-VAE, three tiny priors and tiny id lists under ``path/ids``."""
    from model.checkpoint.model_dir import save_component
    from model.sampling.loading import save_prior

    vq = tiny_vqvae()
    save_component(path, "vqvae", "vqvae", vq.config.to_dict(), vq.state_dict(), model_name="tiny")
    for lv, config in tiny_configs(top).items():
        save_prior(path, build(config, seed=lv))
    ids = path / "ids"
    ids.mkdir()
    for version in ("v2", "v3"):
        (ids / f"{version}_artist_ids.txt").write_text("\n".join(ARTISTS[version]) + "\n")
        (ids / f"{version}_genre_ids.txt").write_text("\n".join(GENRES[version]) + "\n")
    return path


def tiny_conditioned_model_dir(path: Path, top: PriorConfig | None = None, *, trained: bool = False) -> Path:
    """``tiny_model_dir`` plus conditioners: ``midi``, ``grid`` and a ``drums`` stem on the top prior, ``grid`` on
    level 1. Untrained (zero output projections, so sampling is unchanged) unless ``trained``: then every
    weight is random, so each condition changes what is sampled."""
    from conditioning import grid, midi, stems
    from model.conditioners import ConditionerConfig, ConditionerSet
    from model.conditioners.store import save_conditioners

    tiny_model_dir(path, top)
    configs = tiny_configs(top)
    plan = {2: (("midi", "midi", midi.N_FEATURES), ("grid", "grid", grid.N_FEATURES), ("drums", "stem", stems.N_FEATURES)),
            1: (("grid", "grid", grid.N_FEATURES),)}  # fmt: skip
    for level, items in plan.items():
        width = configs[level].transformer.width
        conditioners = ConditionerSet(
            ConditionerConfig(name, kind, n, width, level, hidden=16, kernel=3) for name, kind, n in items
        )
        if trained:
            randomise(conditioners, seed=10 + level)
        save_conditioners(path, conditioners)
    return path
