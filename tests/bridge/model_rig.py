"""A tiny real model folder for the model-backend tests, a region file and a recording ``RunEvents``."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from bridge.engine.backend import Candidate, Take
from bridge.jobs import AudioInput, JobKind, JobSpec, Length, ProjectContext
from common.progress import Progress
from tests.helpers.factories import SR, build, tiny_model_dir, tiny_vqvae


def make_models(root: Path) -> Path:
    """``root/tiny`` (VQ-VAE + 3 priors + ids), ``root/sketch`` (top prior only), ``root/codec`` (VQ-VAE only),
    ``root/plain`` (top prior and level-1 upsampler without label conditioning, no ids)."""
    from model.checkpoint.model_dir import save_component
    from model.prior import presets
    from model.sampling.loading import save_prior

    tiny_model_dir(root / "tiny")
    unlabelled = {"labels": {"enabled": False}}
    plain = (presets.with_changes(presets.tiny_prior(), **unlabelled), presets.with_changes(presets.tiny_upsampler(1), **unlabelled))
    for name, configs in (("sketch", (presets.tiny_prior(),)), ("codec", ()), ("plain", plain)):
        vq = tiny_vqvae()
        save_component(root / name, "vqvae", "vqvae", vq.config.to_dict(), vq.state_dict(), model_name=name)
        for config in configs:
            save_prior(root / name, build(config, seed=config.level))
    (root / "sketch" / "ids").symlink_to(root / "tiny" / "ids")
    return root


def write_region(path: Path, frames: int, sample_rate: int = SR) -> Path:
    t = np.arange(frames) / sample_rate
    sf.write(path, 0.3 * np.sin(2 * np.pi * 330 * t), sample_rate)
    return path


def job(kind: str = "continue", *, region: Path | None = None, codes: Path | None = None, seconds: float = 0.05,
        candidates: int = 1, seeds: tuple[int, ...] = (7,), model: str = "tiny", **kw: object) -> JobSpec:
    return JobSpec(
        kind=JobKind(kind), model=model, length=Length(seconds=seconds),
        project=ProjectContext(sample_rate=48000, region_start_s=1.0, region_end_s=1.3),
        region=None if region is None else AudioInput(path=str(region)),
        codes=None if codes is None else AudioInput(path=str(codes), format="codes"),
        candidates=candidates, seeds=seeds, artist=str(kw.pop("artist", "ada")), genre=str(kw.pop("genre", "jazz")),
        **kw,  # type: ignore[arg-type]
    )  # fmt: skip


def rendered(takes: Sequence[Take]) -> list[Candidate]:
    """The takes of a sampling job, checked to be audio."""
    audio = [t for t in takes if isinstance(t, Candidate)]
    assert len(audio) == len(takes), f"expected audio takes, got {takes}"
    return audio


@dataclass
class Recorder:
    """``RunEvents`` that records everything, with times; ``on_progress`` lets a test act mid-run."""

    log: list[tuple[str, object, float]] = field(default_factory=list)
    on_progress: object = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def progress(self, item: Progress) -> None:
        with self.lock:
            self.log.append(("progress", item, time.monotonic()))
        if callable(self.on_progress):
            self.on_progress(item)

    def preview(self, take: Candidate) -> None:
        self.log.append(("preview", take, time.monotonic()))

    def level_done(self, level: int) -> None:
        self.log.append(("level_done", level, time.monotonic()))

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.log if k != "progress"]

    def of(self, kind: str) -> list[object]:
        return [v for k, v, _ in self.log if k == kind]
