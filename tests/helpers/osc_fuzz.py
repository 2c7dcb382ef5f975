"""Seeded generators of malformed OSC request datagrams (issue 8): the handler fuzz test and the attack
bench (bench/daemon_attack.py) share them. Arguments are encoded by hand, so any type tag and value can be sent."""

from __future__ import annotations

import random
import struct
from typing import Any

from bridge.protocol import osc_wire
from bridge.protocol import schema as protocol

TYPES = sorted(protocol.REQUESTS) + ["dance", "", "hello_reply"]
FIELDS = sorted({f.name for m in protocol.REQUESTS.values() for f in m.fields} | {"reply_port", "reply_host"})


class Nil:
    """OSC nil (type tag N)."""


class Blob(bytes):
    """OSC blob (type tag b)."""


class Double(float):
    """OSC double (type tag d)."""


def _pad(raw: bytes) -> bytes:
    return raw + b"\0" * (-len(raw) % 4)


def _string(text: str) -> bytes:
    return _pad(text.encode("utf-8", "surrogatepass") + b"\0")


def _arg(value: Any) -> tuple[str, bytes]:
    """(type tags, body) of one argument, encoded by hand so that any type and value can be sent."""
    if isinstance(value, Nil):
        return "N", b""
    if isinstance(value, bool):
        return ("T" if value else "F"), b""
    if isinstance(value, int):
        if -(2**31) <= value < 2**31:
            return "i", struct.pack(">i", value)
        return "h", struct.pack(">q", max(-(2**63), min(2**63 - 1, value)))
    if isinstance(value, Double):
        return "d", struct.pack(">d", value)
    if isinstance(value, float):
        return "f", struct.pack(">f", value)
    if isinstance(value, Blob):
        return "b", struct.pack(">i", len(value)) + _pad(bytes(value))
    if isinstance(value, list):
        tags, body = "[", b""
        for item in value:
            t, b = _arg(item)
            tags, body = tags + t, body + b
        return tags + "]", body
    if isinstance(value, tuple):  # ("m" | "r" | "t", bytes)
        return value[0], value[1]
    return "s", _string(str(value))


def message(address: str, args: list[Any]) -> bytes:
    tags, body = ",", b""
    for a in args:
        t, b = _arg(a)
        tags, body = tags + t, body + b
    return _string(address) + _string(tags) + body


def _key(rng: random.Random) -> Any:
    choice = rng.random()
    if choice < 0.45:
        return rng.choice(FIELDS)
    if choice < 0.55:  # deep dotted keys, lists of objects, odd separators
        return ".".join(
            rng.choice(["a", "0", "project", "stems", "7", "#"]) for _ in range(rng.randint(2, 3000))
        )
    if choice < 0.75:
        return rng.choice(
            [
                "project.",
                "project.sample_rate",
                "project.tempo_map",
                "project.tempo_map.0",
                "stems.0.path",
                "stems.1.buffer",
                "stems.99999.path",
                "stems.0",
                "stems.#",
                ".",
                "..",
                "a..b",
                "region.path",
                "region.path.x",
                "output.container",
                "seeds.0",
                "0",
                "",
                "project.0",
                "region",
                "codes.buffer",
                "stems.0.path.0",
                "seeds.1.x",
            ]
        )
    return _value(rng)


def _value(rng: random.Random, depth: int = 0) -> Any:
    choice = rng.randrange(16)
    if choice == 0:
        return Nil()
    if choice == 1:
        return rng.choice([True, False])
    if choice == 2:
        return rng.choice([0, 1, -1, 2**31 - 1, -(2**31), 65535, 65536, 5573, 2**40, -(2**62)])
    if choice == 3:
        return rng.choice([0.0, -0.0, 1e-30, 1e30, 1.5, float("nan"), float("inf"), -float("inf")])
    if choice == 4:
        return Double(rng.choice([1e300, float("nan"), -float("inf"), 3.0, 1e6]))
    if choice == 5:
        return Blob(rng.randbytes(rng.randint(0, 24)))
    if choice == 6 and depth < 3:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if choice == 7:
        return rng.choice([("m", rng.randbytes(4)), ("r", rng.randbytes(4)), ("t", rng.randbytes(8))])
    if choice == 8:
        return rng.choice(
            [
                "generate",
                "continue",
                "tiny",
                "wav",
                "own",
                "all",
                "1.0",
                "9.9",
                "/etc/passwd",
                "/tmp/x.wav",
                "127.0.0.1",
                "::1",
                "localhost",
                "0.0.0.0",
                "\x00",
            ]
        )
    if choice == 9:
        return "x" * rng.choice([0, 1, 64, 300, 1100])
    return rng.randint(-5, 70000) if choice < 13 else "".join(chr(rng.randint(1, 0x2FF)) for _ in range(8))


VALID: dict[str, list[Any]] = {  # a valid request of each type, which the fuzz then spoils
    "hello": ["protocol_version", protocol.PROTOCOL_VERSION, "client", "fuzz"],
    "status": ["job_id", "0123456789abcdef"],
    "cancel": ["job_id", "0123456789abcdef"],
    "submit": ["kind", "generate", "model", "tiny", "length_s", 0.5],
    "list_jobs": [],
    "events_since": ["job_id", "0123456789abcdef"],
}


def datagram(rng: random.Random) -> bytes:
    """One malformed (or occasionally valid) request datagram."""
    kind = rng.random()
    address = rng.choice([f"/segue/{t}" for t in TYPES] + ["/", "/segue", "/segue/a/b", "segue", "/other"])
    args: list[Any] = []
    if rng.random() < 0.9:
        args.append(rng.choice(["r1", 7, Nil(), 1.5, Blob(b"id"), True, [1, 2], "", -1, 2**40]))
    if rng.random() < 0.5:  # start from a valid request, so the spoilt part is what gets checked
        name = rng.choice(sorted(VALID))
        address, args = f"/segue/{name}", ["r1", *VALID[name]]
    for _ in range(rng.randint(0, 10)):
        args.append(_key(rng))
        if rng.random() < 0.93:
            args.append(_value(rng))
    data = message(address, args)
    if kind < 0.1:  # raw damage: truncate or flip a byte
        cut = rng.randint(0, len(data))
        data = (
            data[:cut] if rng.random() < 0.5 else data[:cut] + bytes([rng.randrange(256)]) + data[cut + 1 :]
        )
    elif kind < 0.15:  # a bundle of several such messages
        inner = [message(address, args) for _ in range(rng.randint(0, 3))]
        data = b"#bundle\0" + b"\0" * 7 + b"\1" + b"".join(struct.pack(">i", len(m)) + m for m in inner)
    return data


def expects_answer(data: bytes) -> bool:
    """False for what the front end ignores on purpose: /segue/reply and /segue/event sent to it, and a
    bundle made only of those."""
    try:
        messages = osc_wire.parse_packet(data)
    except protocol.ProtocolError:
        return True
    return not messages or any(m.address not in (osc_wire.REPLY, osc_wire.EVENT) for m in messages)
