"""The daemon under attack on loopback (issue 8, "Measuring it"): fuzz, subscription flood, kills, load.

    python bench/daemon_attack.py [--osc N] [--zmq N] [--subscriptions N] [--kills K] [--clients C --jobs J]

Runs ``segue serve`` as a real process with the tone test backend (tests/bridge/tone_backend.py, so no
model time) in a temporary folder, on loopback only, and measures:

- **fuzz**: N seeded malformed OSC datagrams (tests/helpers/osc_fuzz.py) and N seeded malformed ZeroMQ
  messages per ROUTER socket (request, control): how many were answered, how many answers were
  ``internal`` errors (target 0), and whether every front end still answers afterwards;
- **subscriptions**: N random subscriptions sent to the events socket: the daemon's memory before and
  after, and that clients still get their events;
- **load**: C clients (ZeroMQ and OSC alternately) submitting J jobs each: jobs lost (target 0);
- **kills**: K rounds of ``kill -9`` at a random moment while jobs run, then a restart on the same state:
  finished results lost (target 0);
- **shutdown**: seconds from SIGTERM to exit after all of that (bounded by ``shutdown_timeout_s``).

Writes bench/results/daemon_attack.json and prints a Markdown table for docs/daemon.md. Every count is
bounded and every wait has a timeout, so a run ends even when the daemon misbehaves.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zmq

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bridge.protocol import osc_wire  # noqa: E402
from bridge.protocol.schema import PROTOCOL_VERSION  # noqa: E402
from bridge.protocol.zmq_wire import DELIMITER  # noqa: E402
from plugin_host.client import RemoteError, SegueClient  # noqa: E402
from tests.helpers import osc_fuzz  # noqa: E402

BACKEND = (
    "from tests.bridge.tone_backend import ToneBackend\n\n"
    "def make(tables):\n    return ToneBackend(token_s=0.002, tokens=(40, 20), load_s=0.05)\n"
)
JOB: dict[str, Any] = {"kind": "generate", "model": "tiny", "length_s": 0.2}


class Daemon:
    """``segue serve`` in a child process on ephemeral loopback ports."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        tmp.mkdir(parents=True, exist_ok=True)
        (tmp / "bench_backend.py").write_text(BACKEND)
        env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp}", "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "segue", "serve", "--backend", "bench_backend:make", "--state-dir",
               str(tmp / "state"), "--root", str(tmp), "--request-port", "0", "--control-port", "0",
               "--events-port", "0", "--osc-port", "0"]
        with open(tmp / "daemon.log", "a") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
        text, deadline = "", time.monotonic() + 60
        assert self.proc.stdout is not None
        while "Ctrl-C" not in text:
            line = self.proc.stdout.readline()
            if not line or time.monotonic() > deadline:
                raise RuntimeError(f"the daemon did not start; see {tmp / 'daemon.log'}")
            text += line
        self.addresses = dict(re.findall(r"^\s+(zmq_\w+|osc)\s+(\S+)$", text, re.M))

    @property
    def osc(self) -> tuple[str, int]:
        host, port = self.addresses["osc"].removeprefix("udp://").rsplit(":", 1)
        return host, int(port)

    def client(self, transport: str = "zmq", name: str = "bench") -> SegueClient:
        a = self.addresses
        if transport == "zmq":
            return SegueClient.over_zmq(a["zmq_request"], a["zmq_control"], a["zmq_events"], name=name, timeout=10)
        return SegueClient.over_osc(*self.osc, name=name, timeout=10)

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(status.split("VmRSS:")[1].split()[0]) / 1024

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30.0) -> float | None:
        """Seconds from SIGTERM to exit; ``None`` if it had not exited after ``timeout`` (then killed)."""
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        return round(time.monotonic() - t0, 2)


