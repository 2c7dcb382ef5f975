"""Requests in, replies out: the one place that knows what each request type does.

The dispatcher knows nothing of sockets. A front end decodes a message into a ``Request``, calls
``Dispatcher.handle`` (from its own thread; every engine call is non-blocking), and encodes the
``Reply``. Handlers are registered with ``@handler("type")``; every failure becomes an error reply with
a stable code (``protocol.ERROR_CODES``), never an exception out of ``handle``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from bridge import roles
from bridge.config import BridgeConfig
from bridge.jobs import (
    AudioInput,
    JobInfo,
    JobKind,
    JobSpec,
    Length,
    OutputFormat,
    ProjectContext,
    TempoChange,
)
from bridge.protocol import schema as protocol
from bridge.protocol.schema import ProtocolError
from bridge.security import Guard, TooLarge
from common.errors import SegueError

log = logging.getLogger("segue.bridge")
MAX_PEERS = 4096  # client names remembered (oldest forgotten first)


@dataclass(frozen=True)
class Request:
    msg_type: str
    content: Any
    buffers: tuple[bytes, ...] = ()
    peer: str = ""  # a stable key for the connection: ZeroMQ session or OSC "host:port"
    transport: str = "zmq"  # "zmq" | "osc"
    control: bool = False  # arrived on the control socket
    events_to: str = ""  # where this client's job events go, in the front end's terms (default: peer)
    role: str = roles.OWNER  # owner | collaborator (bridge/roles.py); the front end decides
    principal: str = ""  # who sent it: a CURVE key's name, "osc:<host>"; a collaborator's jobs carry it as client

    @property
    def owner(self) -> str:
        """The engine's ``owner`` key for jobs this request submits: ``<transport>:<events_to or peer>``."""
        return f"{self.transport}:{self.events_to or self.peer}"


@dataclass(frozen=True)
class Reply:
    msg_type: str  # "<request>_reply"
    status: str  # "ok" | "error"
    content: dict[str, Any]
    buffers: tuple[bytes, ...] = ()
    shutdown: bool = False  # the front end should stop the daemon after sending this

    @classmethod
    def error(cls, msg_type: str, code: str, message: str) -> Reply:
        return cls(f"{msg_type}_reply", "error", {"code": code, "message": message[:1000]})


Handler = Callable[["Dispatcher", Request, dict[str, Any]], Reply]
_HANDLERS: dict[str, Handler] = {}


