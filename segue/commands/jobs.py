"""``segue jobs``: list a running daemon's jobs."""

from __future__ import annotations

import argparse

from segue.commands._daemon import add_connection_arguments, call, job_line

NAME = "jobs"
HELP = "list the jobs of a running daemon"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--client", help="only the jobs of this client name")
    add_connection_arguments(parser)


def run(args: argparse.Namespace) -> int:
    jobs = call(args, "list_jobs", args.client)
    assert isinstance(jobs, list)
    for job in sorted(jobs, key=lambda j: j["created"]):
        print(job_line(job))
    if not jobs:
        print("no jobs")
    return 0
