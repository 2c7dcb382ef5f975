"""A missing ../shared/reference skips the tests that need it loudly, naming the path; SEGUE_REQUIRE_REFERENCE=1 fails them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.reference import CONTENTS, MISSING, REQUIRE, require_reference


def _complete(root: Path) -> Path:
    (root / "jukebox-ids").mkdir(parents=True)
    (root / "jukebox-official-shapes.json").write_text("{}")
    assert set(CONTENTS) == {p.name for p in root.iterdir()}
    return root


def test_a_complete_reference_is_returned(tmp_path: Path) -> None:
    assert require_reference(_complete(tmp_path / "reference")) == tmp_path / "reference"


def test_a_missing_reference_is_skipped_naming_the_path_and_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE, raising=False)
    before = len(MISSING)
    with pytest.raises(pytest.skip.Exception, match=f"{tmp_path / 'nowhere'} does not exist"):
        require_reference(tmp_path / "nowhere")
    assert len(MISSING) == before + 1 and str(tmp_path / "nowhere") in MISSING[-1]
    del MISSING[before:]


def test_a_missing_part_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE, raising=False)
    root = _complete(tmp_path / "reference")
    (root / "jukebox-official-shapes.json").unlink()
    before = len(MISSING)
    with pytest.raises(pytest.skip.Exception, match="jukebox-official-shapes.json does not exist"):
        require_reference(root)
    del MISSING[before:]


def test_requiring_the_reference_fails_without_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE, "1")
    with pytest.raises(pytest.fail.Exception, match="nowhere does not exist"):
        require_reference(tmp_path / "nowhere")
