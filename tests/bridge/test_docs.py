"""docs/protocol.md and bridge/protocol/schema.py agree; every error code the daemon can send is documented."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from bridge.jobs import EventType
from bridge.protocol import schema as protocol
from common.errors import SegueError

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def _schema_block() -> str:
    text = DOC.read_text(encoding="utf-8")
    match = re.search(r"<!-- schema:begin -->\n(.*)<!-- schema:end -->", text, re.S)
    assert match, "docs/protocol.md lost its schema markers"
    return match.group(1)


def test_doc_tables_are_exactly_the_schema() -> None:
    assert _schema_block() == protocol.markdown_tables(), "regenerate with: python -m bridge.protocol.schema"


def test_doc_names_every_type_field_limit_and_code() -> None:
    block = _schema_block()
    for name, msg in protocol.REQUESTS.items():
        assert f"#### `{name}`" in block
        for f in msg.fields:
            assert re.search(rf"\| `{f.name}` \| {re.escape(f.type)} \| .*\| {re.escape(f.limit)} \|", block), f.name
    for code in protocol.ERROR_CODES:
        assert f"| `{code}` |" in block
    assert f"Protocol version: `{protocol.PROTOCOL_VERSION}`" in block


def test_every_engine_event_is_in_the_schema() -> None:
    assert {e.value for e in EventType} <= set(protocol.EVENTS)


def _subclasses(cls: type) -> set[type]:
    out = set(cls.__subclasses__())
    for sub in list(out):
        out |= _subclasses(sub)
    return out


def test_every_segue_error_code_is_a_protocol_code() -> None:
    for module in ("bridge.jobs", "bridge.security", "bridge.engine.engine", "bridge.state.journal", "bridge.state.store", "bridge.state.recovery"):
        importlib.import_module(module)
    daemon_side = [c for c in _subclasses(SegueError)
                   if c.__module__ == "common.errors" or (c.__module__.startswith("bridge.") and ".cli" not in c.__module__)]
    codes = {c.code for c in daemon_side} - {"cancelled"}  # cancel is an event, never a reply
    assert codes <= set(protocol.ERROR_CODES), codes - set(protocol.ERROR_CODES)