def _osc_replies(sock: socket.socket, wait_s: float) -> list[tuple[str, dict[str, Any]]]:
    """(status, content) of the replies that arrive within ``wait_s`` (their parts merged)."""
    replies: list[tuple[str, dict[str, Any]]] = []
    pairs: list[tuple[str, Any]] = []
    deadline = time.monotonic() + wait_s
    while (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        try:
            (message,) = osc_wire.parse_packet(data)
        except Exception:
            replies.append(("unreadable", {}))
            continue
        if message.address != osc_wire.REPLY:
            continue  # a job event of a valid submit the fuzz let through
        _, _, status, part, parts, *rest = message.params
        pairs = (pairs if part else []) + list(zip(rest[0::2], rest[1::2]))
        if part == parts - 1:
            replies.append((status, osc_wire.unflatten(pairs)))
            deadline = min(deadline, time.monotonic() + 0.005)  # a bundle may hold more: a short grace
    return replies


def fuzz_osc(daemon: Daemon, n: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    tried = expected = answered = internal = redirected = 0
    examples: list[str] = []
    unanswered: list[str] = []
    for _ in range(n):
        data = osc_fuzz.datagram(rng)
        if len(data) > 65000 or b"/segue/shutdown" in data:  # a valid shutdown from loopback is obeyed
            continue
        sock.sendto(data, daemon.osc)
        tried += 1
        wants = osc_fuzz.expects_answer(data)
        replies = _osc_replies(sock, 0.5 if wants else 0.02)
        expected += wants
        answered += bool(replies) and wants
        if wants and not replies:
            if _redirected(data):
                redirected += 1  # a valid reply_port sent the answer to another port, as the protocol says
            elif len(unanswered) < 5:
                unanswered.append(repr(data[:80]))
        for status, content in replies:
            if status != "ok" and content.get("code") in ("internal", None):
                internal += 1
                if len(examples) < 3:
                    examples.append(f"{data[:60]!r}: {content}")
    sock.close()
    return {"tried": tried, "expect_answer": expected, "answered": answered, "internal": internal,
            "redirected": redirected, "internal_examples": examples, "unanswered_examples": unanswered}


def _redirected(data: bytes) -> bool:
    """True when the datagram is one message whose ``reply_port`` names a valid port: its answer went there."""
    try:
        (message,) = osc_wire.parse_packet(data)
    except Exception:
        return False
    pairs = message.params[1:]
    return any(k == "reply_port" and type(v) is int and 0 < v < 65536 for k, v in zip(pairs[0::2], pairs[1::2]))


def _zmq_message(rng: random.Random) -> list[bytes]:
    """One malformed (sometimes valid) ZeroMQ request, frames after the routing ids."""
    depth = rng.choice([65, 1000, 100_000])
    deep = b"[" * depth + b"]" * depth
    header = rng.choice([
        json.dumps({"msg_id": "m", "msg_type": rng.choice(["status", "hello", "submit", "list_jobs", "x", ""]),
                    "session": "s", "version": rng.choice([PROTOCOL_VERSION, "9.0", 1])}).encode(),
        b'{"msg_id":"k","msg_type":"status","session":"s","x":NaN}', b"[]", b"null", b"{", deep,
        rng.randbytes(rng.randint(0, 40)), b'{"msg_type":' + b'"' + b"a" * 200 + b'"}',
    ])
    content = rng.choice([
        b"{}", b'{"job_id":"0123456789abcdef"}', b'{"job_id":' + b"[" * 5000 + b"}", b"Infinity",
        json.dumps({"kind": "generate", "model": "tiny", "length_s": rng.choice([0.1, -1, 1e308, "x"])}).encode(),
        rng.randbytes(rng.randint(0, 60)), b'{"a":' + deep + b"}",
    ])
    frames = [DELIMITER, header, b"{}", b"{}", content]
    shape = rng.random()
    if shape < 0.15:
        frames = frames[1:]  # no delimiter
    elif shape < 0.3:
        frames = frames[: rng.randint(1, 4)]  # too few frames
    elif shape < 0.4:
        frames = [rng.randbytes(rng.randint(0, 30)) for _ in range(rng.randint(1, 8))]
    elif shape < 0.5:
        frames += [rng.randbytes(rng.randint(0, 100)) for _ in range(rng.randint(1, 3))]  # buffers
    return frames


def fuzz_zmq(daemon: Daemon, which: str, n: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    ctx: zmq.Context = zmq.Context.instance()
    sock = ctx.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(daemon.addresses[f"zmq_{which}"])
    answered = internal = 0
    examples: list[str] = []
    for _ in range(n):
        frames = _zmq_message(rng)
        sock.send_multipart(frames)
        if not sock.poll(5000):
            continue
        reply = sock.recv_multipart()
        answered += 1
        try:
            content = json.loads(reply[reply.index(DELIMITER) + 4])
        except (ValueError, IndexError):
            internal += 1
            continue
        if content.get("status") != "ok" and content.get("code") in ("internal", None):
            internal += 1
            if len(examples) < 3:
                examples.append(f"{[f[:40] for f in frames]!r}: {content}")
    sock.close()
    return {"tried": n, "answered": answered, "internal": internal, "internal_examples": examples}


def flood_subscriptions(daemon: Daemon, n: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    before = daemon.rss_mb()
    ctx: zmq.Context = zmq.Context.instance()
    peers = []
    for i in range(max(1, n // 1000)):
        s = ctx.socket(zmq.XSUB)
        s.linger = 0
        s.connect(daemon.addresses["zmq_events"])
        for _ in range(min(1000, n - i * 1000)):
            s.send(b"\x01" + rng.randbytes(rng.randint(1, 150)))
        peers.append(s)
    time.sleep(3.0)
    after = daemon.rss_mb()
    for s in peers:
        s.close()
    return {"subscriptions": n, "peers": len(peers), "rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1)}


def alive(daemon: Daemon) -> dict[str, bool]:
    """Does each front end still serve: a job over ZeroMQ with its events, status and a job over OSC."""
    out = {}
    for transport in ("zmq", "osc"):
        try:
            with daemon.client(transport) as c:
                c.hello()
                job = c.submit(**JOB)["id"]
                out[transport] = c.wait_for(job, {"result_ready"}, timeout=20)["type"] == "result_ready"
        except Exception as exc:
            print(f"{transport} front end does not serve: {exc}", file=sys.stderr)
            out[transport] = False
    return out


def load(daemon: Daemon, clients: int, jobs: int) -> dict[str, Any]:
    """Every client submits ``jobs`` jobs; a ``busy`` answer (the queue is full) is counted and the submit
    retried after a short wait, as a well-behaved client does. Every accepted job must end ``done``."""
    results: dict[str, int] = {"submitted": 0, "done": 0, "busy_answers": 0, "errors": 0}
    lock = threading.Lock()

    def submit(c: SegueClient, i: int) -> str | None:
        for _ in range(2000):
            try:
                return str(c.submit(**JOB, priority=i % 3)["id"])
            except RemoteError as exc:
                if exc.code != "busy":
                    raise
                with lock:
                    results["busy_answers"] += 1
                time.sleep(0.1)
        return None

    def one(i: int) -> None:
        with daemon.client("zmq" if i % 2 == 0 else "osc", name=f"load{i}") as c:
            c.hello()
            try:
                ids = [job for _ in range(jobs) if (job := submit(c, i)) is not None]
            except Exception as exc:  # counted: the report shows it
                print(f"load{i}: {exc}", file=sys.stderr)
                with lock:
                    results["errors"] += 1
                return
            with lock:
                results["submitted"] += len(ids)
            deadline = time.monotonic() + 300
            pending = set(ids)
            while pending and time.monotonic() < deadline:
                for job in list(pending):
                    if c.status(job)["state"] == "done":
                        pending.discard(job)
                time.sleep(0.2)
            with lock:
                results["done"] += len(ids) - len(pending)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(clients)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(400)
    return {"clients": clients, "jobs_each": jobs, **results, "lost": results["submitted"] - results["done"],
            "seconds": round(time.monotonic() - t0, 1)}


def kills(tmp: Path, rounds: int, seed: int) -> dict[str, Any]:
    """Kill -9 at a random moment while a client keeps jobs coming; after each restart every job seen done
    before the kill must still be done with its files on disk."""
    rng = random.Random(seed)
    finished: set[str] = set()
    lost: list[str] = []
    for _ in range(rounds):
        daemon = Daemon(tmp)
        with daemon.client() as c:
            c.hello()
            for job in finished:  # after the restart: still there, done, files readable
                try:
                    info = c.status(job)
                    files = [r["path"] for r in info.get("results", [])]
                    if info["state"] != "done" or not files or not all(Path(f).is_file() for f in files):
                        lost.append(job)
                except Exception:
                    lost.append(job)
            stop_at = time.monotonic() + rng.uniform(0.3, 2.5)
            submitted = [c.submit(**JOB)["id"] for _ in range(3)]
            while time.monotonic() < stop_at:
                for job in submitted:
                    if job not in finished and c.status(job)["state"] == "done":
                        finished.add(job)
                if all(j in finished for j in submitted):
                    submitted = [c.submit(**JOB)["id"] for _ in range(3)]
                time.sleep(0.02)
        daemon.kill()
    final = Daemon(tmp)
    with final.client() as c:
        c.hello()
        for job in finished:
            info = c.status(job)
            if info["state"] != "done" or not all(Path(r["path"]).is_file() for r in info.get("results", [])):
                lost.append(job)
    final.terminate()
    return {"kills": rounds, "finished_before_kills": len(finished), "results_lost": len(set(lost))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--osc", type=int, default=5000)
    ap.add_argument("--zmq", type=int, default=2000)
    ap.add_argument("--subscriptions", type=int, default=20000)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--jobs", type=int, default=25)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--out", default=str(ROOT / "bench/results/daemon_attack.json"))
    ap.add_argument("--keep", help="work in this folder and keep it (the daemons' logs are in it)")
    args = ap.parse_args()
    logging.getLogger().setLevel(logging.ERROR)  # python-osc warns on every odd datagram it parses for us
    with tempfile.TemporaryDirectory() if args.keep is None else _kept(args.keep) as tmp_name:
        tmp = Path(tmp_name)
        daemon = Daemon(tmp / "attack")
        t0 = time.monotonic()
        report: dict[str, Any] = {
            "osc": fuzz_osc(daemon, args.osc, args.seed),
            "zmq_request": fuzz_zmq(daemon, "request", args.zmq, args.seed),
            "zmq_control": fuzz_zmq(daemon, "control", args.zmq, args.seed + 1),
        }
        report["alive_after_fuzz"] = alive(daemon)
        report["events_flood"] = flood_subscriptions(daemon, args.subscriptions, args.seed)
        report["alive_after_flood"] = alive(daemon)
        report["load"] = load(daemon, args.clients, args.jobs)
        report["rss_end_mb"] = round(daemon.rss_mb(), 1)
        report["sigterm_exit_s"] = daemon.terminate()
        report["kill9"] = kills(tmp / "kills", args.kills, args.seed)
        report["seconds"] = round(time.monotonic() - t0, 1)
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    report["command"] = " ".join(["python", *sys.argv])
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(table(report))
    bad = (report["osc"]["internal"] + report["zmq_request"]["internal"] + report["zmq_control"]["internal"]
           + report["load"]["lost"] + report["load"]["errors"] + report["kill9"]["results_lost"])
    return 1 if bad or not all({**report["alive_after_fuzz"], **report["alive_after_flood"]}.values()) else 0


@contextlib.contextmanager
def _kept(path: str) -> Iterator[str]:
    Path(path).mkdir(parents=True, exist_ok=True)
    yield path


def table(r: dict[str, Any]) -> str:
    rows = [
        "| run | tried | answered | internal errors | after |",
        "|---|---|---|---|---|",
    ]
    for key, name in (("osc", "OSC datagrams"), ("zmq_request", "ZeroMQ request socket"),
                      ("zmq_control", "ZeroMQ control socket")):
        x = r[key]
        asked = x.get("expect_answer", x["tried"])
        sent = f" ({x['redirected']} more answered to the reply_port they named)" if x.get("redirected") else ""
        rows.append(f"| {name} | {x['tried']:,} | {x['answered']:,} of {asked:,}{sent} | {x['internal']} | "
                    f"front ends alive: {all(r['alive_after_fuzz'].values())} |")
    f = r["events_flood"]
    rows.append(f"| random subscriptions to the events socket ({f['peers']} peers) | {f['subscriptions']:,} | - | - | "
                f"RSS {f['rss_before_mb']} -> {f['rss_after_mb']} MB; clients served: {all(r['alive_after_flood'].values())} |")
    ld = r["load"]
    rows.append(f"| {ld['clients']} clients x {ld['jobs_each']} jobs (half ZeroMQ, half OSC) | {ld['submitted']} accepted | "
                f"{ld['done']} done | - | jobs lost: {ld['lost']}; `busy` answers retried: {ld['busy_answers']} |")
    k = r["kill9"]
    rows.append(f"| kill -9 at random moments | {k['kills']} kills | {k['finished_before_kills']} results finished | - | "
                f"results lost: {k['results_lost']} |")
    rows.append(f"| SIGTERM after all of the above | 1 | exit in {r['sigterm_exit_s']} s | - | RSS {r['rss_end_mb']} MB |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
