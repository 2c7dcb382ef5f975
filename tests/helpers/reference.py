"""The official material some tests compare against: Jukebox's id lists and the released checkpoints' shapes.

It lives outside the repository, in ``../shared/reference`` beside the checkout, and a clean clone elsewhere
(a CI runner) may not have it. A test that needs it and does not find it is skipped with a message naming
the missing path, and the run ends with a banner listing every such test (``tests/conftest.py``), so a
machine without it never passes those tests unseen. ``SEGUE_REQUIRE_REFERENCE=1`` turns the skips into
failures (for machines that must run the conformance tests).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
REQUIRE = "SEGUE_REQUIRE_REFERENCE"
MISSING: list[str] = []  # messages of this run's skipped reference tests, for the closing banner
# What the tests read from it: the v2/v3 artist and genre lists, and every official state dict's key shapes.
CONTENTS = ("jukebox-ids", "jukebox-official-shapes.json")


def require_reference(root: Path = REFERENCE) -> Path:
    """``root`` if it holds :data:`CONTENTS`; otherwise skip, recorded for the banner (fail with ``SEGUE_REQUIRE_REFERENCE=1``)."""
    missing = [path for path in (root, *(root / name for name in CONTENTS)) if not path.exists()]
    if not missing:
        return root
    message = (
        f"reference material not found: {missing[0]} does not exist. These tests compare against the official "
        f"Jukebox id lists and checkpoint shapes in {root}; put them there to run them ({REQUIRE}=1 makes "
        "their absence a failure)"
    )
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(message, pytrace=False)
    MISSING.append(message)
    pytest.skip(message)
