"""Daemon front-end configuration: one frozen dataclass, read from a TOML file at the edge.

A config file has a ``[bridge]`` table with the fields of ``BridgeConfig``; other tables (``[engine]``)
belong to other components and are passed through untouched (``load_config_file`` returns them).
Port 0 asks the OS for a free port (tests); ``Server.addresses`` reports the ports actually bound.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import ConfigError

MiB = 1 << 20


@dataclass(frozen=True)
class BridgeConfig:
    host: str = "127.0.0.1"  # ZeroMQ bind address; anything else needs CURVE keys (keys_dir)
    request_port: int = 5570
    control_port: int = 5571
    events_port: int = 5572
    osc_host: str = "127.0.0.1"
    osc_port: int = 5573
    osc_allowed_sources: tuple[str, ...] = ()  # required when osc_host is not loopback
    enable_zmq: bool = True
    enable_osc: bool = True
    roots: tuple[str, ...] = ()  # input files must resolve inside one of these directories
    keys_dir: str | None = None  # CURVE: server keypair + authorised client public keys
    local_owner: bool = True  # loopback clients are the owner (false on a machine whose users do not trust each other)
    share_jobs: bool = False  # collaborators see and cancel every job, not only their own (bridge/roles.py)
    max_message_bytes: int = 256 * MiB  # one ZeroMQ message, all frames (also zmq.MAXMSGSIZE per frame)
    max_input_bytes: int = 128 * MiB  # one input file (path or buffer)
    allow_hard_links: bool = False  # input files with several hard links are refused (one may be outside the roots)
    max_job_input_bytes: int = 0  # all input files of one job together (region, codes, MIDI, stems); 0: 4 x max_input_bytes
    max_seconds: float = 600.0  # longest generation a job may ask for
    max_candidates: int = 8
    max_osc_clients: int = 64  # registered OSC reply addresses
    heartbeat_ivl_ms: int = 1000
    heartbeat_timeout_ms: int = 3000
    shutdown_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        for name in ("request_port", "control_port", "events_port", "osc_port"):
            port = getattr(self, name)
            if not 0 <= port <= 65535:
                raise ConfigError(f"bridge.{name} = {port} is outside 0..65535")
        if not is_loopback(self.host) and not self.keys_dir:
            raise ConfigError(
                f"bridge.host = {self.host!r} is not loopback: remote ZeroMQ needs CURVE keys (set bridge.keys_dir)"
            )
        if not is_loopback(self.osc_host) and not self.osc_allowed_sources:
            raise ConfigError(
                f"bridge.osc_host = {self.osc_host!r} is not loopback: list the allowed senders in "
                "bridge.osc_allowed_sources"
            )
        for source in self.osc_allowed_sources:
            try:
                ipaddress.ip_address(source)
            except ValueError:
                raise ConfigError(f"bridge.osc_allowed_sources: {source!r} is not an IP address") from None
        if self.max_candidates < 1 or self.max_seconds <= 0:
            raise ConfigError("bridge.max_candidates must be >= 1 and bridge.max_seconds > 0")
        if self.max_input_bytes > self.max_message_bytes:
            raise ConfigError("bridge.max_input_bytes must not exceed bridge.max_message_bytes")
        if self.max_job_input_bytes and self.max_job_input_bytes < self.max_input_bytes:
            raise ConfigError("bridge.max_job_input_bytes must be 0 (4 x max_input_bytes) or at least bridge.max_input_bytes")

    @property
    def job_input_limit(self) -> int:
        """Bytes all input files of one job may hold together."""
        return self.max_job_input_bytes or 4 * self.max_input_bytes

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BridgeConfig:
        names = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - set(names))
        if unknown:
            raise ConfigError(f"[bridge]: unknown option(s) {unknown}; known: {sorted(names)}")
        for key, value in d.items():
            _check_type(key, value, names[key].default)
        values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _check_type(key: str, value: Any, default: Any) -> None:
    """A TOML value of the wrong type (``request_port = "5570"``) is a one-line error, not a TypeError later."""
    if isinstance(default, bool):
        ok, want = isinstance(value, bool), "true or false"
    elif isinstance(default, int):
        ok, want = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(default, float):
        ok, want = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(default, tuple):
        ok, want = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value), "a list of strings"
    else:  # str, or str | None (keys_dir)
        ok, want = isinstance(value, str) or (default is None and value is None), "a string"
    if not ok:
        raise ConfigError(f"[bridge] {key} = {value!r} must be {want}")


def plain_host(host: str) -> str:
    """``host`` in one canonical spelling for comparisons: an IPv4-mapped IPv6 address (how a dual-stack
    "::" socket reports IPv4 senders, e.g. ``::ffff:127.0.0.1``) as its IPv4 address, any other IP address
    in its compressed form; names and scoped addresses as they are."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses of either family, IPv4-mapped ones included."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(plain_host(host)).is_loopback
    except ValueError:
        return False


def load_config_file(path: str | Path) -> tuple[BridgeConfig, dict[str, Any]]:
    """Read a TOML file: the ``[bridge]`` table as a ``BridgeConfig`` and every table as a dict."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {p} does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    bridge = data.get("bridge", {})
    if not isinstance(bridge, dict):
        raise ConfigError(f"config file {p}: [bridge] must be a table")
    return BridgeConfig.from_dict(bridge), data
