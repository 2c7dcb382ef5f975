"""The official material some tests compare against: Jukebox's id lists and the released checkpoints' shapes.

It lives outside the repository, in ``../shared/reference`` beside the checkout. A test that needs it and
does not find it fails, naming the missing path, so that a machine without it never passes those tests by
skipping them unseen. Where that is expected, ``SEGUE_ALLOW_MISSING_REFERENCE=1`` turns the failure into a
skip with the same message.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REFERENCE = Path(__file__).resolve().parents[2].parent / "shared" / "reference"
ALLOW_MISSING = "SEGUE_ALLOW_MISSING_REFERENCE"
# What the tests read from it: the v2/v3 artist and genre lists, and every official state dict's key shapes.
CONTENTS = ("jukebox-ids", "jukebox-official-shapes.json")


def require_reference(root: Path = REFERENCE) -> Path:
    """``root`` if it holds :data:`CONTENTS`; otherwise fail (or, with ``SEGUE_ALLOW_MISSING_REFERENCE=1``, skip)."""
    missing = [path for path in (root, *(root / name for name in CONTENTS)) if not path.exists()]
    if not missing:
        return root
    message = (
        f"reference material not found: {missing[0]} does not exist. These tests compare against the official "
        f"Jukebox id lists and checkpoint shapes in {root}; put them there, or set {ALLOW_MISSING}=1 to skip "
        "the tests that need them"
    )
    if os.environ.get(ALLOW_MISSING) == "1":
        pytest.skip(message)
    pytest.fail(message, pytrace=False)
