"""``Capabilities``: what a model directory can do, read from its configs alone (no weights loaded).

The daemon reports them in ``hello`` and ``list_models`` and checks every submit against them, so a
job the model cannot do (a kind it has no prior for, MIDI or stems it has no conditioner for, guidance,
a length beyond its song range) is refused at once, naming the model and the way out, instead of after
minutes of loading. Importing this module loads no torch (``segue serve`` before a model loads).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import CheckpointError, InputError

INPUT_CONDITIONERS = ("midi", "stems", "grid")  # conditioners fed by job inputs and the host's beat grid
CODES_SUFFIX = "_codes"  # model.conditioners.config.CODES_SUFFIX: drums_codes reads the stem drums
CONDITIONER_KIND = "feature-conditioner"  # model.conditioners.store.KIND (not imported: it loads torch)
_COMPONENT = re.compile(r"conditioner\.level([0-7])\.([a-z][a-z0-9_]{0,31})")


@dataclass(frozen=True)
class Capabilities:
    """``kinds``: the tasks the model can run; ``levels``: the levels it has priors for (ascending);
    ``lowest_level``: the lowest level reachable from the top through consecutive priors (None: no top prior);
    ``conditioners``: what steers it (``artist``, ``genre``, ``timing``, ``lyrics``; ``midi``, ``stems``,
    ``grid`` when a prior has such a conditioner); ``stems``: the stem labels it has conditioners for;
    ``max_seconds``: takes must be shorter (None: no limit); ``guidance``: it has conditioners to guide."""

    kinds: tuple[str, ...]
    sample_rate: int
    n_levels: int
    levels: tuple[int, ...]
    lowest_level: int | None
    conditioners: tuple[str, ...]
    min_song_seconds: float  # the song-length label's trained range (shorter songs are raised to it)
    max_seconds: float | None
    guidance: bool = False
    stems: tuple[str, ...] = ()

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
            "stems": list(self.stems),
        }

    def check(
        self, model: str, kind: str, seconds: float, *, midi: bool = False, stems: Sequence[str] = (),
        guidance: Sequence[float] = (),
    ) -> None:  # fmt: skip
        """``InputError`` naming the first thing a job of ``kind`` asks that this model cannot do;
        ``stems``: the labels of the job's stems."""
        if kind not in self.kinds:
            raise InputError(f"model {model!r} cannot run '{kind}' jobs ({_why(kind, self)}); it runs: {', '.join(self.kinds)}")
        if midi and "midi" not in self.conditioners:
            raise InputError(f"model {model!r} has no MIDI conditioner: send the job without 'midi'")
        if stems and not self.stems:
            raise InputError(f"model {model!r} has no stem conditioners: send the job without 'stems'")
        unknown = [label for label in stems if label not in self.stems]
        if "" in unknown:
            raise InputError(f"a stem has no label: label each stem as one of {', '.join(self.stems)} (model {model!r})")
        if unknown:
            raise InputError(
                f"model {model!r} has no conditioner for stem {unknown[0]!r}: label each stem as one of "
                f"{', '.join(self.stems)}, or leave it out"
            )
        if any(g != 0 for g in guidance) and not self.guidance:
            raise InputError(f"model {model!r} has no conditioners to guide: send 'guidance' empty (or zeros)")
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
    features = feature_conditioners(directory)
    stems = tuple(sorted({name.removesuffix(CODES_SUFFIX) for names in features.values() for name in names} - {"midi", "grid"}))
    for name in ("midi", "grid"):
        if any(name in names for names in features.values()):
            conditioners.append(name)
    if stems:
        conditioners.append("stems")
    return Capabilities(
        kinds=tuple(kinds), sample_rate=vq.sample_rate, n_levels=n, levels=levels, lowest_level=lowest,
        conditioners=tuple(conditioners), min_song_seconds=geo.min_duration,
        max_seconds=geo.max_duration if math.isfinite(geo.max_duration) else None,
        guidance=bool(features), stems=stems,
    )  # fmt: skip


def feature_conditioners(model_dir: str | os.PathLike[str]) -> dict[int, tuple[str, ...]]:
    """Level -> names of its MIDI, stem and grid conditioners, from the manifest (``conditioner.level<L>.<name>``)."""
    from model.checkpoint.model_dir import read_manifest

    out: dict[int, list[str]] = {}
    for entry in read_manifest(model_dir).components:
        if entry.kind != CONDITIONER_KIND:
            continue
        m = _COMPONENT.fullmatch(entry.name)
        if m is None:
            raise CheckpointError(f"{model_dir}: component {entry.name!r} of kind {CONDITIONER_KIND} is not named conditioner.level<L>.<name>")
        out.setdefault(int(m.group(1)), []).append(m.group(2))
    return {lv: tuple(names) for lv, names in sorted(out.items())}


def _why(kind: str, caps: Capabilities) -> str:
    top = caps.n_levels - 1
    if kind == "upsample":
        return "it has a single level" if top == 0 else f"it has no prior for level {top - 1}"
    if kind in ("generate", "continue", "extend"):
        return f"it has no top-level prior (level {top})"
    return "no such task"
