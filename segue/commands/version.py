"""``segue version``: print the versions that matter when reporting a problem."""

from __future__ import annotations

import argparse
import platform
from importlib import metadata

NAME = "version"
HELP = "print segue, Python and torch versions (--devices: also the accelerators torch sees)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--devices", action="store_true",
                        help="also load torch and say whether CUDA and Apple MPS are available (slower)")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def run(args: argparse.Namespace) -> int:
    # torch's version comes from its package metadata: importing torch takes seconds, so only --devices does
    print(f"segue {_version('segue')}")
    print(f"python {platform.python_version()}, torch {_version('torch')}")
    if args.devices:
        import torch

        mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
        print(f"cuda available: {torch.cuda.is_available()}, mps available: {mps}")
    return 0
