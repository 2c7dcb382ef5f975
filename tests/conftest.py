"""Shared test set-up: tiny seeded CPU models, few threads (CI has 2 cores)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# One thread: the suite is made of tiny models whose ops are too small to gain from threads, and
# on a shared box extra threads oversubscribe the cores (measured 14-40x slower per tiny op).
# Set at import for module- and session-scoped fixtures; ``one_thread`` holds it for every test.
torch.set_num_threads(1)

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


@pytest.fixture
def reference_dir() -> Path:
    if not REFERENCE.is_dir():
        pytest.skip(f"reference material not found at {REFERENCE}")
    return REFERENCE


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Every test starts on one intra-op thread, and whatever a test sets is undone after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
