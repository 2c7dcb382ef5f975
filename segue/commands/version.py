"""``segue version``: print the versions that matter when reporting a problem."""

from __future__ import annotations

import argparse
import platform
from importlib import metadata

NAME = "version"
HELP = "print segue, Python and torch versions"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser


def run(args: argparse.Namespace) -> int:
    del args
    import torch

    try:
        version = metadata.version("segue")
    except metadata.PackageNotFoundError:
        version = "unknown (not installed)"
    print(f"segue {version}")
    print(f"python {platform.python_version()}, torch {torch.__version__}")
    print(f"cuda available: {torch.cuda.is_available()}")
    return 0
