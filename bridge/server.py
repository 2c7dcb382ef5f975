"""``Server(config, engine)``: start the front ends, run until told to stop, shut down gracefully.

Life cycle (as in uvicorn's Server): ``startup()`` binds ZeroMQ and OSC and subscribes them to the
engine's events (each event goes to both with the job's ``owner``: the front end that knows that client
sends it there); ``run()`` starts up, installs SIGINT/SIGTERM handlers (main thread only) and waits
until a signal, a ``shutdown`` request or ``request_stop()``; then ``shutdown()`` stops the engine
(waiting jobs become ``interrupted``, the running one is cancelled) while the front ends still run, so
clients see those events, and finally closes the sockets. ``shutdown`` never takes much longer than
``config.shutdown_timeout_s``; a second signal during shutdown exits at once, and so does ``run``
when a shutdown is still not done ``WATCHDOG_GRACE_S`` past that budget (whatever a peer or a backend
does, the process ends: finished results and the journal are already on disk).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

from bridge.config import BridgeConfig
from bridge.dispatcher import Dispatcher
from bridge.jobs import JobEvent
from bridge.transports.osc import OscFrontEnd
from bridge.transports.zmq import ZmqFrontEnd

log = logging.getLogger("segue.bridge")

WATCHDOG_GRACE_S = 5.0


class Server:
    def __init__(self, config: BridgeConfig, engine: Any) -> None:
        self.config = config
        self.engine = engine
        self.dispatcher = Dispatcher(engine, config, on_shutdown=self.request_stop)
        self.zmq: ZmqFrontEnd | None = ZmqFrontEnd(config, self.dispatcher) if config.enable_zmq else None
        self.osc: OscFrontEnd | None = OscFrontEnd(config, self.dispatcher) if config.enable_osc else None
        self._stop = threading.Event()
        self._started = False
        self._closed = False
        self._unsubscribe: Any = None
        self._signals = 0
        self.watchdog_grace_s = WATCHDOG_GRACE_S
        self._hard_exit: Callable[[int], Any] = os._exit  # replaced in tests

    @property
    def addresses(self) -> dict[str, str]:
        """Where the daemon listens, with the ports actually bound."""
        out: dict[str, str] = {}
        if self.zmq is not None:
            out.update({f"zmq_{k}": v for k, v in self.zmq.addresses.items()})
        if self.osc is not None and self.osc.address is not None:
            out["osc"] = f"udp://{self.osc.address[0]}:{self.osc.address[1]}"
        return out

    def startup(self) -> None:
        if self._started:
            return
        try:
            if self.zmq is not None:
                self.zmq.start()
            if self.osc is not None:
                self.osc.start()
        except Exception:
            self._close_front_ends()
            raise
        self._unsubscribe = self.engine.subscribe(self._broadcast)
        self._started = True
        log.info("segue daemon listening: %s", self.addresses)

    def _broadcast(self, event: JobEvent) -> None:
        owner = self.engine.owner(event.job_id)  # the client that submitted the job, as its front end named it
        for front in (self.zmq, self.osc):
            if front is not None:
                try:
                    front.publish(event, owner)
                except Exception:  # one broken front end must not starve the other
                    log.exception("publishing event %s failed", event.seq)

    def request_stop(self) -> None:
        """Ask ``run`` to shut down; safe from any thread (used by the ``shutdown`` request)."""
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stop.wait(timeout)

    def run(self, ready: Callable[[Server], None] | None = None) -> None:
        """Install SIGINT/SIGTERM handlers (main thread only), start up, call ``ready``, wait, shut down."""
        in_main = threading.current_thread() is threading.main_thread()
        previous = {}
        if in_main:
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._on_signal)
        try:
            self.startup()
            if ready is not None:
                ready(self)
            while not self._stop.wait(0.2):
                pass
        finally:
            watchdog = self._watchdog(self.config.shutdown_timeout_s + self.watchdog_grace_s)
            try:
                self.shutdown()
            finally:
                watchdog.cancel()
            for sig, old in previous.items():
                signal.signal(sig, old)

    def _watchdog(self, seconds: float) -> threading.Timer:
        def expire() -> None:
            log.error("shutdown did not finish within %.1f s; exiting without a clean shutdown "
                      "(finished results and the journal are on disk)", seconds)
            self._hard_exit(1)

        timer = threading.Timer(seconds, expire)
        timer.daemon = True
        timer.start()
        return timer

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        del frame
        self._signals += 1
        if self._signals > 1:
            log.warning("second signal: exiting without a clean shutdown")
            os._exit(130)
        log.info("signal %s: shutting down (within %.0f s)", signum, self.config.shutdown_timeout_s)
        self._stop.set()

    def shutdown(self, timeout: float | None = None) -> None:
        """Stop the engine, let its last events out, close the sockets. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._stop.set()
        budget = self.config.shutdown_timeout_s if timeout is None else timeout
        deadline = time.monotonic() + budget
        try:
            self.engine.shutdown(max(0.5, budget - 1.0))
        except Exception:
            log.exception("engine shutdown failed")
        time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))  # let the last events reach the sockets
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._close_front_ends(max(0.5, deadline - time.monotonic()))

    def _close_front_ends(self, timeout: float = 2.0) -> None:
        for front in (self.osc, self.zmq):
            if front is not None:
                front.stop(timeout / 2)

    def __enter__(self) -> Server:
        self.startup()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
