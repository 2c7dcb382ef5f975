"""What a job reads and where it sits in the project: input files, tempo map, length, output format
(re-exported by ``bridge.jobs``)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Any

from common.errors import InputError

MAX_PROJECT_S = 86400.0  # project times (a clip's or a stem's start) lie within ±a day


@dataclass(frozen=True)
class AudioInput:
    """A file the client gives the daemon: a region, a stem, a MIDI clip or a codes file.

    Exactly one of ``path`` (a file under an allowed root) or ``data`` (bytes sent as a ZeroMQ frame).
    ``format`` is a hint ("wav", "flac", "mid", "codes"); ``label`` names a stem ("drums"); ``source_name``
    is the file name the client gave, kept when the daemon spools a path input under a name of its own;
    ``start_s``: the project time of a stem's first sample (None: the region's start).
    In ``to_dict`` bytes become base64 under ``data_b64``; the engine should spool bytes to a file in its
    store first (``with_path``) so the journal stays small. The wire never carries base64.
    """

    path: str | None = None
    data: bytes | None = None
    format: str | None = None
    label: str | None = None
    source_name: str | None = None
    start_s: float | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise InputError("an input file needs exactly one of 'path' or bytes (got both or neither)")
        if self.data is not None and len(self.data) == 0:
            raise InputError(f"input {self.label or self.format or 'file'} has 0 bytes")
        if self.start_s is not None and not abs(self.start_s) <= MAX_PROJECT_S:
            raise InputError(f"input {self.label or self.format or 'file'}: start_s {self.start_s} is outside "
                             f"±{MAX_PROJECT_S:g} s")

    def with_path(self, path: str) -> AudioInput:
        return replace(self, path=path, data=None)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"format": self.format, "label": self.label}
        if self.source_name is not None:
            out["source_name"] = self.source_name
        if self.start_s is not None:
            out["start_s"] = self.start_s
        if self.path is not None:
            out["path"] = self.path
        else:
            assert self.data is not None  # guaranteed by __post_init__
            out["data_b64"] = base64.b64encode(self.data).decode("ascii")
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AudioInput:
        data = base64.b64decode(d["data_b64"]) if d.get("data_b64") is not None else None
        start = d.get("start_s")
        return cls(path=d.get("path"), data=data, format=d.get("format"), label=d.get("label"),
                   source_name=d.get("source_name"), start_s=None if start is None else float(start))


@dataclass(frozen=True)
class TempoChange:
    """From project time ``time_s`` on, the tempo is ``bpm`` quarter notes per minute."""

    time_s: float
    bpm: float


@dataclass(frozen=True)
class ProjectContext:
    """Where the region sits in the DAW project. Generation starts at ``region_end_s`` when given
    (continuations), else at ``region_start_s``."""

    sample_rate: int = 44100
    bit_depth: int = 24
    region_start_s: float = 0.0
    region_end_s: float | None = None
    tempo_map: tuple[TempoChange, ...] = (TempoChange(0.0, 120.0),)
    time_signature: tuple[int, int] = (4, 4)

    def __post_init__(self) -> None:
        if not 8000 <= self.sample_rate <= 192000:
            raise InputError(f"project sample_rate {self.sample_rate} is outside 8000..192000 Hz")
        if self.bit_depth not in (16, 24, 32):
            raise InputError(f"project bit_depth {self.bit_depth} is not one of 16, 24, 32")
        if not self.tempo_map:
            raise InputError("tempo_map needs at least one tempo change")
        if any(not 20.0 <= t.bpm <= 999.0 for t in self.tempo_map):
            raise InputError("tempo_map bpm values must lie in 20..999")
        times = [t.time_s for t in self.tempo_map]
        if times != sorted(times):
            raise InputError("tempo_map must be sorted by time_s")
        num, den = self.time_signature
        if not (1 <= num <= 64 and den in (1, 2, 4, 8, 16, 32)):
            raise InputError(f"time_signature {num}/{den} is not valid (1..64 over 1,2,4,8,16,32)")
        if self.region_end_s is not None and self.region_end_s < self.region_start_s:
            raise InputError("region_end_s is before region_start_s")

    @property
    def generation_start_s(self) -> float:
        return self.region_end_s if self.region_end_s is not None else self.region_start_s

    def seconds_for_bars(self, bars: float, start_s: float | None = None) -> float:
        """Length in seconds of ``bars`` bars starting at project time ``start_s``, following the tempo map."""
        num, den = self.time_signature
        quarters_left = bars * num * 4.0 / den
        t = self.generation_start_s if start_s is None else start_s
        begin = t
        changes = list(self.tempo_map)
        while quarters_left > 1e-12:
            bpm = changes[0].bpm
            next_change = None
            for change in changes:
                if change.time_s <= t:
                    bpm = change.bpm
                elif next_change is None:
                    next_change = change.time_s
            seconds_per_quarter = 60.0 / bpm
            if next_change is None:
                t += quarters_left * seconds_per_quarter
                break
            span_quarters = (next_change - t) / seconds_per_quarter
            if span_quarters >= quarters_left:
                t += quarters_left * seconds_per_quarter
                break
            quarters_left -= span_quarters
            t = next_change
        return t - begin

    def to_dict(self) -> dict[str, Any]:
        return {
            "sample_rate": self.sample_rate,
            "bit_depth": self.bit_depth,
            "region_start_s": self.region_start_s,
            "region_end_s": self.region_end_s,
            "tempo_map": [[t.time_s, t.bpm] for t in self.tempo_map],
            "time_signature": list(self.time_signature),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ProjectContext:
        tempo = tuple(TempoChange(float(a), float(b)) for a, b in d.get("tempo_map", [[0.0, 120.0]]))
        num, den = d.get("time_signature", [4, 4])
        end = d.get("region_end_s")
        return cls(
            sample_rate=int(d.get("sample_rate", 44100)),
            bit_depth=int(d.get("bit_depth", 24)),
            region_start_s=float(d.get("region_start_s", 0.0)),
            region_end_s=None if end is None else float(end),
            tempo_map=tempo,
            time_signature=(int(num), int(den)),
        )


@dataclass(frozen=True)
class Length:
    """How much to generate: exactly one of ``seconds`` or ``bars`` (converted via the tempo map)."""

    seconds: float | None = None
    bars: float | None = None

    def __post_init__(self) -> None:
        if (self.seconds is None) == (self.bars is None):
            raise InputError("length needs exactly one of 'seconds' or 'bars'")
        value = self.seconds if self.seconds is not None else self.bars
        if value is None or not value > 0:
            raise InputError(f"length must be positive (got {value})")

    def to_seconds(self, project: ProjectContext) -> float:
        if self.seconds is not None:
            return float(self.seconds)
        assert self.bars is not None  # guaranteed by __post_init__
        return project.seconds_for_bars(self.bars)

    def to_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "bars": self.bars}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Length:
        s, b = d.get("seconds"), d.get("bars")
        return cls(seconds=None if s is None else float(s), bars=None if b is None else float(b))


@dataclass(frozen=True)
class OutputFormat:
    """Rendered files: ``sample_rate`` / ``bit_depth`` None mean the project's; bit depth 16, 24 or 32 (float)."""

    sample_rate: int | None = None
    bit_depth: int | None = None
    container: str = "wav"

    def __post_init__(self) -> None:
        if self.bit_depth is not None and self.bit_depth not in (16, 24, 32):
            raise InputError(f"output bit_depth {self.bit_depth} is not one of 16, 24, 32")
        if self.sample_rate is not None and not 8000 <= self.sample_rate <= 192000:
            raise InputError(f"output sample_rate {self.sample_rate} is outside 8000..192000 Hz")
        if self.container not in ("wav", "flac"):
            raise InputError(f"output container {self.container!r} is not 'wav' or 'flac'")

    def to_dict(self) -> dict[str, Any]:
        return {"sample_rate": self.sample_rate, "bit_depth": self.bit_depth, "container": self.container}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OutputFormat:
        sr, bits = d.get("sample_rate"), d.get("bit_depth")
        return cls(
            sample_rate=None if sr is None else int(sr),
            bit_depth=None if bits is None else int(bits),
            container=str(d.get("container", "wav")),
        )
