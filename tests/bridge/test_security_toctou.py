"""Issue 8, "Files": what a job reads is what was checked at submit, whatever is swapped on disk later.

A region (or MIDI, stems, codes file) swapped for a symlink to outside the roots after submit, a parent
folder swapped the same way, a file grown past the size limit after the check, and a resubmit after
such a swap: none of them may be read. The daemon copies each path input at submit through a checked
descriptor (``bridge.safe_open``) and the job reads that copy.
"""

from __future__ import annotations

import io
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest

from bridge.config import BridgeConfig
from bridge.dispatcher import Dispatcher, Reply, Request
from bridge.engine.backend import RunEvents, Take
from bridge.engine.engine import EngineConfig, JobEngine
from bridge.jobs import TERMINAL, AudioInput, JobKind, JobSpec, JobState
from bridge.safe_open import FileMissing, PathNotAllowed, TooLarge, open_checked
from bridge.state.journal import Journal
from bridge.state.store import RenderStore
from common.progress import CancelToken
from tests.bridge.tone_backend import ToneBackend, spec, wait_until

ORIGINAL, SECRET, LIMIT = b"RIFF-original-take", b"SECRET-outside-the-roots", 1000


@dataclass
class ReadingBackend(ToneBackend):
    """Records the bytes of every input file a job reads when it runs (after the gate opens)."""

    read: dict[str, bytes] = field(default_factory=dict)

    def run(self, spec: JobSpec, events: RunEvents, cancel: CancelToken) -> list[Take]:
        while self.gate is not None and not self.gate.wait(0.01):
            cancel.raise_if_cancelled()
        items = {"region": spec.region, "codes": spec.codes, "midi": spec.midi}
        items.update({f"stems[{i}]": s for i, s in enumerate(spec.stems)})
        for name, item in items.items():
            if item is not None and item.path is not None:
                self.read[name] = Path(item.path).read_bytes()
        return super().run(replace(spec, kind=JobKind.GENERATE), events, cancel)


class Daemon:
    """A dispatcher over a real engine, journal and store, without sockets; jobs wait for ``gate``."""

    def __init__(self, tmp: Path) -> None:
        self.root, self.outside = tmp / "root", tmp / "outside"
        for folder in (self.root / "sub", self.outside / "sub"):
            folder.mkdir(parents=True)
        (self.outside / "secret.wav").write_bytes(SECRET)
        (self.outside / "sub" / "take.wav").write_bytes(SECRET)
        self.gate = threading.Event()
        self.backend = ReadingBackend(gate=self.gate)
        self.store = RenderStore(tmp / "store")
        self.engine = JobEngine(self.backend, Journal(tmp / "journal.sqlite3"), self.store, EngineConfig())
        config = BridgeConfig(
            roots=(str(self.root),), max_input_bytes=LIMIT, max_seconds=30, max_candidates=2
        )
        self.dispatcher = Dispatcher(self.engine, config)

    def ask(self, msg_type: str, content: dict[str, Any]) -> Reply:
        return self.dispatcher.handle(Request(msg_type, content, peer="p"))

    def submit(self, **files: Any) -> str:
        kind = "upsample" if "codes" in files else "continue" if "region" in files else "generate"
        reply = self.ask("submit", {"kind": kind, "model": "tiny", "length_s": 0.05, **files})
        assert reply.status == "ok", reply.content
        return str(reply.content["job"]["id"])

    def finish(self, job_id: str) -> None:
        self.gate.set()
        wait_until(lambda: self.engine.status(job_id).state in TERMINAL)
        assert self.engine.status(job_id).state is JobState.DONE, self.engine.status(job_id).error_message


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[Daemon]:
    d = Daemon(tmp_path)
    yield d
    d.gate.set()
    d.engine.shutdown(2.0)


def _swap_for_symlink(path: Path, target: Path) -> None:
    path.unlink()
    os.symlink(target, path)


def _request(field_name: str, path: Path) -> dict[str, Any]:
    entry = {"path": str(path)}
    return {"stems": [{**entry, "label": "drums"}]} if field_name == "stems" else {field_name: entry}


@pytest.mark.parametrize("field_name", ["region", "midi", "stems", "codes"])
def test_an_input_swapped_for_a_symlink_after_submit_is_not_read(daemon: Daemon, field_name: str) -> None:
    take = daemon.root / "take.wav"
    take.write_bytes(ORIGINAL)
    job_id = daemon.submit(**_request(field_name, take))
    _swap_for_symlink(take, daemon.outside / "secret.wav")
    daemon.finish(job_id)
    read = daemon.backend.read["stems[0]" if field_name == "stems" else field_name]
    assert read == ORIGINAL


