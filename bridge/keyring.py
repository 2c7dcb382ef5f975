"""The authorised CURVE client keys, read live from ``keys_dir/clients/*.key``.

A key issued (``segue keys issue``) or revoked (``segue keys revoke``, or the file deleted) while the
daemon runs takes effect within ``REFRESH_S`` without a restart: the ZAP handler asks the ring at every
handshake, and the ZeroMQ front end asks it again for every request, by the peer's CURVE public key
(ZeroMQ's ``User-Id``), so a peer that connected before its key was revoked is refused from then on.
The ring re-reads the folder when its modification time changes, and at least every ``REFRESH_S``.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

log = logging.getLogger(__name__)
REFRESH_S = 0.5


class KeyRing:
    """public key (z85 text) -> client name, for the keys in ``keys_dir/clients``. Thread-safe."""

    def __init__(self, keys_dir: str | Path) -> None:
        self.folder = Path(keys_dir) / "clients"
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}
        self._owners: frozenset[str] = frozenset()  # names marked in keys_dir/owners (segue keys issue --owner)
        self._stamp: int | None = None
        self._read_at = -1e9

    def name_of(self, public_key: str | bytes) -> str | None:
        """The client name of ``public_key`` (z85), or None when no authorised key file holds it."""
        key = public_key.decode("ascii", "replace") if isinstance(public_key, bytes) else public_key
        with self._lock:
            self._refresh()
            return self._names.get(key)

    def is_owner(self, name: str) -> bool:
        """Did the owner mark client ``name`` as an owner (``keys_dir/owners/NAME``)?"""
        with self._lock:
            self._refresh()
            return name in self._owners

    def callback(self, domain: str, key: bytes) -> bool:
        """The ZAP credentials provider's question: may this key connect?"""
        allowed = self.name_of(key) is not None
        if not allowed:
            log.info("CURVE handshake refused: key %s is not authorised (domain %r)", key[:8], domain)
        return allowed

    def _refresh(self) -> None:
        try:
            stamp = self.folder.stat().st_mtime_ns
        except OSError:
            stamp = None
        now = time.monotonic()
        if stamp == self._stamp and now - self._read_at < REFRESH_S:
            return
        names = {}
        for path in sorted(self.folder.glob("*.key")):
            try:
                public, _ = zmq.auth.load_certificate(path)
            except (OSError, ValueError) as exc:  # a damaged key file admits nobody; the rest still work
                log.warning("CURVE key file %s is unreadable and admits nobody: %s", path, exc)
                continue
            names[public.decode("ascii")] = path.stem
        owners = self.folder.parent / "owners"
        self._owners = frozenset(p.name for p in owners.iterdir()) if owners.is_dir() else frozenset()
        self._names, self._stamp, self._read_at = names, stamp, now


def revoke_client_key(keys_dir: str | Path, name: str) -> Path:
    """Withdraw client ``name``'s key: ``clients/NAME.key`` moves to ``revoked/NAME.key`` (kept for the record).
    ``ConfigError`` when no such client is authorised."""
    from common.errors import ConfigError

    d = Path(keys_dir)
    current = d / "clients" / f"{name}.key"
    if "/" in name or not current.is_file():
        known = sorted(p.stem for p in (d / "clients").glob("*.key"))
        raise ConfigError(f"no authorised client named {name!r} in {d / 'clients'}; authorised: {', '.join(known) or 'none'}")
    revoked = d / "revoked"
    revoked.mkdir(mode=0o700, exist_ok=True)
    target = revoked / f"{name}.key"
    current.replace(target)
    (d / "owners" / name).unlink(missing_ok=True)
    return target


def mark_owner(keys_dir: str | Path, name: str) -> Path:
    """Give client ``name`` the owner's rights (bridge/roles.py): an empty marker ``keys_dir/owners/NAME``."""
    from common.errors import ConfigError

    d = Path(keys_dir)
    if "/" in name or not (d / "clients" / f"{name}.key").is_file():
        raise ConfigError(f"no authorised client named {name!r} in {d / 'clients'}")
    owners = d / "owners"
    owners.mkdir(mode=0o700, exist_ok=True)
    marker = owners / name
    marker.touch()
    return marker


def start_authenticator(context: zmq.Context, ring: KeyRing) -> ThreadAuthenticator:
    """A ZAP handler that admits only CURVE clients whose public key is in ``ring`` at handshake time."""
    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve_callback(domain="*", credentials_provider=ring)
    return auth
