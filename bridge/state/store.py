"""The render store: every file the daemon hands to a DAW, written atomically, described by a sidecar.

Layout under ``root`` (see docs/daemon.md, "Jobs, journal and render store"):

    renders/<job_id>/candidate-<k>.wav           full render of candidate k (project rate and bit depth)
    renders/<job_id>/candidate-<k>.json          its sidecar
    renders/<job_id>/candidate-<k>.preview.wav   quick render from a higher level (+ .preview.json)
    renders/<job_id>/candidate-<k>.codes.npz     codes of every level (``prime`` jobs; + candidate-<k>.json)
    renders/<job_id>/job.json                    manifest, written last: the job is finished
    inputs/<job_id>/input-<n>.<format>           bytes a client sent, or the daemon's copy of a path it named

Both folders of a job go when the engine's retention prunes it (``remove_job``).

Every file goes through ``model.atomic`` (temp file beside the target, fsync, rename), so a reader sees a
whole file or none. Order per job: audio, then its sidecar, then (after all candidates) the manifest, so
a manifest implies complete audio and a sidecar implies its audio. ``remove_temp_files`` deletes the
temp files a killed writer leaves behind; call it only when no segue process writes to ``root``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bridge.engine.backend import Candidate, CodesTake, Take
from bridge.jobs import AudioInput, JobSpec, ResultFile
from bridge.safe_open import CheckedFile
from common.errors import AudioError
from model.atomic import TEMP_PREFIX, atomic_path, atomic_write_bytes, atomic_write_text
from model.audio import Audio, write_audio
from model.codes import save_codes

SIDECAR_FORMAT = "segue-render"
SIDECAR_VERSION = 1
MANIFEST = "job.json"
Opener = Callable[[str], CheckedFile]  # a client's path -> the file opened and checked (Guard.open_input)


@dataclass(frozen=True)
class StoredJob:
    """A finished job as its manifest on disk describes it."""

    job_id: str
    spec: JobSpec
    results: tuple[ResultFile, ...]
    finished: float


class RenderStore:
    """Rendered audio and spooled inputs under ``root`` (created if missing)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.renders = self.root / "renders"
        self.inputs = self.root / "inputs"
        for directory in (self.renders, self.inputs):
            directory.mkdir(parents=True, exist_ok=True)

    def job_dir(self, job_id: str) -> Path:
        return self.renders / _safe_id(job_id)

    # -- inputs ---------------------------------------------------------------------------------
    def spool_input(
        self, job_id: str, index: int, item: AudioInput, open_input: Opener | None = None
    ) -> AudioInput:
        """Write an input's bytes to ``inputs/<job>/`` and return it as a path input.

        A path input is copied too when ``open_input`` (the daemon's checked opener,
        ``Guard.open_input``) is given, in chunks with the size limit on the bytes read: the job, its
        resubmits and recovery then read the daemon's own copy, never the client's path again, which
        could have been swapped for a symlink or grown since it was checked. This job's own spooled
        files pass through; without ``open_input`` (in-process callers) every path passes through."""
        if item.data is None:
            assert item.path is not None  # AudioInput holds a path or bytes
            if open_input is None or Path(item.path).parent == self.inputs / _safe_id(job_id):
                return item
            path = self._input_file(job_id, index, item)
            with open_input(item.path) as source, atomic_path(path) as tmp, open(tmp, "wb") as out:
                source.copy_to(out)
            return replace(item.with_path(str(path)), source_name=item.source_name or Path(item.path).name)
        path = self._input_file(job_id, index, item)
        atomic_write_bytes(path, item.data)
        return item.with_path(str(path))

    def _input_file(self, job_id: str, index: int, item: AudioInput) -> Path:
        directory = self.inputs / _safe_id(job_id)
        directory.mkdir(parents=True, exist_ok=True)
        suffix = "".join(ch for ch in (item.format or "bin") if ch.isalnum())[:8] or "bin"
        return directory / f"input-{index}.{suffix}"

    def discard_inputs(self, job_id: str) -> None:
        """Remove a job's spooled inputs (a job refused after its bytes were spooled)."""
        shutil.rmtree(self.inputs / _safe_id(job_id), ignore_errors=True)

    # -- renders --------------------------------------------------------------------------------
    def write_take(self, job_id: str, spec: JobSpec, take: Take, *, preview: bool = False) -> ResultFile:
        """Write ``take`` (audio resampled to the job's output rate, or a codes file) and its sidecar."""
        if isinstance(take, CodesTake):
            return self._write_codes(job_id, spec, take)
        return self._write_audio(job_id, spec, take, preview)

    def _write_codes(self, job_id: str, spec: JobSpec, take: CodesTake) -> ResultFile:
        directory = self.job_dir(job_id)
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"candidate-{take.index}"
        path = save_codes(directory / f"{stem}.codes.npz", take.codes, take.meta)  # atomic
        meta = take.meta
        result = ResultFile(str(path), meta.sample_rate, meta.source_samples, take.seed, take.index, 0, "codes")
        sidecar = {
            "format": SIDECAR_FORMAT,
            "version": SIDECAR_VERSION,
            "kind": "codes",
            "job_id": job_id,
            "file": path.name,
            "candidate": take.index,
            "seed": take.seed,
            "model": spec.model,
            "codes": meta.to_dict(),
            "tokens": [int(c.shape[-1]) for c in take.codes],
            "sample_rate": meta.sample_rate,
            "frames": meta.source_samples,
            "seconds": meta.source_samples / meta.sample_rate,
            "params": spec.to_dict(),
            "written": time.time(),
        }
        atomic_write_text(directory / f"{stem}.json", json.dumps(sidecar, indent=1))
        return result

    def _write_audio(self, job_id: str, spec: JobSpec, take: Candidate, preview: bool) -> ResultFile:
        directory = self.job_dir(job_id)
        directory.mkdir(parents=True, exist_ok=True)
        stem = f"candidate-{take.index}" + (".preview" if preview else "")
        path = directory / f"{stem}.{spec.output.container}"
        samples = np.asarray(take.audio, dtype=np.float32)
        if samples.ndim == 1:
            samples = samples[:, None]  # (frames, 1)
        if samples.ndim != 2 or samples.shape[0] == 0:
            raise AudioError(f"{path}: the model returned no audio for candidate {take.index}")
        audio = Audio(samples, take.sample_rate).resampled(spec.sample_rate)
        bits = spec.output.bit_depth or spec.project.bit_depth  # output's if it names one, else the project's
        if spec.output.container == "flac" and bits == 32:
            bits = 24  # FLAC cannot store float
        written = write_audio(path, audio.samples, audio.sample_rate, bits=bits)
        result = ResultFile(
            path=str(path),
            sample_rate=written.sample_rate,
            frames=written.frames,
            seed=take.seed,
            candidate=take.index,
            level=take.level,
            adherence=None if preview else take.adherence,
        )
        start_s = spec.project.generation_start_s
        sidecar = {
            "format": SIDECAR_FORMAT,
            "version": SIDECAR_VERSION,
            "kind": "audio",
            "job_id": job_id,
            "file": path.name,
            "preview": preview,
            "candidate": take.index,
            "seed": take.seed,
            "level": take.level,
            "adherence": None if preview else take.adherence,
            "model": spec.model,
            "sample_rate": written.sample_rate,
            "bit_depth": bits,
            "channels": written.channels,
            "frames": written.frames,
            "seconds": written.frames / written.sample_rate,
            "clipped_samples": written.clipped_samples,
            "project_position_s": start_s,
            "project_position_samples": int(round(start_s * written.sample_rate)),
            "params": spec.to_dict(),
            "written": time.time(),
        }
        atomic_write_text(directory / f"{stem}.json", json.dumps(sidecar, indent=1))
        return result

    def finish(self, job_id: str, spec: JobSpec, results: tuple[ResultFile, ...]) -> None:
        """Write the manifest that marks the job finished (after every take is on disk)."""
        manifest = {
            "format": SIDECAR_FORMAT,
            "version": SIDECAR_VERSION,
            "job_id": job_id,
            "spec": spec.to_dict(),
            "results": [r.to_dict() for r in results],
            "finished": time.time(),
        }
        atomic_write_text(self.job_dir(job_id) / MANIFEST, json.dumps(manifest, indent=1))

    def clear(self, job_id: str) -> None:
        """Remove a job's renders (before it runs again); spooled inputs stay."""
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)

    def remove_job(self, job_id: str) -> None:
        """Remove everything the store holds for a job: renders and spooled inputs (retention)."""
        shutil.rmtree(self.job_dir(job_id), ignore_errors=True)
        self.discard_inputs(job_id)

    # -- reading --------------------------------------------------------------------------------
    def finished(self, job_id: str) -> StoredJob | None:
        """The job's manifest if it finished and every listed file is present, else ``None``."""
        return _read_manifest(self.job_dir(job_id) / MANIFEST)

    def list_results(self) -> list[StoredJob]:
        """Every finished job found on disk, oldest first (independent of the journal)."""
        found = [_read_manifest(p) for p in sorted(self.renders.glob(f"*/{MANIFEST}"))]
        return sorted((job for job in found if job is not None), key=lambda job: job.finished)

    def remove_temp_files(self) -> list[Path]:
        """Delete temp files left by a writer that died mid-write; returns what was removed."""
        removed = []
        for path in self.root.rglob(f"{TEMP_PREFIX}*"):
            if path.is_file():
                path.unlink(missing_ok=True)
                removed.append(path)
        return removed


def _read_manifest(path: Path) -> StoredJob | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        results = tuple(ResultFile.from_dict(r) for r in data["results"])
        job = StoredJob(str(data["job_id"]), JobSpec.from_dict(data["spec"]), results, float(data["finished"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all(Path(r.path).is_file() for r in job.results):
        return None
    return job


def _safe_id(job_id: str) -> str:
    if not job_id or not all(ch.isalnum() or ch in "-_" for ch in job_id):
        raise ValueError(f"job id {job_id!r} is not a safe file name")
    return job_id
