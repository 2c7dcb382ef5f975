"""A missing ../shared/reference fails the tests that need it, naming the path; skipping takes an explicit opt-in."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.reference import ALLOW_MISSING, CONTENTS, require_reference


def _complete(root: Path) -> Path:
    (root / "jukebox-ids").mkdir(parents=True)
    (root / "jukebox-official-shapes.json").write_text("{}")
    assert set(CONTENTS) == {p.name for p in root.iterdir()}
    return root


def test_a_complete_reference_is_returned(tmp_path: Path) -> None:
    assert require_reference(_complete(tmp_path / "reference")) == tmp_path / "reference"


def test_a_missing_reference_fails_and_names_the_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_MISSING, raising=False)
    with pytest.raises(pytest.fail.Exception, match=f"{tmp_path / 'nowhere'} does not exist.*{ALLOW_MISSING}=1"):
        require_reference(tmp_path / "nowhere")


def test_a_missing_part_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_MISSING, raising=False)
    root = _complete(tmp_path / "reference")
    (root / "jukebox-official-shapes.json").unlink()
    with pytest.raises(pytest.fail.Exception, match="jukebox-official-shapes.json does not exist"):
        require_reference(root)


def test_skipping_needs_the_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ALLOW_MISSING, "1")
    with pytest.raises(pytest.skip.Exception, match="nowhere does not exist"):
        require_reference(tmp_path / "nowhere")
    monkeypatch.setenv(ALLOW_MISSING, "yes")  # only "1" opts in
    with pytest.raises(pytest.fail.Exception):
        require_reference(tmp_path / "nowhere")
