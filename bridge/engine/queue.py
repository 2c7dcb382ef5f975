"""Scheduling for the job engine: a priority queue that is fair across clients, and an ETA estimate.

Order: higher ``priority`` first. Within one priority, the client served least recently goes next
(a client never served yet counts as least recent; ties go to the older waiting job), and each
client's own jobs keep their submission order. So a client that floods the queue gets every other
turn at most, and a newcomer waits for at most one job of each client ahead of it.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass


@dataclass
class _Waiting:
    job_id: str
    client: str
    priority: int
    ticket: int  # arrival order


class FairQueue:
    """Not thread-safe: the engine holds its lock around every call."""

    def __init__(self) -> None:
        self._lanes: dict[int, dict[str, deque[_Waiting]]] = {}
        self._by_id: dict[str, _Waiting] = {}
        self._served: dict[str, int] = {}  # client -> turn number of its last start
        self._tickets = itertools.count()
        self._turns = itertools.count(1)

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, job_id: object) -> bool:
        return job_id in self._by_id

    def push(self, job_id: str, client: str, priority: int) -> None:
        item = _Waiting(job_id, client, priority, next(self._tickets))
        self._lanes.setdefault(priority, {}).setdefault(client, deque()).append(item)
        self._by_id[job_id] = item

    def remove(self, job_id: str) -> bool:
        item = self._by_id.pop(job_id, None)
        if item is None:
            return False
        lane = self._lanes[item.priority]
        lane[item.client].remove(item)
        self._prune(item.priority, item.client)
        return True

    def pop(self) -> str | None:
        """The next job to run, taken off the queue (``None`` if empty)."""
        pick = self._next(self._served)
        if pick is None:
            return None
        self._served[pick.client] = next(self._turns)
        self.remove(pick.job_id)
        return pick.job_id

    def order(self) -> list[str]:
        """Every waiting job in the order ``pop`` would return them."""
        served = dict(self._served)
        lanes = {p: {c: deque(q) for c, q in lane.items()} for p, lane in self._lanes.items()}
        out: list[str] = []
        turn = max(served.values(), default=0)
        while True:
            pick = _choose(lanes, served)
            if pick is None:
                return out
            out.append(pick.job_id)
            turn += 1
            served[pick.client] = turn
            queue = lanes[pick.priority][pick.client]
            queue.popleft()
            if not queue:
                del lanes[pick.priority][pick.client]
                if not lanes[pick.priority]:
                    del lanes[pick.priority]

    def _next(self, served: dict[str, int]) -> _Waiting | None:
        return _choose(self._lanes, served)

    def _prune(self, priority: int, client: str) -> None:
        lane = self._lanes[priority]
        if not lane[client]:
            del lane[client]
        if not lane:
            del self._lanes[priority]


def _choose(lanes: dict[int, dict[str, deque[_Waiting]]], served: dict[str, int]) -> _Waiting | None:
    if not lanes:
        return None
    lane = lanes[max(lanes)]
    heads = [queue[0] for queue in lane.values()]
    return min(heads, key=lambda item: (served.get(item.client, 0), item.ticket))


class Throughput:
    """Seconds of audio rendered per second of wall time, over the last ``window`` finished jobs."""

    def __init__(self, window: int = 8) -> None:
        self._samples: deque[tuple[float, float]] = deque(maxlen=window)  # (work, seconds)

    def record(self, work: float, seconds: float) -> None:
        if work > 0 and seconds > 0:
            self._samples.append((work, seconds))

    @property
    def rate(self) -> float | None:
        if not self._samples:
            return None
        work = sum(w for w, _ in self._samples)
        seconds = sum(s for _, s in self._samples)
        return work / seconds

    def seconds_for(self, work: float) -> float | None:
        rate = self.rate
        return None if rate is None else work / rate
