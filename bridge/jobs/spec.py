"""``JobSpec``: everything a job needs, checked for structure on construction (re-exported by ``bridge.jobs``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bridge.jobs.inputs import AudioInput, Length, OutputFormat, ProjectContext
from bridge.jobs.states import JobKind
from common.errors import InputError

if TYPE_CHECKING:
    from model.tasks.capabilities import Capabilities


def _tuple(values: Any, cast: Any) -> tuple:
    return tuple(cast(v) for v in (values or ()))


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


_ORDER_BY = re.compile(r"midi_chroma|drum_onset_f1|mean|loudness_corr(:[a-z][a-z0-9_]{0,31})?")

@dataclass(frozen=True)
class JobSpec:
    """Everything a job needs. ``temperatures`` and ``guidance`` are indexed by level (0 = bottom);
    empty means the model's defaults. ``seeds`` is empty (daemon picks) or one per candidate.

    The MIDI clip's time 0 sits at project time ``midi_start_s``, or at bar ``midi_start_bar`` beat
    ``midi_start_beat`` (1-based, through the tempo map); neither: at the region's start (the clip was
    exported from the selection). Each stem's first sample sits at its ``AudioInput.start_s`` (default: the
    region's start). ``condition_guidance``: ``NAME=SCALE`` / ``NAME@LEVEL=SCALE`` per condition."""

    kind: JobKind
    model: str
    length: Length
    project: ProjectContext = field(default_factory=ProjectContext)
    region: AudioInput | None = None
    codes: AudioInput | None = None
    artist: str = ""
    genre: str = ""
    lyrics: str = ""
    midi: AudioInput | None = None
    stems: tuple[AudioInput, ...] = ()
    midi_start_s: float | None = None
    midi_start_bar: float | None = None
    midi_start_beat: float | None = None
    condition_guidance: tuple[str, ...] = ()
    order_by: str = ""  # an adherence metric: the candidates come back best first by it ("" = as sampled)
    candidates: int = 1
    seeds: tuple[int, ...] = ()
    temperatures: tuple[float, ...] = ()
    guidance: tuple[float, ...] = ()
    output: OutputFormat = field(default_factory=OutputFormat)
    priority: int = 0
    client: str = ""

    def __post_init__(self) -> None:
        if not self.model:
            raise InputError("a job needs a model name")
        if self.kind in (JobKind.CONTINUE, JobKind.ENCODE) and self.region is None:
            raise InputError(f"a '{self.kind.value}' job needs a region")
        if self.kind in (JobKind.UPSAMPLE, JobKind.EXTEND) and self.codes is None:
            raise InputError(f"an '{self.kind.value}' job needs codes")
        if self.candidates < 1:
            raise InputError(f"candidates must be at least 1 (got {self.candidates})")
        if self.seeds and len(self.seeds) != self.candidates:
            raise InputError(f"give one seed per candidate ({self.candidates}) or none (got {len(self.seeds)})")
        if any(not t > 0 for t in self.temperatures):
            raise InputError("temperatures must be positive")
        if any(g < 0 for g in self.guidance):
            raise InputError("guidance scales must be >= 0")
        if self.midi_start_s is not None and self.midi_start_bar is not None:
            raise InputError("place the MIDI clip by 'midi_start_s' or by 'midi_start_bar', not both")
        if self.midi_start_beat is not None and self.midi_start_bar is None:
            raise InputError("'midi_start_beat' goes with 'midi_start_bar' (the beat within that bar)")
        if self.midi is None and (self.midi_start_s, self.midi_start_bar) != (None, None):
            raise InputError("'midi_start_s' / 'midi_start_bar' place a MIDI clip, but the job sends no 'midi'")
        if self.order_by:
            if not _ORDER_BY.fullmatch(self.order_by):
                raise InputError(
                    f"order_by {self.order_by[:40]!r} is not an adherence metric: use midi_chroma, drum_onset_f1, "
                    "loudness_corr, loudness_corr:<stem label> or mean"
                )
            if self.midi is None and not self.stems:
                raise InputError("order_by orders the candidates by how they follow the job's MIDI or stems: send 'midi' or 'stems'")

    def check_conditions(self, caps: Capabilities | None = None) -> None:
        """At submit: every ``condition_guidance`` entry is ``NAME=SCALE`` or ``NAME@LEVEL=SCALE`` and, given the
        model's ``caps``, names one of its conditioners (a stem label, ``midi`` or ``grid``)."""
        from model.sampling.params import parse_guidance  # (no torch)

        have = None if caps is None else (
            tuple(n for n in ("midi", "grid") if n in caps.conditioners) + tuple(caps.stems)
        )  # fmt: skip
        for text in self.condition_guidance:
            name = parse_guidance(text).condition
            if have is not None and name not in have:
                raise InputError(
                    f"condition_guidance {text!r}: model {self.model!r} has no conditioner {name!r} "
                    f"(its conditioners: {', '.join(sorted(have)) or 'none'})"
                )

    def check_seeds(self) -> None:
        """At submit, not in ``__post_init__``: a journal written before this rule must still load."""
        for seed in self.seeds:  # a torch generator takes a 64-bit seed; bigger ones failed mid-job as 'internal'
            if not -(1 << 63) <= seed < 1 << 63:
                raise InputError(f"seed {seed} is out of range: use {-(1 << 63)}..{(1 << 63) - 1}")

    @property
    def stem_labels(self) -> tuple[str, ...]:
        """The label of each stem ("" for a stem sent without one)."""
        return tuple(s.label or "" for s in self.stems)

    @property
    def length_s(self) -> float:
        return self.length.to_seconds(self.project)

    @property
    def sample_rate(self) -> int:
        """Sample rate of the rendered files (the project's unless the output format says otherwise)."""
        return self.output.sample_rate or self.project.sample_rate

    def inputs(self) -> list[AudioInput]:
        """Every file this job reads, for path checks and spooling."""
        files = [f for f in (self.region, self.codes, self.midi) if f is not None]
        return files + list(self.stems)

    def to_dict(self) -> dict[str, Any]:
        def opt(x: AudioInput | None) -> dict[str, Any] | None:
            return None if x is None else x.to_dict()

        return {
            "kind": self.kind.value,
            "model": self.model,
            "length": self.length.to_dict(),
            "project": self.project.to_dict(),
            "region": opt(self.region),
            "codes": opt(self.codes),
            "artist": self.artist,
            "genre": self.genre,
            "lyrics": self.lyrics,
            "midi": opt(self.midi),
            "stems": [s.to_dict() for s in self.stems],
            "midi_start_s": self.midi_start_s,
            "midi_start_bar": self.midi_start_bar,
            "midi_start_beat": self.midi_start_beat,
            "condition_guidance": list(self.condition_guidance),
            "order_by": self.order_by,
            "candidates": self.candidates,
            "seeds": list(self.seeds),
            "temperatures": list(self.temperatures),
            "guidance": list(self.guidance),
            "output": self.output.to_dict(),
            "priority": self.priority,
            "client": self.client,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> JobSpec:
        def opt(x: dict[str, Any] | None) -> AudioInput | None:
            return None if x is None else AudioInput.from_dict(x)

        return cls(
            kind=JobKind(d["kind"]),
            model=str(d["model"]),
            length=Length.from_dict(d["length"]),
            project=ProjectContext.from_dict(d.get("project", {})),
            region=opt(d.get("region")),
            codes=opt(d.get("codes")),
            artist=str(d.get("artist", "")),
            genre=str(d.get("genre", "")),
            lyrics=str(d.get("lyrics", "")),
            midi=opt(d.get("midi")),
            stems=tuple(AudioInput.from_dict(s) for s in d.get("stems", [])),
            midi_start_s=_opt_float(d.get("midi_start_s")),
            midi_start_bar=_opt_float(d.get("midi_start_bar")),
            midi_start_beat=_opt_float(d.get("midi_start_beat")),
            condition_guidance=_tuple(d.get("condition_guidance"), str),
            order_by=str(d.get("order_by") or ""),
            candidates=int(d.get("candidates", 1)),
            seeds=_tuple(d.get("seeds"), int),
            temperatures=_tuple(d.get("temperatures"), float),
            guidance=_tuple(d.get("guidance"), float),
            output=OutputFormat.from_dict(d.get("output", {})),
            priority=int(d.get("priority", 0)),
            client=str(d.get("client", "")),
        )
