"""Several processes (one machine or many) through torch.distributed: torchrun starts them, DDP averages.

``segue train prior`` run under ``torchrun`` finds ``RANK``/``WORLD_SIZE``/``LOCAL_RANK`` in its
environment; ``process_group(device)`` then joins the group (gloo on CPU, nccl on CUDA, each rank on the
GPU ``LOCAL_RANK``), ``ddp_wrap`` is what ``train_prior(wrap=...)`` puts around ``PriorLoss`` and each rank
passes its rank as ``stream=`` so it draws its own windows. Only rank 0 writes into the run folder and the
model directory; the others load the same checkpoint to resume. Nothing here replaces torch.distributed:
these are the few lines that connect it to the trainer.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


@dataclass(frozen=True)
class World:
    """This process's place in the group: ``rank`` of ``size`` processes, ``local_rank`` on its machine."""

    rank: int
    size: int
    local_rank: int

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = World(0, 1, 0)


def launched() -> bool:
    """Whether torchrun (or another launcher with its variables) started this process."""
    return all(k in os.environ for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


@contextmanager
def process_group(device: torch.device) -> Iterator[tuple[World, torch.device]]:
    """Join the process group when launched by torchrun (``SINGLE`` and ``device`` unchanged otherwise);
    yields this process's ``World`` and its device (``cuda:LOCAL_RANK`` for a CUDA run); the group is
    destroyed on the way out."""
    if dist.is_initialized():  # joined already (a caller's own group): used as it is, left to the caller
        yield World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0))), device
        return
    if not launched():
        yield SINGLE, device
        return
    local = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    dist.init_process_group(backend_for(device))
    try:
        yield World(dist.get_rank(), dist.get_world_size(), local), device
        dist.barrier()  # no rank tears its connections down while another still talks (an error skips it)
    finally:
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (nothing outside a group)."""
    if dist.is_initialized():
        dist.barrier()


def ddp_wrap(device: torch.device) -> Callable[[nn.Module], nn.Module] | None:
    """``train_prior``'s ``wrap=`` inside a group of 2+ processes (None otherwise): DistributedDataParallel,
    which broadcasts rank 0's weights on wrapping and averages the gradients in ``backward``."""
    if not dist.is_initialized() or dist.get_world_size() < 2:
        return None
    ids = [device.index] if device.type == "cuda" else None

    def wrap(module: nn.Module) -> nn.Module:
        # a batch without conditions, or a dropped conditioner, leaves parameters without a gradient on one
        # rank: find_unused_parameters lets DDP still average (zeros there) instead of waiting for them
        return DistributedDataParallel(module, device_ids=ids, find_unused_parameters=True)

    return wrap


def mean_over_ranks(values: list[float], device: torch.device) -> list[float]:
    """The mean of each value over the ranks (the values themselves outside a group); every rank calls it."""
    if not dist.is_initialized() or dist.get_world_size() < 2:
        return values
    t = torch.tensor(values, dtype=torch.float64 if device.type != "cuda" else torch.float32, device=device)
    dist.all_reduce(t)
    return [float(v) / dist.get_world_size() for v in t.tolist()]


__all__ = ["SINGLE", "World", "backend_for", "barrier", "ddp_wrap", "launched", "mean_over_ranks", "process_group"]
