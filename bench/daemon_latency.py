"""Bridge latency and throughput on loopback, over ZeroMQ and OSC, with the tone test backend.

    OMP_NUM_THREADS=1 PYTHONPATH=. python bench/daemon_latency.py [--quick]

Measures: status round trip (p50/p99), submit → first progress event, cancel → cancelled event, and
status requests per second with several clients at once. Writes bench/results/bridge.json and prints a
Markdown table for docs/benchmarks.md ("Bridge"). The model is the deterministic tone backend
(tests/bridge/tone_backend.py), so the numbers are the daemon's own overhead, not sampling speed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.bridge.daemon_rig import connect, rig_config, running_daemon  # noqa: E402
from tests.bridge.tone_backend import ToneBackend  # noqa: E402


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def summary(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "p50_ms": round(pct(ms, 0.5), 3), "p99_ms": round(pct(ms, 0.99), 3),
            "mean_ms": round(statistics.fmean(ms), 3)}


def status_rtt(server: Any, transport: str, n: int) -> dict[str, float]:
    c = connect(server, transport)
    c.hello()
    job = c.submit(kind="generate", model="tiny", length_s=0.2)
    c.wait_for(job["id"], {"result_ready"})
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        c.status(job["id"])
        ms.append((time.perf_counter() - t0) * 1000)
    c.close()
    return summary(ms)


def first_progress(server: Any, transport: str, n: int) -> dict[str, float]:
    c = connect(server, transport)
    c.hello()
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        job = c.submit(kind="generate", model="tiny", length_s=0.2)
        c.wait_for(job["id"], {"progress"})
        ms.append((time.perf_counter() - t0) * 1000)
        c.wait_for(job["id"], {"result_ready"})
    c.close()
    return summary(ms)


def cancel_latency(server: Any, transport: str, n: int, backend: ToneBackend) -> dict[str, float]:
    c = connect(server, transport)
    c.hello()
    ms = []
    for _ in range(n):
        backend.token_s = 0.01
        job = c.submit(kind="generate", model="tiny", length_s=0.2)
        c.wait_for(job["id"], {"level_done"})
        t0 = time.perf_counter()
        c.cancel(job["id"])
        c.wait_for(job["id"], {"cancelled"})
        ms.append((time.perf_counter() - t0) * 1000)
    backend.token_s = 0.0005
    c.close()
    return summary(ms)


def status_throughput(server: Any, transport: str, clients: int, seconds: float) -> dict[str, float]:
    counts = [0] * clients
    job_id = connect(server, "zmq").submit(kind="generate", model="tiny", length_s=0.2)["id"]
    start = threading.Barrier(clients + 1)

    def worker(i: int) -> None:
        c = connect(server, transport, name=f"load{i}")
        start.wait()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            c.status(job_id)
            counts[i] += 1
        c.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    start.wait()
    for t in threads:
        t.join()
    return {"clients": clients, "seconds": seconds, "requests": sum(counts), "per_s": round(sum(counts) / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer samples (smoke run)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results") / "bridge.json"))
    args = parser.parse_args()
    n, jobs = (50, 5) if args.quick else (500, 20)
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_implementation()} "
                   f"{platform.python_version()}",
        "backend": "tests/bridge/tone_backend.py (token_s 0.5 ms; 10 ms for the cancel test)",
    }
    backend = ToneBackend(token_s=0.0005, tokens=(16, 8), load_s=0.01)
    with tempfile.TemporaryDirectory() as tmp, running_daemon(Path(tmp) / "s", rig_config(Path(tmp)), backend) as server:
        for transport in ("zmq", "osc"):
            results[transport] = {
                "status_rtt": status_rtt(server, transport, n),
                "submit_to_first_progress": first_progress(server, transport, jobs),
                "cancel_to_cancelled_event": cancel_latency(server, transport, jobs, backend),
                "status_throughput_8_clients": status_throughput(server, transport, 8, 2.0 if args.quick else 5.0),
            }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


def table(r: dict[str, Any]) -> str:
    rows = ["| measure | ZeroMQ | OSC |", "|---|---|---|"]
    for key, label in (("status_rtt", "status round trip"), ("submit_to_first_progress", "submit → first progress"),
                       ("cancel_to_cancelled_event", "cancel → cancelled event")):
        z, o = r["zmq"][key], r["osc"][key]
        rows.append(f"| {label}, p50 / p99 (ms, n={z['n']}) | {z['p50_ms']:.2f} / {z['p99_ms']:.2f} | "
                    f"{o['p50_ms']:.2f} / {o['p99_ms']:.2f} |")
    z, o = r["zmq"]["status_throughput_8_clients"], r["osc"]["status_throughput_8_clients"]
    rows.append(f"| status requests/s, 8 clients | {z['per_s']:.0f} | {o['per_s']:.0f} |")
    return "\n".join(rows)


if __name__ == "__main__":
    main()
