"""Process-level settings applied once by entry points (the CLI and the daemon), never by model code."""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory(threshold: int = 64 * 2**20) -> bool:
    """glibc only: serve blocks below ``threshold`` bytes from the heap and keep freed memory.

    By default glibc hands every freed block of a few hundred KiB back to the OS, so each sampled
    token page-faults its logits/softmax buffers afresh (measured by bench/sampling_fast.py: the
    sampler's ~0.94 ms per step at batch 64 drops to ~0.16 ms). Returns whether the setting took.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(
            libc.mallopt(_M_TRIM_THRESHOLD, 2 * threshold)
        )
    except (OSError, AttributeError):
        return False
