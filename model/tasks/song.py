"""``Song``: what a task's labels say about the song, and how a task's audio is placed in it.

Jukebox's top prior is told the song's total length, where the sampled window starts in it, the artist,
the genre and the lyrics. A task knows where its own audio sits (a region's continuation follows the
region); ``Song.offset`` says where that audio starts in the whole song and ``Song.total_length`` how long
the song is. Left out (``None``), the song is the task's audio, and it is clamped into the top prior's
trained range: a long region is told to the model as a song of the longest length it knows that ends
with the continuation. Given, ``total_length`` is checked against that range instead.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from common.errors import InputError
from conditioning.labels import Metadata, SongLabels
from model.sampling.lengths import check_total_length
from model.sampling.loading import SamplingModel
from model.sampling.setup import labels_for_priors


@dataclass(frozen=True)
class Song:
    """Labels of one song. Lengths are in samples at the model's rate."""

    artist: str = "unknown"
    genre: str = "unknown"
    lyrics: str = ""
    total_length: int | None = None  # the song-length label; None: the task's audio, clamped into range
    offset: int = 0  # where the task's audio (region or generated audio) starts in the song


@dataclass(frozen=True)
class Labelling:
    """Where labels come from: the id lists ``{v2,v3}_{artist,genre}_ids.txt`` in ``ids_dir``; ``strict``:
    an unknown artist or genre is an error (False: it becomes "unknown", as Jukebox does)."""

    ids_dir: Path
    strict: bool = True


def song_labels(
    model: SamplingModel, song: Song, labelling: Labelling, end: int, start: int, length: int
) -> dict[int, SongLabels]:
    """Labels for every labelled prior of a task that samples ``length`` samples beginning ``start``
    samples into its audio, which ends (input and take together) ``end`` samples after ``song.offset``."""
    geo = model.geometry
    rate = geo.sample_rate
    offset = song.offset + start
    if song.total_length is not None:
        check_total_length(song.total_length, length, geo, offset)
        total = song.total_length
    else:
        window = geo.n_ctx[-1] * geo.top_hop
        total = max(song.offset + end, offset + length, math.ceil(geo.min_duration * rate))
        if math.isfinite(geo.max_duration):  # a model without a time signal has no song range
            longest = math.ceil(geo.max_duration * rate) - 1
            total = min(total, longest)
            offset = min(offset, total - length, longest + 1 - max(length, window))
        if offset < 0:
            raise InputError(
                f"this model takes songs shorter than {geo.max_duration:g} s, but this task samples "
                f"{length / rate:.2f} s (a continuation adds up to {window / rate:.2f} s of the region as context): "
                "ask for a shorter length"
            )
    if not any(c.labels for c in model.configs.values()):
        return {}
    meta = Metadata(song.artist, song.genre, song.lyrics, total_length=total, offset=offset)
    return labels_for_priors(model.configs, meta, labelling.ids_dir, strict=labelling.strict)


def label_warnings(labels: Mapping[int, SongLabels]) -> tuple[str, ...]:
    return tuple(sorted({w for lab in labels.values() for w in lab.warnings}))
