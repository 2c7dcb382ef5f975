"""Run every benchmark in turn (``make bench``); each writes its JSON to bench/results/.

    python -m bench            # all of them (about an hour on a 2-core CPU)
    python -m bench vqvae      # only the named ones: vqvae, vqvae-memory, sampling, sampling-fast, daemon, daemon-attack
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHES = {
    "vqvae": [sys.executable, "-m", "bench.vqvae"],
    "vqvae-memory": [sys.executable, "-m", "bench.vqvae", "--memory-10min"],
    "sampling": [sys.executable, "bench/sampling.py"],
    "sampling-fast": [sys.executable, "bench/sampling_fast.py"],
    "daemon": [sys.executable, "bench/daemon_latency.py"],
    "daemon-attack": [sys.executable, "bench/daemon_attack.py"],
}


def main(names: list[str]) -> int:
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown benchmark(s) {unknown}; choose from {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    failed = []
    for name in names or list(BENCHES):
        print(f"== {name}: {' '.join(BENCHES[name][1:])}", flush=True)
        if subprocess.run(BENCHES[name], cwd=ROOT, env=env).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
