"""Paged OSC listings and a reply-byte budget, so the OSC front end is no amplifier for spoofed UDP.

A 28-byte ``list_jobs`` datagram used to draw every job (84 KB of replies, 3,016x its size): answered to
a forged source address, that is a reflection attack on whoever owns the address. Two rules:

- Listings are paged. ``list_jobs`` and ``list_models`` take the OSC-only arguments ``offset`` (default 0)
  and ``limit`` (1..``MAX_LIMIT``); the reply carries ``total`` (items in the whole listing) and, when more
  follow, ``next`` (the ``offset`` to ask for next). Loopback senders get the whole listing by default
  (still split into datagrams of ``OSC_MAX_MESSAGE`` bytes); other senders ``REMOTE_LIMIT`` items.
- Replies to a non-loopback sender total at most ``budget(request) = max(BUDGET_MIN, BUDGET_FACTOR x the
  request datagram's bytes)`` per datagram received (a bundle shares one budget). A paged listing that
  would exceed it is cut to the items that fit (``next`` says where to go on); so are hello's ``models``
  (``total``/``next`` as in ``list_models``) and ``events_since``'s ``events`` (``more`` true,
  ``next_after`` the last seq sent). Any other reply that does not fit is replaced by a short
  ``too_large`` error; once the budget is spent, one such error answers the rest of a bundle.

Loopback senders cannot be spoofed from outside the host, so they have no byte budget.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from bridge.dispatcher import Reply
from bridge.protocol import osc_wire
from bridge.protocol.schema import ProtocolError

BUDGET_MIN = 2048
BUDGET_FACTOR = 4
REMOTE_LIMIT = 20
MAX_LIMIT = 1000

PAGED: dict[str, str] = {"list_jobs": "jobs", "list_models": "models"}
"""Request types that take ``offset``/``limit`` over OSC -> the key of their listing in the reply."""

TRIMMED: dict[str, str] = {**PAGED, "hello": "models", "events_since": "events"}
"""Replies whose listing is cut to fit a budget -> the key of that listing."""


def budget(request_bytes: int) -> int:
    """Reply bytes a non-loopback sender may draw with a datagram of ``request_bytes``."""
    return max(BUDGET_MIN, BUDGET_FACTOR * request_bytes)


@dataclass
class Budget:
    """What is left of one datagram's reply budget (``None``: loopback, unbounded)."""

    left: int | None
    spent: bool = False  # a reply was refused for want of budget

    def fits(self, datagrams: list[bytes]) -> bool:
        return self.left is None or sum(len(d) for d in datagrams) <= self.left

    def charge(self, datagrams: list[bytes]) -> None:
        if self.left is not None:
            self.left = max(0, self.left - sum(len(d) for d in datagrams))


@dataclass(frozen=True)
class Page:
    offset: int
    limit: int | None  # None: to the end


def page_args(msg_type: str, content: dict[str, Any], loopback: bool) -> Page | None:
    """Pop the OSC-only ``offset``/``limit`` of a paged request from ``content`` (``None`` for other
    types, whose content keeps them for the schema to refuse); ``ProtocolError`` names a bad value."""
    if msg_type not in PAGED:
        return None
    offset, limit = content.pop("offset", 0), content.pop("limit", None)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ProtocolError("bad_request", f"{msg_type}.offset must be an integer >= 0 (got {offset!r})")
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT
    ):
        raise ProtocolError(
            "bad_request", f"{msg_type}.limit must be an integer in 1..{MAX_LIMIT} (got {limit!r})"
        )
    if limit is None and not loopback:
        limit = REMOTE_LIMIT
    return Page(offset, limit)


def paged(reply: Reply, msg_type: str, page: Page) -> Reply:
    """``reply`` with its listing cut to ``page``, plus ``total`` and (when more follow) ``next``."""
    key = PAGED[msg_type]
    items = reply.content.get(key)
    if reply.status != "ok" or not isinstance(items, list):
        return reply
    end = len(items) if page.limit is None else min(len(items), page.offset + page.limit)
    return _with(reply, key, items[page.offset : end], page.offset, len(items))


def _with(reply: Reply, key: str, items: list[Any], offset: int, total: int) -> Reply:
    content = {**reply.content, key: items, "total": total}
    content.pop("next", None)
    if offset + len(items) < total:
        content["next"] = offset + len(items)
    return replace(reply, content=content)


def fit(req_id: str | int, msg_type: str, reply: Reply, offset: int, spend: Budget) -> list[bytes]:
    """The datagrams of ``reply``, cut to what ``spend`` has left (see the module docstring); charged."""
    datagrams = osc_wire.reply_datagrams(req_id, msg_type, reply.status, reply.content)
    key = TRIMMED.get(msg_type)
    items = reply.content.get(key) if key else None
    if not spend.fits(datagrams) and reply.status == "ok" and key is not None and isinstance(items, list):
        lo, hi = 0, len(items)  # the most items that fit: binary search over the prefix length
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if spend.fits(_encode(req_id, msg_type, reply, key, items, mid, offset)):
                lo = mid
            else:
                hi = mid - 1
        if lo:  # not even one item: no empty page (a client would ask for the same offset forever)
            datagrams = _encode(req_id, msg_type, reply, key, items, lo, offset)
    if not spend.fits(datagrams):
        spend.spent = True
        left = spend.left
        datagrams = osc_wire.reply_datagrams(
            req_id,
            msg_type,
            "error",
            Reply.error(
                msg_type,
                "too_large",
                f"the reply would exceed the {left} bytes left of this datagram's reply budget "
                f"for a non-loopback OSC sender (max({BUDGET_MIN}, {BUDGET_FACTOR} x the request's bytes)); page with "
                "offset/limit, or ask over ZeroMQ",
            ).content,
        )
    spend.charge(datagrams)
    return datagrams


def _encode(
    req_id: str | int, msg_type: str, reply: Reply, key: str, items: list[Any], n: int, offset: int
) -> list[bytes]:
    """Datagrams of ``reply`` with only the first ``n`` of its ``items`` (under ``key``)."""
    if msg_type == "events_since":
        content = {**reply.content, key: items[:n]}
        if n < len(items):
            content["more"] = True
            content["next_after"] = items[n - 1]["seq"]
    else:
        total = reply.content.get("total", len(items)) if msg_type in PAGED else len(items)
        content = _with(replace(reply, content=reply.content), key, items[:n], offset, total).content
    return osc_wire.reply_datagrams(req_id, msg_type, reply.status, content)
