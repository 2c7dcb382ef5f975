"""What a client may touch: input paths inside allowed roots, size and length limits, CURVE keys.

Path rule: an input path must be absolute, contain no ``..`` component, resolve (symlinks followed)
to a regular file inside one of the configured roots or the daemon's own renders folder (both resolved; a
result, such as a prime job's codes file, can feed a later job), and not exceed the size limit.
Device files, FIFOs, sockets and directories are refused. The engine reads each path input once, at
submit, through ``Guard.open_input`` (no symlink followed, checks on the open descriptor, the size
limit on the bytes read) and keeps its own copy, so a file swapped or grown later is never read.
"""

from __future__ import annotations

import os
from pathlib import Path

import zmq
import zmq.auth

from bridge.config import BridgeConfig
from bridge.jobs import AudioInput, JobSpec
from bridge.safe_open import CheckedFile, TooLarge, open_checked
from bridge.safe_open import FileMissing as FileMissing  # re-exported: the errors callers catch
from bridge.safe_open import PathNotAllowed as PathNotAllowed
from common.errors import ConfigError


class Guard:
    """Applies the daemon's limits to requests; built once from ``BridgeConfig``."""

    def __init__(self, config: BridgeConfig, results: str | Path | None = None) -> None:
        """``results``: the render store's renders folder, whose files (the daemon's own results, e.g. a
        prime job's codes file) are allowed as inputs too, besides ``config.roots``."""
        self.config = config
        self.roots = tuple(Path(os.path.realpath(r)) for r in config.roots)
        if results is not None:
            self.roots += (Path(os.path.realpath(results)),)

    def input_path(self, path: str) -> Path:
        """The resolved path of an input file the client named, or a ``SegueError`` saying why not (a
        check at request time; the engine reads the file later through ``open_input``)."""
        with self.open_input(path) as checked:
            return checked.path

    def open_input(self, path: str) -> CheckedFile:
        """The input file ``path`` names, opened and checked on its descriptor (``bridge.safe_open``):
        what is read from it is what passed the checks, whatever is swapped on disk later."""
        return open_checked(path, self.roots, self.config.max_input_bytes, self.config.allow_hard_links)

    def buffer(self, data: bytes, what: str) -> bytes:
        if len(data) > self.config.max_input_bytes:
            raise TooLarge(f"{what} has {len(data)} bytes; the limit is {self.config.max_input_bytes}")
        return data

    def job(self, spec: JobSpec) -> None:
        seconds = spec.length_s
        if seconds > self.config.max_seconds:
            raise TooLarge(f"length {seconds:.1f} s exceeds this daemon's limit of {self.config.max_seconds:g} s")
        if spec.candidates > self.config.max_candidates:
            raise TooLarge(f"candidates = {spec.candidates} exceeds this daemon's limit of {self.config.max_candidates}")
        total = sum(_size(item) for item in (spec.region, spec.codes, spec.midi, *spec.stems) if item is not None)
        if total > self.config.job_input_limit:
            raise TooLarge(
                f"the job's input files hold {total} bytes together; this daemon's limit for one job is "
                f"{self.config.job_input_limit} (bridge.max_job_input_bytes)"
            )


def _size(item: AudioInput) -> int:
    """Bytes of an input as checked at submit (a path's current size; its copy stops at max_input_bytes)."""
    if item.data is not None:
        return len(item.data)
    try:
        return os.stat(item.path or "").st_size
    except OSError:
        return 0  # gone already: the copy at submit names that problem


# --- CURVE keys -------------------------------------------------------------------------------------
# keys_dir/server.key_secret, keys_dir/server.key: the daemon's keypair (made on first start);
# keys_dir/clients/NAME.key: public keys of authorised clients (the daemon reads only these);
# keys_dir/issued/NAME.key_secret: the client keypair handed to the collaborator with server.key.


def server_keys(keys_dir: str | Path) -> tuple[bytes, bytes]:
    """(public, secret) of the daemon, created on first use."""
    d = Path(keys_dir)
    secret_file = d / "server.key_secret"
    if not secret_file.exists():
        d.mkdir(parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        zmq.auth.create_certificates(d, "server")
        os.chmod(secret_file, 0o600)  # pyzmq writes secret keys world-readable (0644)
    public, secret = zmq.auth.load_certificate(secret_file)
    if secret is None:
        raise ConfigError(f"{secret_file} holds no secret key")
    return public, secret


def issue_client_keys(keys_dir: str | Path, name: str) -> tuple[Path, Path]:
    """Make a keypair for client ``name``; authorise its public key. Returns (client secret file, server
    public key file): give both to the collaborator."""
    if not name or not name.replace("-", "").replace("_", "").isalnum():
        raise ConfigError(f"client name {name!r} must be letters, digits, '-' or '_'")
    d = Path(keys_dir)
    server_keys(d)
    issued, clients = d / "issued", d / "clients"
    for sub in (issued, clients):
        sub.mkdir(parents=True, exist_ok=True)
        os.chmod(sub, 0o700)
    if (clients / f"{name}.key").exists():
        raise ConfigError(f"a client named {name!r} already has keys in {clients}")
    public_file, secret_file = zmq.auth.create_certificates(issued, name)
    os.chmod(secret_file, 0o600)  # it travels to the collaborator: a copy keeps owner-only permissions
    Path(public_file).replace(clients / f"{name}.key")
    return Path(secret_file), d / "server.key"


def make_curve_server(socket: zmq.Socket, keys_dir: str | Path) -> None:
    public, secret = server_keys(keys_dir)
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
