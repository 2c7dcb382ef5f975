"""The schema validator and the two wire encodings."""

from __future__ import annotations

import re

import pytest
from pythonosc.osc_message import OscMessage

from bridge.protocol import osc_wire
from bridge.protocol import schema as protocol
from bridge.protocol.schema import OSC_MAX_MESSAGE, ProtocolError, validate_request
from bridge.protocol.zmq_wire import WireMessage, new_header, pack, split_routing, unpack


def test_seeds_are_checked_per_value_at_the_protocol_layer() -> None:
    base = {"kind": "generate", "model": "m", "length_s": 4}
    lo, hi = -(1 << 63), (1 << 63) - 1
    assert validate_request("submit", {**base, "seeds": [lo, hi]})["seeds"] == [lo, hi]
    for seed in (hi + 1, lo - 1):
        with pytest.raises(ProtocolError, match=rf"seeds\[0\] = {seed} is outside {lo}..{hi}"):
            validate_request("submit", {**base, "seeds": [seed]})
    (field,) = [f for f in protocol.REQUESTS["submit"].fields if f.name == "seeds"]
    assert field.limit == f"len ≤ 16; each {lo}..{hi}"  # so the generated docs show the range


def test_temperatures_are_checked_per_value_at_the_protocol_layer() -> None:
    from model.sampling.params import MAX_TEMPERATURE, MIN_TEMPERATURE

    base = {"kind": "generate", "model": "m", "length_s": 4}
    assert validate_request("submit", {**base, "temperatures": [0.01, 10]})["temperatures"] == [0.01, 10]
    for t in (1e-30, 0.0, 10.5):
        with pytest.raises(ProtocolError, match=rf"temperatures\[1\] = {t} is outside 0\.01\.\.10"):
            validate_request("submit", {**base, "temperatures": [0.99, t]})
    (field,) = [f for f in protocol.REQUESTS["submit"].fields if f.name == "temperatures"]
    assert (field.each_min, field.each_max) == (MIN_TEMPERATURE, MAX_TEMPERATURE)  # the sampler's own range


@pytest.mark.parametrize(
    ("msg_type", "content", "where", "char", "at"),
    [
        ("submit", {"artist": "a\x00b"}, "artist", "0000", 1),
        ("submit", {"genre": "jazz\x7f"}, "genre", "007F", 4),
        ("submit", {"genre": "jazz\n"}, "genre", "000A", 4),  # line breaks only in lyrics
        ("submit", {"lyrics": "la\nla\x1b[2J"}, "lyrics", "001B", 5),
        ("submit", {"region": {"path": "/a\x00.wav"}}, "region.path", "0000", 2),
        ("submit", {"stems": [{"path": "/a.wav", "label": "dr\tums"}]}, "stems[0].label", "0009", 2),
        ("submit", {"project": {"sample_rate": 48000}, "output": {"container": "wav\r"}}, "output.container", "000D", 3),
        ("hello", {"protocol_version": "1.3", "client": "\x01me"}, "client", "0001", 0),
        ("status", {"job_id": "j\x00"}, "job_id", "0000", 1),
    ],
)
def test_control_characters_are_refused_in_every_string(
    msg_type: str, content: dict, where: str, char: str, at: int
) -> None:
    base = {"kind": "generate", "model": "m", "length_s": 4} if msg_type == "submit" else {}
    with pytest.raises(ProtocolError, match=rf"^{re.escape(where)} contains control character U\+{char} at position {at} ") as err:
        validate_request(msg_type, {**base, **content})
    assert err.value.code == "bad_request"


def test_lyrics_may_hold_line_breaks_and_tabs() -> None:
    lyrics = "verse one\r\n\tand two\nél café"
    content = {"kind": "generate", "model": "m", "length_s": 4, "artist": "Édith Piaf", "lyrics": lyrics}
    assert validate_request("submit", content)["lyrics"] == lyrics


def test_defaults_are_filled_and_types_coerced() -> None:
    c = validate_request("submit", {"kind": "generate", "model": "m", "length_s": 4, "seeds": 7})
    assert c["length_s"] == 4.0 and isinstance(c["length_s"], float)
    assert c["seeds"] == [7] and c["candidates"] == 1 and c["stems"] == []
    c = validate_request("fetch_result", {"job_id": "j", "inline": 1})
    assert c["inline"] is True


