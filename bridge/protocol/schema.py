"""The segue wire protocol, defined once.

Both front ends (ZeroMQ, OSC) are driven by this module: ``REQUESTS`` lists every request type with its
fields, types and limits, ``OBJECTS`` the nested objects, ``ERROR_CODES`` the stable error names.
``validate_request`` checks a decoded request against the schema and returns its content with
defaults filled in. ``docs/protocol.md`` contains the tables ``markdown_tables()`` writes, and a test
checks that they agree.

Types: ``str``, ``int``, ``float``, ``bool``, ``list[int]``, ``list[float]``, ``list[str]``, ``file``
(an input file: ``{"path": ...}`` or, over ZeroMQ, ``{"buffer": i}`` naming a binary frame, with optional
``format``, ``label`` and, for a stem, ``start_s``: the project time of its first sample),
``list[file]``, and ``object:<Name>`` for an entry of ``OBJECTS``. Limits: for strings and lists the
maximum length, for numbers the inclusive range, and for lists of numbers also each item's range.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from common.text import control_character_problem

PROTOCOL_VERSION = "1.4"
"""``major.minor``: a client's major version must equal the daemon's; minor additions are compatible."""

OSC_MAX_MESSAGE = 1400
"""Largest OSC datagram the daemon sends, in bytes."""


class ProtocolError(Exception):
    """A request that breaks the protocol; ``code`` is one of ``ERROR_CODES``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


