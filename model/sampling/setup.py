"""Set-up shared by the CLI and the daemon: a model's geometry and a song's labels for every prior."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path

from conditioning.ids import IdTable, load_id_table
from conditioning.labels import LabelSet, Metadata, SongLabels, song_labels
from model.prior.prior_config import PriorConfig
from model.sampling.lengths import Geometry


def geometry_for(hops: tuple[int, ...], sample_rate: int, configs: Mapping[int, PriorConfig]) -> Geometry:
    """Hops come from the VQ-VAE; windows and the song-length range from the priors (top prior's range)."""
    top = len(hops) - 1
    n_ctx = tuple(configs[lv].n_ctx if lv in configs else 0 for lv in range(len(hops)))
    top_config = configs.get(top)
    timed = top_config is not None and top_config.time_signal
    return Geometry(
        sample_rate=sample_rate,
        hops=tuple(hops),
        n_ctx=n_ctx,
        min_duration=top_config.labels.min_duration if timed and top_config else 0.0,
        max_duration=top_config.labels.max_duration if timed and top_config else math.inf,
    )


def label_set_for(config: PriorConfig) -> LabelSet:
    """The labels one prior was trained with (id set, genre slots, lyric window, song-length range)."""
    return LabelSet(
        version="v3" if config.labels.v3 else "v2",
        max_bow_genre_size=config.labels.max_bow_genre_size,
        n_tokens=config.lyrics.n_tokens,
        n_ctx=config.n_ctx,
        hop=config.hop_length,
        sr=config.labels.sample_rate,
        min_duration=config.labels.min_duration if config.time_signal else None,
        max_duration=config.labels.max_duration if config.time_signal else None,
    )


def labels_for_priors(
    configs: Mapping[int, PriorConfig], meta: Metadata, ids_dir: str | Path, strict: bool = True
) -> dict[int, SongLabels]:
    """A song's labels for every labelled prior; id lists ``{v2,v3}_{artist,genre}_ids.txt`` are read from ``ids_dir``."""
    tables: dict[tuple[str, str], IdTable] = {}

    def table(kind: str, version: str) -> IdTable:
        if (kind, version) not in tables:
            path = Path(ids_dir) / f"{version}_{kind}_ids.txt"
            tables[kind, version] = load_id_table(path, kind, version)  # type: ignore[arg-type]
        return tables[kind, version]

    out = {}
    for level, config in configs.items():
        if not config.labels.enabled:
            continue
        ls = label_set_for(config)
        out[level] = song_labels(meta, ls, table("artist", ls.version), table("genre", ls.version), strict=strict)
    return out
