"""``segue status [JOB]``: the daemon's state, or one job's."""

from __future__ import annotations

import argparse

from segue.commands._daemon import add_connection_arguments, call, job_line

NAME = "status"
HELP = "show a running daemon's versions, models and queue, or one job's state"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", nargs="?", help="a job id (default: the whole daemon)")
    add_connection_arguments(parser)


def run(args: argparse.Namespace) -> int:
    if args.job:
        job = call(args, "status", args.job)
        assert isinstance(job, dict)
        print(job_line(job))
        for r in job.get("results", []):
            what = "codes of " if r.get("kind") == "codes" else ""  # a prime job's codes file
            print(f"  candidate {r['candidate']}: {r['path']} ({what}{r['seconds']:.2f} s, {r['sample_rate']} Hz, seed {r['seed']})")
        return 0
    hello = call(args, "hello")
    jobs = call(args, "list_jobs")
    assert isinstance(hello, dict) and isinstance(jobs, list)
    print(f"segue daemon {hello['daemon_version']}, protocol {hello['protocol_version']}")
    for m in hello["models"]:
        print(f"  model {m['name']}: {m['state']}" + (f" ({m['error']})" if m.get("error") else ""))
    counts: dict[str, int] = {}
    for j in jobs:
        counts[j["state"]] = counts.get(j["state"], 0) + 1
    print("  jobs: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"))
    return 0