ERROR_CODES: dict[str, str] = {
    "bad_request": "the message is malformed: not JSON/OSC, missing or mistyped field, value out of range",
    "unknown_type": "no request type of that name",
    "version_mismatch": "the client's protocol major version differs from the daemon's",
    "too_large": "a frame, message, string, list or length exceeds a limit",
    "path_not_allowed": "a path is outside the allowed roots, escapes via '..' or a symlink, or is not a regular file",
    "not_found": "no job, model or file with that id/name/path",
    "busy": "the job queue is full; retry later",
    "bad_state": "the job's state does not allow the request (e.g. resubmit of a finished job)",
    "bad_audio": "an input audio file could not be read",
    "bad_input": "a value is out of range for the model or daemon (the message gives the range)",
    "bad_config": "the model or daemon configuration is invalid",
    "bad_checkpoint": "a model checkpoint is missing or corrupt",
    "bad_codes": "a codes file is missing or does not fit the model",
    "bad_journal": "the daemon's job journal cannot be read or written",
    "not_allowed": "the request is not allowed on this socket or transport",
    "shutting_down": "the daemon is shutting down and takes no new work",
    "internal": "a bug in the daemon; the message says where",
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    required: bool = False
    default: Any = None
    min: float | None = None
    max: float | None = None  # max value for numbers, max length for str and lists
    doc: str = ""
    each_min: float | None = None  # inclusive range of each item of a list of numbers
    each_max: float | None = None
    lyrics: bool = False  # a str that may hold tab, newline and carriage return (no other control characters)

    def __post_init__(self) -> None:
        # a list default would be one object shared by every request that leaves the field out
        if isinstance(self.default, (list, dict, set)):
            raise TypeError(f"schema field {self.name!r}: default {self.default!r} is mutable; use a tuple "
                            "(requests get a fresh list)")

    @property
    def limit(self) -> str:
        if self.type in ("str", "file") or self.type.startswith("list["):
            length = "" if self.max is None else f"len ≤ {int(self.max)}"
            each = _range(self.each_min, self.each_max)
            if self.type == "list[str]" and self.each_max is not None:
                each = f"len ≤ {int(self.each_max)}"
            return "; ".join(part for part in (length, each and f"each {each}") if part)
        return _range(self.min, self.max)


def _range(lo: float | None, hi: float | None) -> str:
    if lo is None and hi is None:
        return ""
    def text(x: float | None) -> str:
        return "" if x is None else str(x) if isinstance(x, int) else f"{x:g}"  # ints exactly, e.g. seeds
    return f"{text(lo)}..{text(hi)}"


@dataclass(frozen=True)
class Message:
    name: str
    fields: tuple[Field, ...]
    reply: str  # a short description of the reply content
    control: bool = False  # also served on the control socket
    doc: str = ""


_S = 200  # a name
_TEXT = 4096  # lyrics
_PATH = 1024

OBJECTS: dict[str, tuple[Field, ...]] = {
    "Project": (
        Field("sample_rate", "int", default=44100, min=8000, max=192000, doc="project sample rate, Hz"),
        Field("bit_depth", "int", default=24, min=16, max=32, doc="project bit depth: 16, 24 or 32"),
        Field("region_start_s", "float", default=0.0, min=0, max=86400, doc="region start in the project"),
        Field("region_end_s", "float", min=0, max=86400, doc="region end; generation starts here"),
        Field("tempo_map", "list[float]", default=(0.0, 120.0), max=512, doc="pairs: time_s, bpm, time_s, bpm..."),
        Field("time_signature", "list[int]", default=(4, 4), max=2, doc="numerator, denominator"),
    ),
    "Output": (
        Field("sample_rate", "int", min=8000, max=192000, doc="default: the project's"),
        Field("bit_depth", "int", min=16, max=32, doc="16, 24 or 32 (float); default: the project's"),
        Field("container", "str", default="wav", max=8, doc="wav or flac"),
    ),
}

_FILE_START = Field("start_s", "float", min=-86400, max=86400)  # a stem's first sample, project seconds
_JOB_ID = Field("job_id", "str", required=True, max=64, doc="a job id from submit or list_jobs")
_MODEL = Field("model", "str", required=True, max=_S, doc="a model name from hello or list_models")

REQUESTS: dict[str, Message] = {
    m.name: m
    for m in (
        Message(
            "hello",
            (
                Field("protocol_version", "str", required=True, max=16, doc="the client's 'major.minor'"),
                Field("client", "str", default="", max=_S, doc="a name shown in logs and list_jobs"),
                Field("reply_host", "str", max=255, doc="OSC only: where replies and events go (default: sender)"),
                Field("reply_port", "int", min=1, max=65535, doc="OSC only: port for replies and events"),
                Field("events", "str", default="own", max=8,
                      doc="OSC only: 'own' (events of the jobs this client submits) or 'all' (every job's)"),
            ),
            reply="protocol_version, daemon_version, capabilities (list), models (as list_models), limits",
            control=True,
        ),
        Message("list_models", (), reply="models: list of {name, state (available, loading, loaded, failed), error, capabilities}"),
        Message("load_model", (_MODEL,), reply="model: {name, state, error}; state is 'loading' until the model is in memory"),
        Message("unload_model", (_MODEL,), reply="model: {name, state, error}"),
        Message(
            "submit",
            (
                Field("kind", "str", required=True, max=16, doc="generate, continue, extend, upsample or encode (prime: the old name of encode)"),
                _MODEL,
                Field("length_s", "float", min=0, max=3600, doc="seconds to generate (or length_bars)"),
                Field("length_bars", "float", min=0, max=1000, doc="bars, via tempo map and time signature"),
                Field("project", "object:Project", doc="where the region sits in the project"),
                Field("region", "file", max=_PATH, doc="audio to continue (continue), or to encode (encode)"),
                Field("codes", "file", max=_PATH, doc="codes file to upsample or extend (e.g. an encode job's result)"),
                Field("artist", "str", default="", max=_S),
                Field("genre", "str", default="", max=_S),
                Field("lyrics", "str", default="", max=_TEXT, lyrics=True),
                Field("midi", "file", max=_PATH, doc="a MIDI clip (path or buffer)"),
                Field("midi_start_s", "float", min=-86400, max=86400,
                      doc="project seconds of the clip's time 0 (default: project.region_start_s)"),
                Field("midi_start_bar", "float", min=-10000, max=100000,
                      doc="or: the bar (1-based, via the tempo map) where the clip's time 0 sits"),
                Field("midi_start_beat", "float", min=1, max=65, doc="beat within midi_start_bar (default 1)"),
                Field("stems", "list[file]", default=(), max=16,
                      doc="stems, each with a label (a conditioner's name) and start_s (default: region_start_s)"),
                Field("candidates", "int", default=1, min=1, max=16),
                Field("seeds", "list[int]", default=(), max=16, each_min=-(1 << 63), each_max=(1 << 63) - 1,
                      doc="one per candidate, or none (64-bit signed)"),
                Field("temperatures", "list[float]", default=(), max=8, each_min=0.01, each_max=10,  # SamplingParams' range
                      doc="per level, 0 = bottom"),
                Field("guidance", "list[float]", default=(), max=8, each_min=0, each_max=20,
                      doc="guidance scale per level, for every condition of the job at that level"),
                Field("condition_guidance", "list[str]", default=(), max=32, each_max=64,
                      doc="NAME=SCALE or NAME@LEVEL=SCALE (midi=2, drums@2=1.5); wins over 'guidance'"),
                Field("order_by", "str", default="", max=40,
                      doc="candidates best first by an adherence metric: midi_chroma, drum_onset_f1, "
                      "loudness_corr[:STEM] or mean (needs midi or stems)"),
                Field("output", "object:Output", doc="rendered file format"),
                Field("priority", "int", default=0, min=-100, max=100, doc="higher runs first"),
            ),
            reply="job: JobInfo (state accepted or queued)",
        ),
        Message("status", (_JOB_ID,), reply="job: JobInfo", control=True),
        Message("cancel", (_JOB_ID,), reply="job: JobInfo", control=True),
        Message(
            "list_jobs",
            (Field("client", "str", max=_S, doc="only this client's jobs"),),
            reply="jobs: list of JobInfo",
            control=True,
        ),
        Message(
            "fetch_result",
            (
                _JOB_ID,
                Field("inline", "bool", default=False, doc="ZeroMQ only: send the files as binary frames"),
            ),
            reply="job: JobInfo, results: list of ResultFile (+ one frame per result if inline: the file's bytes, "
            "audio or codes)",
        ),
        Message(
            "events_since",
            (
                _JOB_ID,
                Field("after", "int", default=0, min=0, max=(1 << 63) - 1,
                      doc="return events with a larger seq: 0 = from the start, else the last seq you have"),
                Field("limit", "int", default=200, min=1, max=1000, doc="most events in one reply"),
            ),
            reply="job_id, events: list of events ({seq, job_id, type, data, time}) oldest first, next_after (the "
            "last seq returned, or after), more (true: ask again with after = next_after)",
            control=True,
        ),
        Message("resubmit", (_JOB_ID,), reply="job: JobInfo of the job taken up again"),
        Message("shutdown", (), reply="{} (then the daemon stops gracefully)", control=True),
    )
}

EVENTS: dict[str, str] = {
    "accepted": "job accepted",
    "queued": "position, eta_s",
    "loading_model": "model",
    "progress": "level, tokens_done, tokens_total, fraction, eta_s (at least 2 per second while working)",
    "preview_ready": "path, level, sample_rate, frames, candidate",
    "level_done": "level",
    "result_ready": "results: list of ResultFile (kind audio; kind codes for encode jobs)",
    "failed": "code, message",
    "cancelled": "reason",
    "interrupted": "reason (the daemon stopped; resubmit to take it up again)",
    "heartbeat": "ZeroMQ only: topic daemon, seq 0, no data, once per heartbeat interval (1 s)",
}


def version_compatible(client_version: str) -> bool:
    try:
        major = int(client_version.split(".")[0])
    except ValueError:
        return False
    return major == int(PROTOCOL_VERSION.split(".")[0])


def _check_number(f: Field, value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ProtocolError("bad_request", f"{where} must be a number (got {type(value).__name__})")
    if isinstance(value, float) and not math.isfinite(value):
        raise ProtocolError("bad_request", f"{where} must be finite (got {value})")
    if (f.min is not None and value < f.min) or (f.max is not None and value > f.max):
        raise ProtocolError("too_large" if f.max is not None and value > f.max else "bad_request",
                            f"{where} = {value} is outside {f.limit}")
    return value


def _check_len(f: Field, n: int, where: str) -> None:
    if f.max is not None and n > f.max:
        raise ProtocolError("too_large", f"{where} has length {n}, the limit is {int(f.max)}")


def _check_text(value: str, where: str, *, lyrics: bool = False) -> None:
    problem = control_character_problem(where, value, lyrics=lyrics)
    if problem:
        raise ProtocolError("bad_request", problem)


def _check_file(f: Field, value: Any, where: str, buffers: int) -> dict[str, Any]:
    if isinstance(value, str):  # a bare path
        value = {"path": value}
    if not isinstance(value, dict):
        raise ProtocolError("bad_request", f"{where} must be an object with 'path' or 'buffer'")
    unknown = set(value) - {"path", "buffer", "format", "label", "start_s"}
    if unknown:
        raise ProtocolError("bad_request", f"{where} has unknown keys {sorted(unknown)}")
    if ("path" in value) == ("buffer" in value):
        raise ProtocolError("bad_request", f"{where} needs exactly one of 'path' or 'buffer'")
    if "path" in value:
        if not isinstance(value["path"], str) or not value["path"]:
            raise ProtocolError("bad_request", f"{where}.path must be a non-empty string")
        _check_len(f, len(value["path"]), f"{where}.path")
        _check_text(value["path"], f"{where}.path")
    else:
        b = value["buffer"]
        if isinstance(b, bool) or not isinstance(b, int) or not 0 <= b < buffers:
            raise ProtocolError("bad_request", f"{where}.buffer = {b!r} names no binary frame (have {buffers})")
    for key in ("format", "label"):
        if key in value and not (isinstance(value[key], str) and len(value[key]) <= 32):
            raise ProtocolError("bad_request", f"{where}.{key} must be a string of at most 32 characters")
        if key in value:
            _check_text(value[key], f"{where}.{key}")
    if "start_s" in value:
        _check_number(_FILE_START, value["start_s"], f"{where}.start_s")
        value = {**value, "start_s": float(value["start_s"])}
    return dict(value)


def _check_field(f: Field, value: Any, where: str, buffers: int) -> Any:
    t = f.type
    if t == "str":
        if not isinstance(value, str):
            raise ProtocolError("bad_request", f"{where} must be a string (got {type(value).__name__})")
        _check_len(f, len(value), where)
        _check_text(value, where, lyrics=f.lyrics)
        return value
    if t == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ProtocolError("bad_request", f"{where} must be an integer (got {value!r})")
        return int(_check_number(f, value, where))
    if t == "float":
        return float(_check_number(f, value, where))
    if t == "bool":
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ProtocolError("bad_request", f"{where} must be true or false (got {value!r})")
    if t == "file":
        return _check_file(f, value, where, buffers)
    if t.startswith("list["):
        if not isinstance(value, list):
            value = [value]  # OSC sends a one-element list as a single value
        _check_len(f, len(value), where)
        inner = Field(f.name, t[5:-1], min=f.each_min, max=_PATH if t == "list[file]" else f.each_max)
        return [_check_field(inner, v, f"{where}[{i}]", buffers) for i, v in enumerate(value)]
    if t.startswith("object:"):
        if not isinstance(value, dict):
            raise ProtocolError("bad_request", f"{where} must be an object")
        return _check_fields(OBJECTS[t[7:]], value, where, buffers)
    raise AssertionError(f"schema type {t!r} is not handled")  # a bug in this module, not user input


def _check_fields(fields: tuple[Field, ...], content: dict[str, Any], where: str, buffers: int) -> dict[str, Any]:
    known = {f.name for f in fields}
    unknown = sorted(k for k in content if k not in known)
    if unknown:
        raise ProtocolError("bad_request", f"{where}: unknown field(s) {unknown}; allowed: {sorted(known)}")
    out: dict[str, Any] = {}
    for f in fields:
        name = f"{where}.{f.name}" if where else f.name
        if f.name in content and content[f.name] is not None:
            out[f.name] = _check_field(f, content[f.name], name, buffers)
        elif f.required:
            raise ProtocolError("bad_request", f"missing required field '{name}'")
        elif f.default is not None:
            out[f.name] = _fresh(f.default)
    return out


def _fresh(default: Any) -> Any:
    """A request's own copy of a default: tuples become new lists, so no two requests share one."""
    return [_fresh(v) for v in default] if isinstance(default, tuple) else default


def validate_request(msg_type: str, content: Any, buffers: int = 0) -> dict[str, Any]:
    """Check ``content`` of a ``msg_type`` request; return it with defaults filled in."""
    if not isinstance(msg_type, str) or msg_type not in REQUESTS:
        raise ProtocolError("unknown_type", f"unknown request type {str(msg_type)[:64]!r}; known: {sorted(REQUESTS)}")
    if not isinstance(content, dict):
        raise ProtocolError("bad_request", f"{msg_type}: content must be an object")
    return _check_fields(REQUESTS[msg_type].fields, content, "", buffers)


def markdown_tables() -> str:
    """The schema as Markdown tables: the exact text ``docs/protocol.md`` contains between its markers."""
    lines = [f"Protocol version: `{PROTOCOL_VERSION}`", ""]
    for name, msg in REQUESTS.items():
        lines.append(f"#### `{name}`" + (" (also on the control socket)" if msg.control else ""))
        lines.append("")
        lines += _field_table(msg.fields)
        lines += [f"Reply: {msg.reply}", ""]
    for name, fields in OBJECTS.items():
        lines += [f"#### object `{name}`", ""] + _field_table(fields)
    lines += ["#### Events", "", "| event | data |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in EVENTS.items()]
    lines += ["", "#### Error codes", "", "| code | meaning |", "|---|---|"]
    lines += [f"| `{k}` | {v} |" for k, v in ERROR_CODES.items()]
    return "\n".join(lines) + "\n"


def _field_table(fields: tuple[Field, ...]) -> list[str]:
    if not fields:
        return ["No fields.", ""]
    rows = ["| field | type | required | default | limit | meaning |", "|---|---|---|---|---|---|"]
    for f in fields:
        default = "" if f.default is None else f"`{json.dumps(f.default)}`"
        rows.append(
            f"| `{f.name}` | {f.type} | {'yes' if f.required else 'no'} | {default} | {f.limit} | {f.doc} |"
        )
    return rows + [""]


if __name__ == "__main__":  # print the tables for docs/protocol.md
    print(markdown_tables(), end="")
