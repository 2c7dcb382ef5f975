"""ZeroMQ message framing (bytes in, values out), after Jupyter's messaging layout.

A message is the multipart sequence

    [routing ids...], b"<IDS|MSG>", header, parent_header, metadata, content, buffer, buffer, ...

where header, parent_header, metadata and content are UTF-8 JSON objects and every buffer is raw
bytes (audio in, rendered files out): audio is never base64. ``header`` holds ``msg_id``,
``msg_type``, ``session``, ``date`` (ISO 8601 UTC) and ``version`` (the protocol version). Replies put
``status`` ("ok" | "error") in their content and the request's header in ``parent_header``. Events on
the PUB socket start with a topic frame instead of routing ids: every job event goes out on
``job.<job_id>`` and, once more, on ``session.<session>.job.<job_id>`` for the session that submitted
(or resubmitted) the job; heartbeats on ``daemon``. A client subscribes to ``session_topic(its
session)`` for its own jobs and to ``job_topic(id)`` for any other job it follows.
There is no HMAC signature frame: remote peers authenticate with CURVE instead.
"""

from __future__ import annotations

import datetime as _dt
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from bridge.protocol.schema import PROTOCOL_VERSION, ProtocolError

DELIMITER = b"<IDS|MSG>"
DAEMON_TOPIC = b"daemon"


def job_topic(job_id: str) -> bytes:
    """The topic of every event of ``job_id`` (daemon job ids are 16 hex digits, so no id is another's prefix)."""
    return f"job.{job_id}".encode()


def session_topic(session: str) -> bytes:
    """The prefix of the events of every job the ZeroMQ ``session`` submitted (subscribe to it as it is)."""
    return f"session.{session}.".encode()


@dataclass(frozen=True)
class WireMessage:
    header: dict[str, Any]
    parent_header: dict[str, Any]
    content: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    buffers: tuple[bytes, ...] = ()

    @property
    def msg_type(self) -> str:
        return str(self.header.get("msg_type", ""))

    @property
    def msg_id(self) -> str:
        return str(self.header.get("msg_id", ""))


def new_header(msg_type: str, session: str) -> dict[str, Any]:
    return {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "session": session,
        "date": _dt.datetime.now(_dt.UTC).isoformat(),
        "version": PROTOCOL_VERSION,
    }


def _json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode("utf-8")


def pack(message: WireMessage, prefix: list[bytes] | None = None) -> list[bytes]:
    """Frames for ``message``, after ``prefix`` (routing ids or a PUB topic)."""
    frames = list(prefix or [])
    frames += [DELIMITER, _json(message.header), _json(message.parent_header), _json(message.metadata)]
    frames.append(_json(message.content))
    return frames + list(message.buffers)


def split_routing(frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    """(routing ids, the rest) of a message received on a ROUTER; no delimiter -> all ids, nothing else."""
    for i, frame in enumerate(frames):
        if frame == DELIMITER:
            return frames[:i], frames[i + 1 :]
    return frames[:1], []


MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays/objects a JSON frame may have (the protocol needs 3). Checked on the raw
bytes before parsing, so a frame nested 100,000 deep is refused without any recursion."""

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(frame: bytes, limit: int = MAX_JSON_DEPTH) -> int:
    """Nesting depth of the JSON in ``frame``, counting only up to ``limit + 1`` (then it stops: deeper
    is refused anyway). Strings are cut out first (C speed), then only the brackets are walked."""
    brackets = _STRING.sub(b"", frame).translate(None, _NOT_BRACKET)
    depth = deepest = 0
    for c in brackets:
        if c in b"[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    break
        else:
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed (JSON has no NaN or Infinity)")


def loads(frame: bytes, what: str) -> Any:
    """Strict JSON of one frame: UTF-8, no NaN/Infinity, nested at most ``MAX_JSON_DEPTH`` deep.
    ``ProtocolError`` (bad_request) names the frame and the problem."""
    if json_depth(frame) > MAX_JSON_DEPTH:
        raise ProtocolError("bad_request", f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(frame.decode("utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError("bad_request", f"{what} frame is not valid UTF-8 JSON: {exc}") from None
    except RecursionError:  # a backstop: the depth scan should have refused it already
        raise ProtocolError("bad_request", f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None


def _obj(frame: bytes, what: str) -> dict[str, Any]:
    value = loads(frame, what)
    if not isinstance(value, dict):
        raise ProtocolError("bad_request", f"{what} frame must be a JSON object")
    return value


def unpack(body: list[bytes]) -> WireMessage:
    """Parse the frames after the delimiter. Raises ``ProtocolError``; ``partial_header`` recovers what
    it can so the error reply can still name the request."""
    if len(body) < 4:
        raise ProtocolError("bad_request", f"a message needs header, parent_header, metadata and content after "
                                           f"{DELIMITER!r} (got {len(body)} frames)")
    header = _obj(body[0], "header")
    for key in ("msg_id", "msg_type"):
        if not isinstance(header.get(key), str) or not header[key]:
            raise ProtocolError("bad_request", f"header.{key} must be a non-empty string")
    return WireMessage(
        header=header,
        parent_header=_obj(body[1], "parent_header"),
        metadata=_obj(body[2], "metadata"),
        content=_obj(body[3], "content"),
        buffers=tuple(body[4:]),
    )


def partial_header(body: list[bytes]) -> dict[str, Any]:
    """The request header if it parses strictly (for error replies), else ``{}``: a header that
    ``loads`` refuses is never echoed back (a NaN in it made the reply itself unencodable)."""
    try:
        header = loads(body[0], "header") if body else {}
    except ProtocolError:
        return {}
    return header if isinstance(header, dict) else {}