def handler(name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        if name not in protocol.REQUESTS:
            raise AssertionError(f"handler for {name!r} which the protocol does not define")
        _HANDLERS[name] = fn
        return fn

    return register


def daemon_version() -> str:
    try:
        return metadata.version("segue")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _plain(x: Any) -> Any:
    if hasattr(x, "to_dict"):
        return x.to_dict()
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


class Dispatcher:
    """Runs requests against the job ``engine`` (see ``bridge.engine.JobEngine``)."""

    def __init__(self, engine: Any, config: BridgeConfig, on_shutdown: Callable[[], None] | None = None) -> None:
        self.engine = engine
        self.config = config
        store = getattr(engine, "store", None)  # the daemon's own results may be inputs (prime -> upsample)
        self.guard = Guard(config, None if store is None else store.renders)
        self.on_shutdown = on_shutdown
        self._names: OrderedDict[str, str] = OrderedDict()  # peer -> client name from hello (newest last)
        self._lock = threading.Lock()

    def client_name(self, peer: str) -> str:
        with self._lock:
            return self._names.get(peer, peer)

    def handle(self, request: Request) -> Reply:
        name = request.msg_type[:64] if isinstance(request.msg_type, str) and request.msg_type else "unknown"
        try:
            content = protocol.validate_request(name, request.content, len(request.buffers))
            if request.control and not protocol.REQUESTS[name].control:
                raise ProtocolError("not_allowed", f"'{name}' is not served on the control socket")
            roles.check(self, request, name, content)
            return _HANDLERS[name](self, request, content)
        except ProtocolError as exc:
            return Reply.error(name, exc.code, exc.message)
        except SegueError as exc:
            code = exc.code if exc.code in protocol.ERROR_CODES else "bad_input"
            return Reply.error(name, code, str(exc))
        except Exception as exc:  # a bug: answer, log, keep serving
            log.exception("internal error handling %s", name)
            return Reply.error(name, "internal", f"internal error in {name}: {type(exc).__name__}: {exc}")

    # --- building a JobSpec from a validated submit -------------------------------------------------
    def _file(self, value: dict[str, Any] | None, request: Request, what: str) -> AudioInput | None:
        if value is None:
            return None
        fmt, label, start = value.get("format"), value.get("label"), value.get("start_s")
        if "path" in value:
            path = self.guard.input_path(value["path"])
            return AudioInput(path=str(path), format=fmt or path.suffix.lstrip(".") or None, label=label,
                              start_s=start)  # fmt: skip
        data = self.guard.buffer(request.buffers[value["buffer"]], what)
        return AudioInput(data=data, format=fmt, label=label, start_s=start)

    def job_spec(self, request: Request, c: dict[str, Any]) -> JobSpec:
        if ("length_s" in c) == ("length_bars" in c):
            raise ProtocolError("bad_request", "submit needs exactly one of 'length_s' or 'length_bars'")
        try:
            kind = JobKind(c["kind"])
        except ValueError:
            raise ProtocolError("bad_request", f"kind {c['kind']!r} is not one of {', '.join(k.value for k in JobKind)}") from None
        p = c.get("project", {})
        tempo = p.get("tempo_map", [0.0, 120.0])
        if len(tempo) % 2 or not tempo:
            raise ProtocolError("bad_request", "project.tempo_map must hold pairs: time_s, bpm, ...")
        signature = p.get("time_signature", [4, 4])
        if len(signature) != 2:
            raise ProtocolError("bad_request", "project.time_signature must be [numerator, denominator]")
        project = ProjectContext(
            sample_rate=p.get("sample_rate", 44100),
            bit_depth=p.get("bit_depth", 24),
            region_start_s=p.get("region_start_s", 0.0),
            region_end_s=p.get("region_end_s"),
            tempo_map=tuple(TempoChange(tempo[i], tempo[i + 1]) for i in range(0, len(tempo), 2)),
            time_signature=(signature[0], signature[1]),
        )
        o = c.get("output", {})
        output = OutputFormat(o.get("sample_rate"), o.get("bit_depth"), o.get("container", "wav"))
        spec = JobSpec(
            kind=kind,
            model=c["model"],
            length=Length(seconds=c.get("length_s"), bars=c.get("length_bars")),
            project=project,
            region=self._file(c.get("region"), request, "region"),
            codes=self._file(c.get("codes"), request, "codes"),
            artist=c["artist"],
            genre=c["genre"],
            lyrics=c["lyrics"],
            midi=self._file(c.get("midi"), request, "midi"),
            stems=tuple(f for i, s in enumerate(c["stems"]) if (f := self._file(s, request, f"stems[{i}]"))),
            midi_start_s=c.get("midi_start_s"),
            midi_start_bar=c.get("midi_start_bar"),
            midi_start_beat=c.get("midi_start_beat"),
            condition_guidance=tuple(c["condition_guidance"]),
            order_by=c["order_by"],
            candidates=c["candidates"],
            seeds=tuple(c["seeds"]),
            temperatures=tuple(c["temperatures"]),
            guidance=tuple(c["guidance"]),
            output=output,
            priority=c["priority"],
            client=self.client_name(request.peer) if request.role == roles.OWNER else request.principal,
        )
        self.guard.job(spec)
        return spec

    def models(self) -> list[dict[str, Any]]:
        return [_plain(m) if not isinstance(m, str) else {"name": m} for m in self.engine.models()]


def _ok(request: Request, content: dict[str, Any], buffers: tuple[bytes, ...] = (), shutdown: bool = False) -> Reply:
    return Reply(f"{request.msg_type}_reply", "ok", content, buffers, shutdown)


def _job(info: JobInfo) -> dict[str, Any]:
    return {"job": info.to_dict()}


@handler("hello")
def _hello(d: Dispatcher, r: Request, c: dict[str, Any]) -> Reply:
    if not protocol.version_compatible(c["protocol_version"]):
        raise ProtocolError(
            "version_mismatch",
            f"client speaks protocol {c['protocol_version']!r}, the daemon speaks {protocol.PROTOCOL_VERSION} "
            "(major versions must match)",
        )
    if c["events"] not in ("own", "all"):
        raise ProtocolError("bad_request", f"hello.events must be 'own' or 'all' (got {c['events']!r})")
    if c.get("client"):
        with d._lock:
            d._names.pop(r.peer, None)
            d._names[r.peer] = c["client"]
            while len(d._names) > MAX_PEERS:
                d._names.popitem(last=False)
    caps = [*(k.value for k in JobKind), "preview", "cancel", "resubmit", "length_bars", "events_since"]
    if r.transport == "zmq":
        caps += ["audio_frames", "curve" if d.config.keys_dir else "loopback"]
    limits = {
        "max_seconds": d.config.max_seconds,
        "max_candidates": d.config.max_candidates,
        "max_input_bytes": d.config.max_input_bytes,
        "max_message_bytes": d.config.max_message_bytes if r.transport == "zmq" else protocol.OSC_MAX_MESSAGE,
    }
    return _ok(r, {
        "protocol_version": protocol.PROTOCOL_VERSION,
        "daemon_version": daemon_version(),
        "capabilities": caps,
        "models": d.models(),
        "limits": limits,
    })


@handler("list_models")
def _list_models(d: Dispatcher, r: Request, c: dict[str, Any]) -> Reply:
    return _ok(r, {"models": d.models()})


@handler("load_model")
def _load_model(d: Dispatcher, r: Request, c: dict[str, Any]) -> Reply:
    return _ok(r, {"model": _plain(d.engine.load_model(c["model"]))})


@handler("unload_model")
def _unload_model(d: Dispatcher, r: Request, c: dict[str, Any]) -> Reply:
    return _ok(r, {"model": _plain(d.engine.unload_model(c["model"]))})


@handler("submit")
def _submit(d: Dispatcher, r: Request, c: dict[str, Any]) -> Reply:
    # the engine reads each path once more, through the checked opener, into its own copy (TOCTOU)
    return _ok(r, _job(d.engine.submit(d.job_spec(r, c), owner=r.owner, open_input=d.guard.open_input)))


@handler("status")
def _status(d: Dispatcher, r: Request, c: dict[str, Any]) -> Reply:
    return _ok(r, _job(d.engine.status(c["job_id"])))


@handler("cancel")
def _cancel(d: Dispatcher, r: Request, c: dict[str, Any]) -> Reply:
    return _ok(r, _job(d.engine.cancel(c["job_id"])))


@handler("list_jobs")
def _list_jobs(d: Dispatcher, r: Request, c: dict[str, Any]) -> Reply:
    jobs = [j for j in d.engine.list_jobs(c.get("client")) if roles.visible(d, r, j.client)]
    return _ok(r, {"jobs": [j.to_dict() for j in jobs]})


@handler("fetch_result")
def _fetch_result(d: Dispatcher, r: Request, c: dict[str, Any]) -> Reply:
    found = d.engine.result(c["job_id"])
    info = found if isinstance(found, JobInfo) else d.engine.status(c["job_id"])
    results = info.results if isinstance(found, JobInfo) else tuple(found)
    buffers: tuple[bytes, ...] = ()
    if c["inline"]:
        if r.transport != "zmq":
            raise ProtocolError("not_allowed", "inline results travel only over ZeroMQ; read the paths instead")
        total = sum(Path(res.path).stat().st_size for res in results)
        if total > d.config.max_message_bytes:
            raise TooLarge(f"results total {total} bytes, over the message limit {d.config.max_message_bytes}")
        buffers = tuple(Path(res.path).read_bytes() for res in results)
    return _ok(r, {**_job(info), "results": [res.to_dict() for res in results]}, buffers)


@handler("events_since")
def _events_since(d: Dispatcher, r: Request, c: dict[str, Any]) -> Reply:
    page = d.engine.events_since(c["job_id"], c["after"], c["limit"])
    events = [e.to_dict() for e in page.events]
    return _ok(r, {"job_id": c["job_id"], "events": events, "next_after": page.next_after, "more": page.more})


@handler("resubmit")
def _resubmit(d: Dispatcher, r: Request, c: dict[str, Any]) -> Reply:
    return _ok(r, _job(d.engine.resubmit(c["job_id"], owner=r.owner, open_input=d.guard.open_input)))


@handler("shutdown")
def _shutdown(d: Dispatcher, r: Request, c: dict[str, Any]) -> Reply:
    if d.on_shutdown is not None:
        d.on_shutdown()
    return _ok(r, {}, shutdown=True)


__all__ = ["Dispatcher", "Reply", "Request", "daemon_version", "handler"]
