"""Choosing where models run: the CLI's one place for device placement (model code never does it)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from common.errors import InputError

if TYPE_CHECKING:
    import torch

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; asking for an absent accelerator is an error.

    torch is imported here, not at module level, so commands that never place a model (``segue status``,
    ``jobs``, ``keys``, ...) start without loading it.
    """
    import torch

    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not cuda:
            raise InputError(f"--device {name}: no CUDA GPU is available to this process; use --device cpu")
        return torch.device(name)
    if name == "mps":
        if not mps:
            raise InputError("--device mps: Apple Metal is not available on this machine; use --device cpu")
        return torch.device("mps")
    raise InputError(f"--device {name!r} is not one of {', '.join(DEVICE_CHOICES)} (or cuda:N)")


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        default="auto",
        metavar="DEVICE",
        help="where the model runs: auto (CUDA, then Apple MPS, then CPU; default), cpu, cuda, cuda:N or mps",
    )