def test_a_parent_folder_swapped_for_a_symlink_after_submit_is_not_read(daemon: Daemon) -> None:
    (daemon.root / "sub" / "take.wav").write_bytes(ORIGINAL)
    job_id = daemon.submit(region={"path": str(daemon.root / "sub" / "take.wav")})
    (daemon.root / "sub").rename(daemon.root / "sub-moved")
    os.symlink(daemon.outside / "sub", daemon.root / "sub")
    daemon.finish(job_id)
    assert daemon.backend.read["region"] == ORIGINAL


def test_a_file_grown_past_the_limit_after_the_check_is_refused(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    take = daemon.root / "take.wav"
    take.write_bytes(ORIGINAL)
    guard = daemon.dispatcher.guard
    checked = guard.input_path

    def check_then_grow(path: str) -> Path:
        resolved = checked(path)
        with open(path, "ab") as grow:
            grow.write(b"\0" * (2 * LIMIT))
        return resolved

    monkeypatch.setattr(guard, "input_path", check_then_grow)
    reply = daemon.ask(
        "submit", {"kind": "continue", "model": "tiny", "length_s": 0.05, "region": {"path": str(take)}}
    )
    assert reply.status == "error" and reply.content["code"] == "too_large", reply.content
    assert daemon.engine.list_jobs() == [] and list(daemon.store.inputs.iterdir()) == []


def test_a_resubmit_after_a_swap_reads_the_daemons_copy(daemon: Daemon) -> None:
    take = daemon.root / "take.wav"
    take.write_bytes(ORIGINAL)
    job_id = daemon.submit(region={"path": str(take)})
    daemon.ask("cancel", {"job_id": job_id})
    wait_until(lambda: daemon.engine.status(job_id).state is JobState.CANCELLED)
    _swap_for_symlink(take, daemon.outside / "secret.wav")
    reply = daemon.ask("resubmit", {"job_id": job_id})
    assert reply.status == "ok", reply.content
    daemon.finish(job_id)
    assert daemon.backend.read["region"] == ORIGINAL


def test_a_resubmit_of_a_job_that_still_names_a_client_path_checks_it_again(daemon: Daemon) -> None:
    """A job journaled before inputs were copied (here: submitted in-process) holds the client's path."""
    take = daemon.root / "take.wav"
    take.write_bytes(ORIGINAL)
    legacy = replace(spec(), kind=JobKind.CONTINUE, region=AudioInput(path=str(take)))
    job_id = daemon.engine.submit(legacy).id
    daemon.engine.cancel(job_id)
    wait_until(lambda: daemon.engine.status(job_id).state is JobState.CANCELLED)
    _swap_for_symlink(take, daemon.outside / "secret.wav")
    reply = daemon.ask("resubmit", {"job_id": job_id})
    assert reply.status == "error" and reply.content["code"] == "path_not_allowed", reply.content
    assert daemon.engine.status(job_id).state is JobState.CANCELLED


def test_a_symlink_inside_the_roots_is_still_allowed_and_copied(daemon: Daemon) -> None:
    (daemon.root / "sub" / "take.wav").write_bytes(ORIGINAL)
    os.symlink(daemon.root / "sub" / "take.wav", daemon.root / "link.wav")
    job_id = daemon.submit(region={"path": str(daemon.root / "link.wav")})
    (daemon.root / "sub" / "take.wav").write_bytes(b"changed later")
    daemon.finish(job_id)
    assert daemon.backend.read["region"] == ORIGINAL


# --- the opener itself: a swap between its own check (realpath) and its open --------------------------


def _swap_after_resolving(monkeypatch: pytest.MonkeyPatch, swap: Any) -> None:
    resolve = os.path.realpath

    def resolve_then_swap(path: Any, *args: Any, **kwargs: Any) -> str:
        resolved = resolve(path, *args, **kwargs)
        monkeypatch.setattr(os.path, "realpath", resolve)
        swap()
        return resolved

    monkeypatch.setattr(os.path, "realpath", resolve_then_swap)


def _roots(tmp_path: Path) -> tuple[Path, Path]:
    root, outside = tmp_path / "root", tmp_path / "outside"
    for folder in (root / "sub", outside / "sub"):
        folder.mkdir(parents=True)
    (root / "sub" / "take.wav").write_bytes(ORIGINAL)
    (outside / "sub" / "take.wav").write_bytes(SECRET)
    return Path(os.path.realpath(root)), Path(os.path.realpath(outside))


def test_the_open_follows_no_symlink_swapped_in_after_its_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = _roots(tmp_path)
    take = root / "sub" / "take.wav"
    _swap_after_resolving(monkeypatch, lambda: _swap_for_symlink(take, outside / "sub" / "take.wav"))
    with pytest.raises(PathNotAllowed, match="became a symlink"):
        open_checked(str(take), (root,), LIMIT)


def test_the_open_follows_no_parent_swapped_in_after_its_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, outside = _roots(tmp_path)

    def swap() -> None:
        (root / "sub").rename(root / "sub-moved")
        os.symlink(outside / "sub", root / "sub")

    _swap_after_resolving(monkeypatch, swap)
    with pytest.raises(PathNotAllowed, match="folder on its path"):
        open_checked(str(root / "sub" / "take.wav"), (root,), LIMIT)


def test_a_fifo_swapped_in_after_the_check_is_refused_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = _roots(tmp_path)
    take = root / "sub" / "take.wav"

    def swap() -> None:
        take.unlink()
        os.mkfifo(take)

    _swap_after_resolving(monkeypatch, swap)
    with pytest.raises(PathNotAllowed, match="not a regular file"):
        open_checked(str(take), (root,), LIMIT)


def test_the_size_limit_holds_for_the_bytes_read(tmp_path: Path) -> None:
    root, _ = _roots(tmp_path)
    take = root / "sub" / "take.wav"
    with open_checked(str(take), (root,), LIMIT) as checked:
        with open(take, "ab") as grow:
            grow.write(b"\0" * LIMIT)
        with pytest.raises(TooLarge, match="grew past the limit"), open(tmp_path / "copy", "wb") as out:
            checked.copy_to(out)
    with (
        open_checked(str(root / "sub" / "take.wav"), (root,), 2 * LIMIT) as checked,
        open(tmp_path / "c", "wb") as out,
    ):
        assert checked.copy_to(out) == len(ORIGINAL) + LIMIT
    with pytest.raises(FileMissing):
        open_checked(str(root / "sub" / "gone.wav"), (root,), LIMIT)


def test_the_daemons_copy_keeps_the_clients_file_name(daemon: Daemon) -> None:
    # an encode job's codes said source_name "input-0.wav" (the spooled copy's name), not the client's file
    (daemon.root / "My Song.wav").write_bytes(ORIGINAL)
    job_id = daemon.submit(region={"path": str(daemon.root / "My Song.wav")})
    region = daemon.engine.journal.job(job_id).spec.region  # type: ignore[union-attr]
    assert region is not None and Path(region.path or "").parent != daemon.root
    assert region.source_name == "My Song.wav"
    daemon.finish(job_id)


def test_all_inputs_of_a_job_share_one_byte_budget(tmp_path: Path) -> None:
    # each stem below max_input_bytes, but twenty of them were 20 x the limit with no total
    d = Daemon(tmp_path)
    try:
        for i in range(5):
            (d.root / f"stem{i}.wav").write_bytes(b"R" * (LIMIT - 10))
        stems = [{"path": str(d.root / f"stem{i}.wav"), "label": "drums"} for i in range(5)]
        reply = d.ask("submit", {"kind": "generate", "model": "tiny", "length_s": 0.05, "stems": stems})
        assert reply.status == "error" and reply.content["code"] == "too_large", reply.content
        assert "together" in reply.content["message"] and str(4 * LIMIT) in reply.content["message"]
        assert d.engine.list_jobs() == []  # nothing queued, nothing spooled
        assert d.submit(stems=stems[:3])  # under the budget: accepted
    finally:
        d.gate.set()
        d.engine.shutdown(2.0)


def test_a_hard_link_to_a_file_outside_the_roots_is_refused(tmp_path: Path) -> None:
    root, outside = _roots(tmp_path)
    os.link(outside / "sub" / "take.wav", root / "linked.wav")  # same filesystem: the attack's shape
    with pytest.raises(PathNotAllowed, match="2 hard links"):
        open_checked(str(root / "linked.wav"), (root,), LIMIT)
    with open_checked(str(root / "linked.wav"), (root,), LIMIT, allow_hard_links=True) as checked:
        out = io.BytesIO()
        checked.copy_to(out)
        assert out.getvalue() == SECRET  # what the option lets through, for roots nobody else links into
