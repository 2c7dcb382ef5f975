"""Shared test set-up: tiny seeded CPU models, few threads (CI has 2 cores)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import torch._dynamo  # noqa: F401  (reads TORCH_COMPILE_DISABLE once: before any test sets it)

from tests.helpers.reference import MISSING, require_reference

# One thread: the suite is made of tiny models whose ops are too small to gain from threads, and
# on a shared box extra threads oversubscribe the cores (measured 14-40x slower per tiny op).
# Set at import for module- and session-scoped fixtures; ``one_thread`` holds it for every test.
torch.set_num_threads(1)


@pytest.fixture
def reference_dir() -> Path:
    """../shared/reference; a test that asks for it fails when it is missing (see tests/helpers/reference.py)."""
    return require_reference()


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Every test starts on one intra-op thread, and whatever a test sets is undone after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def eager_fp32_auto(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """``step="auto"`` means eager except in tests marked ``compile`` (also in the daemons and commands a
    test starts as processes: ``TORCH_COMPILE_DISABLE=1``), and ``precision="auto"`` means fp32 (no timing),
    so the suite neither compiles for tens of seconds nor depends on this machine's speed. Tests of the
    measurement and of ``compile_support`` use the real functions (imported before this runs)."""
    from model.prior import fast_step
    from model.sampling import precision

    monkeypatch.setattr(precision, "measure_precision", lambda prior, batch, timer=None: "fp32")
    if request.node.get_closest_marker("compile") is None:
        monkeypatch.setattr(fast_step, "compile_support", lambda device: "tests run eager unless marked compile")
        monkeypatch.setenv("TORCH_COMPILE_DISABLE", "1")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """A banner, not a quiet 's': tests skipped because ../shared/reference is missing."""
    if MISSING:
        terminalreporter.section("MISSING REFERENCE MATERIAL", sep="!", red=True, bold=True)
        terminalreporter.write_line(f"{len(MISSING)} conformance tests did not run: {MISSING[0]}")
