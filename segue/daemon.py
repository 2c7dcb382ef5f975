"""The daemon's composition root: settings from the config file's tables and flags, then the parts wired.

``segue serve`` is a thin command over this module:

    settings = daemon_settings(bridge, tables, overrides, backend=..., models=..., state_dir=...)
    with open_daemon(settings) as server:   # holds the state directory for as long as it runs
        server.run(ready=...)

``daemon_settings`` reads and checks everything before anything starts (a mistake is one
``ConfigError``); ``open_daemon`` builds the backend, journal, render store, job engine and server.
Nothing here imports torch: a model backend does that itself when it loads a model.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.config import BridgeConfig
from bridge.engine.config import EngineConfig
from common.errors import ConfigError

MODEL_BACKEND = "bridge.backend.models:from_config"  # the real backend, used when a models folder is given
DEFAULT_STATE_DIR = "~/.segue"


@dataclass(frozen=True)
class DaemonSettings:
    """Everything the daemon is built from. ``tables`` are the config file's tables (``[daemon] models``
    filled in from ``--models``), handed to the backend factory."""

    bridge: BridgeConfig
    engine: EngineConfig
    backend: str  # "module:function"
    state_dir: Path
    tables: Mapping[str, Any]


def daemon_settings(
    bridge: BridgeConfig,
    tables: Mapping[str, Any],
    overrides: Mapping[str, Any],
    *,
    backend: str | None = None,
    models: str | None = None,
    state_dir: str | None = None,
) -> DaemonSettings:
    """Merge the file's ``[bridge]`` (``bridge``), ``[engine]`` and ``[daemon]`` tables with the flags.

    ``overrides`` are ``BridgeConfig`` fields given on the command line; ``backend``, ``models`` and
    ``state_dir`` override ``[daemon] backend / models / state_dir``. Raises ``ConfigError`` naming the
    option for a missing input root, no backend, or an unknown ``[engine]`` option.
    """
    config = BridgeConfig.from_dict({**bridge.to_dict(), **overrides})
    for root in config.roots:  # a mistyped root would only show later, as every path being refused
        if not Path(root).expanduser().is_dir():
            raise ConfigError(f"input root {root} is not an existing folder (--root or [bridge] roots)")
    daemon = dict(tables.get("daemon", {}))
    if models:
        daemon["models"] = models
        tables = {**tables, "daemon": daemon}
    spec = backend or daemon.get("backend") or (MODEL_BACKEND if daemon.get("models") else None)
    if not spec:
        raise ConfigError("no model backend configured: pass --models DIR (or --backend module:function) or set "
                          "[daemon] models (or backend)")
    state = Path(state_dir or daemon.get("state_dir", DEFAULT_STATE_DIR)).expanduser()
    try:
        engine = EngineConfig(**tables.get("engine", {}))
    except TypeError as exc:
        names = [f.name for f in dataclasses.fields(EngineConfig)]
        raise ConfigError(f"[engine]: {exc}; known options: {names}") from None
    return DaemonSettings(config, engine, spec, state, dict(tables))


def load_backend(spec: str, tables: Mapping[str, Any]) -> Any:
    """Call the factory named ``module:function`` with the config file's tables."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"backend {spec!r} must look like 'package.module:function'")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"backend {spec!r} cannot be loaded: {exc}") from None
    return factory(dict(tables))


@contextmanager
def open_daemon(settings: DaemonSettings) -> Iterator[Any]:
    """Hold the state directory, then build backend, journal, render store, engine and ``Server``.

    The lock comes first: the engine's start-up recovery rewrites the journal and store. Yields the
    ``bridge.server.Server`` (not started; ``run`` binds and serves); the lock is released on exit.
    """
    from bridge.engine.engine import JobEngine
    from bridge.server import Server
    from bridge.state.journal import Journal
    from bridge.state.lock import hold_state_dir
    from bridge.state.store import RenderStore

    state = settings.state_dir
    with hold_state_dir(state):
        engine = JobEngine(load_backend(settings.backend, settings.tables), Journal(state / "journal.sqlite3"),
                           RenderStore(state / "store"), settings.engine)
        yield Server(settings.bridge, engine)
