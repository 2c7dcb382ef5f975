"""``segue cancel JOB``: cancel a job on a running daemon."""

from __future__ import annotations

import argparse

from segue.commands._daemon import add_connection_arguments, call, job_line

NAME = "cancel"
HELP = "cancel a waiting or running job"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("job", help="the job id (see 'segue jobs')")
    add_connection_arguments(parser)


def run(args: argparse.Namespace) -> int:
    job = call(args, "cancel", args.job)
    assert isinstance(job, dict)
    print(job_line(job))
    return 0
