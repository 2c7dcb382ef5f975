"""Tiny real Jukebox priors (H5's tiny presets) wired for the sampling engine, plus tiny id tables."""

from __future__ import annotations

import torch

from conditioning.ids import parse_id_lines
from conditioning.labels import Metadata, SongLabels, song_labels
from model.prior import presets
from model.prior.prior import JukeboxPrior
from model.prior.prior_config import PriorConfig
from model.sampling.jukebox import JukeboxLevel
from model.sampling.lengths import Geometry
from model.sampling.setup import geometry_for, label_set_for

SR = 44100
ARTISTS = {"v2": ["unknown;0", "ada;1", "bo;2"], "v3": ["unknown;0", "ada;1", "bo;2"]}
GENRES = {"v2": ["unknown;0", "jazz;1", "pop;2"], "v3": ["unknown;0", "jazz;1", "pop;2"]}


def build(config: PriorConfig, seed: int = 0) -> JukeboxPrior:
    torch.manual_seed(seed)
    prior = JukeboxPrior(config).eval()
    with torch.no_grad():  # lively random weights so tokens differ between seeds and positions
        for name, p in prior.named_parameters():
            if p.dim() >= 2 and "ln" not in name:
                p.normal_(std=0.3)
    return prior


def tiny_configs(top: PriorConfig | None = None) -> dict[int, PriorConfig]:
    return {2: top or presets.tiny_prior(), 1: presets.tiny_upsampler(1), 0: presets.tiny_upsampler(0)}


def tiny_levels(top: PriorConfig | None = None) -> dict[int, JukeboxLevel]:
    return {lv: JukeboxLevel(build(c, seed=lv)) for lv, c in tiny_configs(top).items()}


def tiny_geometry(configs: dict[int, PriorConfig] | None = None) -> Geometry:
    return geometry_for((8, 32, 128), SR, configs or tiny_configs())


def tiny_labels(configs: dict[int, PriorConfig], lyrics: str = "", total_seconds: float = 2.0) -> dict[int, SongLabels]:
    meta = Metadata("ada", "jazz", lyrics, total_length=int(total_seconds * SR))
    out = {}
    for lv, c in configs.items():
        ls = label_set_for(c)
        artists = parse_id_lines(ARTISTS[ls.version], "artist", ls.version)
        genres = parse_id_lines(GENRES[ls.version], "genre", ls.version)
        out[lv] = song_labels(meta, ls, artists, genres)
    return out


def tiny_vqvae(seed: int = 0):  # type: ignore[no-untyped-def]
    """A 3-level VQ-VAE with the tiny priors' hops (8, 32, 128) and codebook (64 codes)."""
    from model.vqvae import VQVAE, VQVAEConfig

    torch.manual_seed(seed)
    config = VQVAEConfig(codebook_size=64, emb_width=8, width=8, depth=1, multipliers=None, linf_k=64)
    return VQVAE(config).eval()


def tiny_model_dir(path, top: PriorConfig | None = None):  # type: ignore[no-untyped-def]
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
