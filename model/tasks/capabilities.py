"""``Capabilities``: what a model directory can do, read from its configs alone (no weights loaded).

The daemon reports them in ``hello`` and ``list_models`` and checks every submit against them, so a
job the model cannot do (a kind it has no prior for, MIDI or stems it has no conditioner for, guidance,
a length beyond its song range) is refused at once, naming the model and the way out, instead of after
minutes of loading. Importing this module loads no torch (``segue serve`` before a model loads).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import InputError

INPUT_CONDITIONERS = ("midi", "stems")  # conditioners fed by job inputs (none of segue's priors has one yet)


@dataclass(frozen=True)
class Capabilities:
    """``kinds``: the tasks the model can run; ``levels``: the levels it has priors for (ascending);
    ``lowest_level``: the lowest level reachable from the top through consecutive priors (None: no top prior);
    ``conditioners``: what steers it (``artist``, ``genre``, ``timing``, ``lyrics``; ``midi``, ``stems``
    when a prior takes them); ``max_seconds``: takes must be shorter (None: no limit)."""

    kinds: tuple[str, ...]
    sample_rate: int
    n_levels: int
    levels: tuple[int, ...]
    lowest_level: int | None
    conditioners: tuple[str, ...]
    min_song_seconds: float  # the song-length label's trained range (shorter songs are raised to it)
    max_seconds: float | None
    guidance: bool = False

    @property
    def lyrics(self) -> bool:
        return "lyrics" in self.conditioners

    def to_dict(self) -> dict[str, Any]:
        return {
            "kinds": list(self.kinds),
            "sample_rate": self.sample_rate,
            "levels": list(self.levels),
            "lowest_level": self.lowest_level,
            "conditioners": list(self.conditioners),
            "lyrics": self.lyrics,
            "min_song_seconds": self.min_song_seconds,
            "max_seconds": self.max_seconds,
            "guidance": self.guidance,
        }

    def check(
        self, model: str, kind: str, seconds: float, *, midi: bool = False, stems: bool = False,
        guidance: Sequence[float] = (),
    ) -> None:  # fmt: skip
        """``InputError`` naming the first thing a job of ``kind`` asks that this model cannot do."""
        if kind not in self.kinds:
            raise InputError(f"model {model!r} cannot run '{kind}' jobs ({_why(kind, self)}); it runs: {', '.join(self.kinds)}")
        for name, given in (("midi", midi), ("stems", stems)):
            if given and name not in self.conditioners:
                raise InputError(f"model {model!r} takes no {name.upper() if name == 'midi' else name}: send the job without '{name}'")
        if any(g != 0 for g in guidance) and not self.guidance:
            raise InputError(f"model {model!r} has no guidance: send 'guidance' empty (or zeros)")
        if kind != "encode" and self.max_seconds is not None and seconds >= self.max_seconds:
            raise InputError(
                f"length {seconds:.2f} s is too long for model {model!r}: use less than {self.max_seconds:g} s"
            )


def capabilities_of(model_dir: str | os.PathLike[str]) -> Capabilities:
    """The capabilities of ``model_dir`` from its manifest and config files (``CheckpointError`` if unreadable)."""
    from model.checkpoint.priors import available_levels, read_prior_config, read_vqvae_config
    from model.sampling.setup import geometry_for  # (both load torch: imported here, not with the module)

    directory = Path(model_dir)
    vq = read_vqvae_config(directory)
    levels = available_levels(directory)
    configs = {lv: read_prior_config(directory, lv) for lv in levels}
    n = len(vq.hop_lengths)
    top = n - 1
    geo = geometry_for(tuple(vq.hop_lengths), vq.sample_rate, configs)
    kinds = ["encode"]
    lowest = None
    if top in configs:
        kinds[:0] = ["generate", "continue", "extend"]
        lowest = top
        while lowest - 1 in configs:
            lowest -= 1
    if top > 0 and top - 1 in configs:
        kinds.insert(len(kinds) - 1, "upsample")
    conditioners: list[str] = []
    top_config = configs.get(top)
    if top_config is not None and top_config.labels.enabled:
        conditioners += ["artist", "genre"] + (["timing"] if top_config.time_signal else [])
    if top_config is not None and top_config.lyrics.kind != "none":
        conditioners.append("lyrics")
    return Capabilities(
        kinds=tuple(kinds), sample_rate=vq.sample_rate, n_levels=n, levels=levels, lowest_level=lowest,
        conditioners=tuple(conditioners), min_song_seconds=geo.min_duration,
        max_seconds=geo.max_duration if math.isfinite(geo.max_duration) else None,
    )  # fmt: skip


def _why(kind: str, caps: Capabilities) -> str:
    top = caps.n_levels - 1
    if kind == "upsample":
        return "it has a single level" if top == 0 else f"it has no prior for level {top - 1}"
    if kind in ("generate", "continue", "extend"):
        return f"it has no top-level prior (level {top})"
    return "no such task"
