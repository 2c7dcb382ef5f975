"""Which subscriptions the ZeroMQ events socket takes.

The events socket is an XPUB in manual mode: libzmq hands every subscription to the front end and
applies none itself, so a peer cannot grow the daemon's subscription tree with arbitrary topics (a
burst of random subscriptions once cost the daemon 2.5 GB and its clean shutdown), and a collaborator
cannot subscribe to ``job.`` and read everyone's events. ``SubscriptionGate.check`` decides; the
topics it knows are those of ``bridge.protocol.zmq_wire``:

- ``daemon`` (heartbeats, daemon-wide events) and its non-empty prefixes: anyone;
- ``job.<id>``: a job that exists and that the subscriber may see (``bridge.roles``);
- ``session.<session>.`` and ``session.<session>.job.<id>``: the subscriber's own session. A session
  belongs to the principal that first subscribes to it or sends a request from it (``SessionBook``);
  at most ``new_sessions_per_minute`` sessions nobody has used yet are taken a minute;
- ``job.``, ``session.`` and the empty topic (every job, every session, everything): the owner only
  (a collaborator too for ``job.`` when the owner shares jobs).

Anything else (a topic no event can carry, longer than ``TOPIC_LIMIT`` bytes) is refused. A refused
subscription is logged and never applied: the subscriber simply receives nothing on it.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from bridge import roles
from bridge.protocol.zmq_wire import DAEMON_TOPIC

TOPIC_LIMIT = 96
_JOB = re.compile(rb"job\.([0-9a-f]{16})")
_SESSION = re.compile(rb"session\.([A-Za-z0-9_-]{1,64})\.(?:job\.([0-9a-f]{16}))?")
_WIDE = (b"", b"job.", b"session.")


class SessionBook:
    """Session id -> the principal it belongs to: the first to use it. Bounded: the least recently used
    sessions are forgotten past ``limit``."""

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()  # both ZeroMQ loops claim sessions

    def owner_of(self, session: str) -> str | None:
        with self._lock:
            return self._owners.get(session)

    def claim(self, session: str, principal: str) -> bool:
        """Record ``session`` as ``principal``'s; ``False`` if another principal uses it already."""
        with self._lock:
            owner = self._owners.get(session)
            if owner is not None and owner != principal:
                return False
            self._owners[session] = principal
            self._owners.move_to_end(session)
            while len(self._owners) > self.limit:
                self._owners.popitem(last=False)
            return True


class SubscriptionGate:
    """Decides each subscription of the events socket. ``job_client(job_id)``: the client (principal) that
    submitted the job, ``None`` if there is no such job."""

    def __init__(
        self,
        sessions: SessionBook,
        job_client: Callable[[str], str | None],
        share_jobs: bool = False,
        new_sessions_per_minute: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions, self.job_client, self.share_jobs = sessions, job_client, share_jobs
        self.rate, self.clock = new_sessions_per_minute, clock
        self._allowance, self._last = float(new_sessions_per_minute), clock()

    def check(self, topic: bytes, role: str, principal: str) -> str | None:
        """``None`` if ``role``/``principal`` may subscribe to ``topic``, else why not."""
        owner = role == roles.OWNER
        if len(topic) > TOPIC_LIMIT:
            return f"a topic of {len(topic)} bytes (events topics have at most {TOPIC_LIMIT})"
        if topic and DAEMON_TOPIC.startswith(topic):
            return None
        if topic in _WIDE:
            if owner or (topic == b"job." and self.share_jobs):
                return None
            return f"topic {topic!r} carries other clients' events; it is for the daemon's owner"
        job = _JOB.fullmatch(topic)
        if job is not None:
            return self._job(job.group(1).decode(), owner, principal)
        session = _SESSION.fullmatch(topic)
        if session is not None:
            return self._session(session.group(1).decode(), owner, principal)
        return f"{topic[:40]!r} is not an events topic (daemon, job.<id>, session.<session>.)"

    def _job(self, job_id: str, owner: bool, principal: str) -> str | None:
        client = self.job_client(job_id)
        if client is None or not (owner or self.share_jobs or client == principal):
            return f"no job with id {job_id!r}"
        return None

    def _session(self, session: str, owner: bool, principal: str) -> str | None:
        current = self.sessions.owner_of(session)
        if current is None:
            if not self._take_new_session():
                return f"more than {self.rate} new sessions a minute; try again later"
            self.sessions.claim(session, principal)
            return None
        if current != principal and not owner:
            return f"session {session!r} belongs to another client"
        return None

    def _take_new_session(self) -> bool:
        now = self.clock()
        self._allowance = min(float(self.rate), self._allowance + (now - self._last) * self.rate / 60.0)
        self._last = now
        if self._allowance < 1.0:
            return False
        self._allowance -= 1.0
        return True