@pytest.mark.parametrize(
    ("msg_type", "content", "code"),
    [
        ("nope", {}, "unknown_type"),
        ("status", [], "bad_request"),
        ("status", {"job_id": 3}, "bad_request"),
        ("status", {"job_id": "x" * 65}, "too_large"),
        ("submit", {"kind": "generate", "model": "m", "candidates": 17}, "too_large"),
        ("submit", {"kind": "generate", "model": "m", "candidates": True}, "bad_request"),
        ("submit", {"kind": "generate", "model": "m", "length_s": float("nan")}, "bad_request"),
        ("submit", {"kind": "generate", "model": "m", "lyrics": "l" * 5000}, "too_large"),
        ("submit", {"kind": "generate", "model": "m", "project": {"sample_rate": 100}}, "bad_request"),
        ("submit", {"kind": "generate", "model": "m", "project": {"color": 1}}, "bad_request"),
        ("submit", {"kind": "c", "model": "m", "region": {"path": "/a", "buffer": 0}}, "bad_request"),
        ("submit", {"kind": "c", "model": "m", "region": {"buffer": 1}}, "bad_request"),
    ],
)
def test_bad_requests(msg_type: str, content: object, code: str) -> None:
    with pytest.raises(ProtocolError) as err:
        validate_request(msg_type, content, buffers=1)
    assert err.value.code == code


def test_every_request_has_a_handler_and_every_code_is_documented() -> None:
    from bridge.dispatcher import _HANDLERS

    assert set(_HANDLERS) == set(protocol.REQUESTS)
    assert protocol.version_compatible("1.7") and not protocol.version_compatible("2.0")
    assert not protocol.version_compatible("x")


def test_zmq_frames_round_trip() -> None:
    msg = WireMessage(new_header("status", "s"), {}, {"job_id": "j"}, buffers=(b"\x00\x01",))
    ids, body = split_routing(pack(msg, [b"peer"]))
    assert ids == [b"peer"] and unpack(body) == msg


def test_osc_request_keys_build_nested_content() -> None:
    dgram = osc_wire.request_datagram("submit", "r1", {
        "kind": "continue", "project": {"sample_rate": 48000, "tempo_map": [0.0, 90.0]},
        "seeds": [1, 2], "stems": [{"path": "/a.wav", "label": "drums"}], "region": {"path": "/r.wav"},
    })
    req_id, msg_type, content = osc_wire.request_from(OscMessage(dgram))
    assert (req_id, msg_type) == ("r1", "submit")
    assert content["project"] == {"sample_rate": 48000, "tempo_map": [0.0, 90.0]}
    assert content["seeds"] == [1, 2] and content["stems"] == [{"path": "/a.wav", "label": "drums"}]


def test_osc_replies_split_under_the_limit_and_merge_back() -> None:
    content = {"jobs": [{"id": f"job{i}", "results": [{"path": "/p" * 100, "seed": i}], "eta_s": None}
                        for i in range(20)]}
    datagrams = osc_wire.reply_datagrams("r", "list_jobs", "ok", content)
    assert len(datagrams) > 3 and max(len(d) for d in datagrams) <= OSC_MAX_MESSAGE
    pairs = []
    for d in datagrams:
        args = OscMessage(d).params
        pairs += list(zip(args[5::2], args[6::2]))
    merged = osc_wire.unflatten(pairs)
    assert merged == {"jobs": [{"id": j["id"], "results": j["results"]} for j in content["jobs"]]}


def test_a_huge_value_is_shortened_not_sent_oversize() -> None:
    datagrams = osc_wire.reply_datagrams("r", "status", "error", {"code": "internal", "message": "x" * 5000})
    assert all(len(d) <= OSC_MAX_MESSAGE for d in datagrams)
    pairs = [p for d in datagrams for p in zip(OscMessage(d).params[5::2], OscMessage(d).params[6::2])]
    message = osc_wire.unflatten(pairs)["message"]
    assert 1000 < len(message) < 1400 and message.endswith("…")


def test_osc_size_model_is_exact() -> None:
    import random

    rng = random.Random(0)
    choices = [1, 2**40, 1.5, 1e9, "x" * 7, "é" * 3, "", True, False]
    for _ in range(200):
        args = [rng.choice(choices) for _ in range(rng.randint(0, 20))]
        assert len(osc_wire._build("/segue/reply", args, [])) == osc_wire._size("/segue/reply", args)


def test_defaults_are_fresh_per_request() -> None:
    base = {"kind": "generate", "model": "m", "length_s": 4, "project": {}}
    first = validate_request("submit", base)
    for name in ("stems", "seeds", "temperatures", "guidance"):
        first[name].append(1)
    first["project"]["tempo_map"].append(99.0)
    first["project"]["time_signature"][0] = 7
    again = validate_request("submit", base)
    assert (again["stems"], again["seeds"], again["temperatures"], again["guidance"]) == ([], [], [], [])
    assert again["project"]["tempo_map"] == [0.0, 120.0] and again["project"]["time_signature"] == [4, 4]


def test_a_mutable_default_is_refused_when_the_schema_is_built() -> None:
    with pytest.raises(TypeError, match="schema field .tags.: default \\[\\] is mutable"):
        protocol.Field("tags", "list[str]", default=[])
