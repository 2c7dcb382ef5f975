"""OSC encoding of the protocol (bytes in, values out), built on python-osc's parser and builder.

Requests: ``/segue/<type> req_id key value key value ...``; ``req_id`` is a string or int the client
picks. Nested fields use dotted keys (``project.sample_rate``), list items repeat their key
(``seeds 1 seeds 2``) or use indices (``stems.0.path``).

Replies: ``/segue/reply req_id type status part parts key value ...`` and events
``/segue/event seq job_id type part parts key value ...``. Outgoing content is flattened the same way,
with every list written as ``key.# n`` followed by ``key.0 ...``; a message that would exceed
``OSC_MAX_MESSAGE`` bytes is split into ``parts`` messages (``part`` counts from 0) the client merges.
``None`` values are left out; floats of magnitude ≥ 1e6 (timestamps) travel as doubles.
"""

from __future__ import annotations

import re
from typing import Any

from pythonosc.osc_message import OscMessage
from pythonosc.osc_message_builder import OscMessageBuilder
from pythonosc.osc_packet import OscPacket

from bridge.protocol.schema import OSC_MAX_MESSAGE, ProtocolError

PREFIX = "/segue/"
REPLY = "/segue/reply"
EVENT = "/segue/event"
_INDEX = re.compile(r"^(0|[1-9][0-9]{0,3})$")
MAX_KEY_PARTS = 8
"""Most dotted parts in one request key (the protocol needs 3: ``stems.0.path``). Checked before the key
is walked, so a key of 5,000 parts is refused with a message instead of exhausting the recursion."""


def parse_packet(data: bytes) -> list[OscMessage]:
    """The messages in a datagram (bundles flattened); ``ProtocolError`` if it is not OSC."""
    try:
        packet = OscPacket(data)
    except Exception as exc:  # python-osc raises ParseError, but odd bytes can raise others
        raise ProtocolError("bad_request", f"not an OSC packet: {exc}") from None
    return [timed.message for timed in packet.messages]


MAX_REQ_ID = 64
"""Longest string request id: every reply datagram repeats it, so it must stay small."""


def is_request_id(value: Any) -> bool:
    """True if ``value`` can be echoed as a request id: an int, or a string of at most ``MAX_REQ_ID``."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, str) and len(value) <= MAX_REQ_ID)


def request_from(message: OscMessage) -> tuple[str | int, str, dict[str, Any]]:
    """(req_id, msg_type, content) of a request message; ``ProtocolError`` names the problem."""
    args = list(message.params)
    req_id: str | int = ""
    if args and isinstance(args[0], (str, int)) and not isinstance(args[0], bool):
        req_id = args.pop(0)
    else:
        raise ProtocolError("bad_request", "the first argument must be a request id (string or int)")
    if not is_request_id(req_id):
        raise ProtocolError("bad_request", f"the request id must be an int or a string of at most {MAX_REQ_ID} "
                                           "characters (every reply repeats it)")
    address = message.address
    if not address.startswith(PREFIX) or "/" in address[len(PREFIX):]:
        raise ProtocolError("unknown_type", f"address {address[:64]!r} is not /segue/<request>")
    if len(args) % 2:
        raise ProtocolError("bad_request", "after the request id, arguments must come as key value pairs")
    content: dict[str, Any] = {}
    for key, value in zip(args[0::2], args[1::2]):
        if not isinstance(key, str) or not key:
            raise ProtocolError("bad_request", f"key {_short(key)} must be a non-empty string")
        parts = key.split(".")
        if len(parts) > MAX_KEY_PARTS:
            raise ProtocolError("bad_request", f"key {_short(key)} has {len(parts)} dotted parts; at most "
                                               f"{MAX_KEY_PARTS} are allowed")
        if "" in parts:
            raise ProtocolError("bad_request", f"key {_short(key)} has an empty part (two dots, or a dot at an end)")
        _put(content, parts, value, key)
    return req_id, address[len(PREFIX):], content


def _short(key: Any) -> str:
    """``key`` for an error message: its repr, cut to 80 characters."""
    text = repr(key)
    return text if len(text) <= 80 else text[:77] + "..."


def _put(node: Any, path: list[str], value: Any, key: str) -> None:
    head, rest = path[0], path[1:]
    if isinstance(node, list):
        if not _INDEX.match(head):
            raise ProtocolError("bad_request", f"key {_short(key)}: {head[:20]!r} must be a list index")
        i = int(head)
        if i > len(node):  # no gaps: "stems.9999.path" must not build a list of 10,000 items
            raise ProtocolError("bad_request", f"key {_short(key)}: index {i} skips ahead; list items come in "
                                               f"order from 0 (next is {len(node)})")
        if i == len(node):
            node.append({} if rest else None)
        if rest:
            if not isinstance(node[i], dict):
                raise ProtocolError("bad_request", f"key {_short(key)} mixes values and objects")
            _put(node[i], rest, value, key)
        else:
            node[i] = value
        return
    if not rest:
        if head in node:  # a repeated key builds a list
            node[head] = node[head] + [value] if isinstance(node[head], list) else [node[head], value]
        else:
            node[head] = value
        return
    child = node.setdefault(head, [] if _INDEX.match(rest[0]) else {})
    if not isinstance(child, (dict, list)):
        raise ProtocolError("bad_request", f"key {_short(key)} mixes values and objects")
    _put(child, rest, value, key)


def flatten(content: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Reply/event form of ``content``: nested keys dotted, every list as ``name.#`` count + indexed items."""
    return _pairs(content, prefix, counted=True)


