"""Event delivery for the job engine: numbering, journaling and fan-out on one thread of its own.

``emit`` numbers an event (``seq`` +1 across the daemon) and queues it; it never blocks on I/O or on
subscribers. The hub thread takes queued events in batches, appends them to the journal in one
transaction, and only then calls the subscribers, so every event a client has seen is stored (and
``seq`` never repeats after a restart: it continues from the journal's last number). A subscriber
that raises is logged and skipped; a slow one delays only other subscribers, never the worker.

The thread also calls ``on_tick`` every ``tick_s`` seconds (the engine re-sends progress from it).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from bridge.jobs import EventType, JobEvent
from bridge.state.journal import Journal

log = logging.getLogger(__name__)

Subscriber = Callable[[JobEvent], None]


class EventHub:
    def __init__(self, journal: Journal, *, tick_s: float, on_tick: Callable[[], None]) -> None:
        self._journal = journal
        self._tick_s = tick_s
        self._on_tick = on_tick
        self._queue: queue.SimpleQueue[JobEvent | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._seq = journal.last_seq()
        self._subscribers: dict[int, Subscriber] = {}
        self._next_id = 0
        self._pending = 0
        self._idle = threading.Condition(self._lock)
        self._thread = threading.Thread(target=self._run, name="segue-events", daemon=True)
        self._thread.start()

    def emit(self, job_id: str, kind: EventType, data: dict[str, Any] | None = None) -> JobEvent:
        with self._lock:
            self._seq += 1
            event = JobEvent(self._seq, job_id, kind, dict(data or {}), time.time())
            self._pending += 1
            self._queue.put(event)  # under the lock, so the queue is in seq order
        return event

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        with self._lock:
            key = self._next_id
            self._next_id += 1
            self._subscribers[key] = callback

        def unsubscribe() -> None:
            with self._lock:
                self._subscribers.pop(key, None)

        return unsubscribe

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every emitted event is journaled and delivered; ``False`` on timeout."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> None:
        self.flush(timeout)
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        next_tick = time.monotonic() + self._tick_s
        while True:
            try:
                first = self._queue.get(timeout=max(0.0, next_tick - time.monotonic()))
            except queue.Empty:
                first = _TICK
            if time.monotonic() >= next_tick:
                next_tick = time.monotonic() + self._tick_s
                self._safely(self._on_tick)
            if first is _TICK:
                continue
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < 256:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._deliver(batch)
            if stop:
                return

    def _deliver(self, batch: list[JobEvent]) -> None:
        try:
            self._journal.add_events(batch)
        except Exception:  # a full disk must not stop delivery; the jobs table still holds the state
            log.exception("could not journal %d events", len(batch))
        with self._lock:
            subscribers = list(self._subscribers.values())
        for event in batch:
            for callback in subscribers:
                self._safely(callback, event)
        with self._idle:
            self._pending -= len(batch)
            self._idle.notify_all()

    @staticmethod
    def _safely(fn: Callable[..., None], *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            log.exception("event subscriber or tick failed")


_TICK: Any = object()
