"""Shared test set-up: tiny seeded CPU models, few threads (CI has 2 cores)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# One thread: the suite is made of tiny models whose ops are too small to gain from threads, and
# on a shared box extra threads oversubscribe the cores (measured 14-40x slower per tiny op).
torch.set_num_threads(1)

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


@pytest.fixture
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference material not found at {REFERENCE}")
    return REFERENCE


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