def _pairs(content: dict[str, Any], prefix: str, counted: bool) -> list[tuple[str, Any]]:
    """Dotted (key, value) pairs of ``content``; ``counted`` picks the reply form of lists (``name.#`` and
    ``name.i``) over the request form (scalar items as repeated ``name`` keys). Object items are indexed."""
    pairs: list[tuple[str, Any]] = []
    for key, value in content.items():
        name = f"{prefix}{key}"
        if value is None:
            continue
        if isinstance(value, dict):
            pairs += _pairs(value, f"{name}.", counted)
        elif isinstance(value, (list, tuple)):
            if counted:
                pairs.append((f"{name}.#", len(value)))
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    pairs += _pairs(item, f"{name}.{i}.", counted)
                else:
                    pairs.append((f"{name}.{i}" if counted else name, item))
        else:
            pairs.append((name, value))
    return pairs


def unflatten(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Inverse of ``flatten`` (client side)."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        parts = key.split(".")
        if parts[-1] == "#":
            node = out
            for p in parts[:-2]:
                node = node.setdefault(p, {}) if isinstance(node, dict) else _item(node, p)
            holder = node if isinstance(node, dict) else None
            if holder is not None:
                holder.setdefault(parts[-2], [None] * int(value))
            else:
                _item(node, parts[-2])
            continue
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {}) if isinstance(node, dict) else _item(node, p)
        if isinstance(node, list):
            i = int(parts[-1])
            while len(node) <= i:
                node.append(None)
            node[i] = value
        else:
            node[parts[-1]] = value
    return out


def _item(node: list[Any], index: str) -> Any:
    i = int(index)
    while len(node) <= i:
        node.append(None)
    if node[i] is None:
        node[i] = {}
    return node[i]


def _add(builder: OscMessageBuilder, value: Any) -> None:
    if isinstance(value, bool):
        builder.add_arg(value)
    elif isinstance(value, int):
        builder.add_arg(value, "i" if -(2**31) <= value < 2**31 else "h")
    elif isinstance(value, float):
        builder.add_arg(value, "d" if abs(value) >= 1e6 else "f")
    else:
        builder.add_arg(str(value), "s")


def _build(address: str, head: list[Any], pairs: list[tuple[str, Any]]) -> bytes:
    b = OscMessageBuilder(address=address)
    for value in head:
        _add(b, value)
    for key, value in pairs:
        _add(b, key)
        _add(b, value)
    return b.build().dgram


def _pad4(n: int) -> int:
    return (n + 3) & ~3


def _arg_size(value: Any) -> int:
    """Bytes ``value`` takes in a message body, as ``_add`` encodes it."""
    if isinstance(value, bool):
        return 0  # T / F live in the type tags only
    if isinstance(value, int):
        return 4 if -(2**31) <= value < 2**31 else 8
    if isinstance(value, float):
        return 8 if abs(value) >= 1e6 else 4
    return _pad4(len(str(value).encode("utf-8")) + 1)


def _size(address: str, args: list[Any]) -> int:
    return _pad4(len(address.encode("utf-8")) + 1) + _pad4(len(args) + 2) + sum(_arg_size(a) for a in args)


def encode(address: str, head: list[Any], content: dict[str, Any], limit: int = OSC_MAX_MESSAGE) -> list[bytes]:
    """Datagrams of at most ``limit`` bytes: ``head + [part, parts]`` then key/value pairs."""
    head_args = head + [0, 0]
    chunks: list[list[tuple[str, Any]]] = [[]]
    args = list(head_args)
    for key, value in flatten(content):
        if _size(address, head_args + [key, value]) > limit:  # one value alone is too big: shorten the text
            value = str(value)
            while value and _size(address, head_args + [key, value + "…"]) > limit:
                value = value[: max(0, len(value) - max(8, len(value) // 8))]
            value += "…"
        if _size(address, args + [key, value]) > limit and chunks[-1]:
            chunks.append([])
            args = list(head_args)
        chunks[-1].append((key, value))
        args += [key, value]
    return [_build(address, head + [i, len(chunks)], chunk) for i, chunk in enumerate(chunks)]


def reply_datagrams(req_id: str | int, msg_type: str, status: str, content: dict[str, Any]) -> list[bytes]:
    return encode(REPLY, [req_id, msg_type, status], content)


def event_datagrams(event: dict[str, Any]) -> list[bytes]:
    head = [int(event.get("seq", 0)), str(event.get("job_id", "")), str(event.get("type", ""))]
    body = {"time": event.get("time"), **(event.get("data") or {})}
    return encode(EVENT, head, body)


def request_pairs(content: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Request form of ``content``: nested keys dotted, scalar lists as repeated keys, object lists indexed."""
    return _pairs(content, prefix, counted=False)


def request_datagram(msg_type: str, req_id: str | int, content: dict[str, Any]) -> bytes:
    """A client's request (no size limit beyond UDP's: requests are small and go to loopback)."""
    return _build(f"{PREFIX}{msg_type}", [req_id], request_pairs(content))
