"""Keep a front end's loop alive: a loop that raises is logged and restarted after a back-off.

Every message is answered inside the loops (a bad one gets an error reply), so a loop that raises is a
bug; the process must not keep looking healthy with a dead front end. ``Supervisor.run`` is the target
of each front-end thread: it runs the loop until stop, and when it raises logs the traceback, marks the
loop down (``down``; the ZeroMQ control loop sends no heartbeat while any loop is down, so clients
notice), waits ``RESTART_DELAY_S`` (doubling up to ``RESTART_DELAY_MAX_S`` for a loop that keeps dying,
reset after it has run ``RESTART_RESET_S``) and starts it again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

RESTART_DELAY_S = 1.0
RESTART_DELAY_MAX_S = 30.0
RESTART_RESET_S = 60.0


class Supervisor:
    def __init__(self, stop: threading.Event, log: logging.Logger) -> None:
        self.stop = stop
        self.log = log
        self.down: set[str] = set()  # loops that died and wait for their restart
        self.restarts: dict[str, int] = {}  # loop name -> times it was restarted

    def run(self, name: str, loop: Callable[[], None]) -> None:
        """Run ``loop`` until ``stop`` is set, restarting it whenever it raises."""
        delay = RESTART_DELAY_S
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                loop()
                return
            except Exception:
                if time.monotonic() - started > RESTART_RESET_S:
                    delay = RESTART_DELAY_S
                self.down.add(name)
                self.restarts[name] = self.restarts.get(name, 0) + 1
                self.log.exception(
                    "front end %s died; restart %d in %.1f s (heartbeats pause until then)",
                    name,
                    self.restarts[name],
                    delay,
                )
            if self.stop.wait(delay):
                return
            delay = min(delay * 2, RESTART_DELAY_MAX_S)
            self.down.discard(name)
            self.log.warning("front end %s restarted", name)
