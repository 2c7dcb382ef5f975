"""A deterministic test double for ``bridge.backend.Backend``: sine tones, real timing, real cancel.

Each level samples ``tokens[level]`` tokens per candidate, sleeping ``token_s`` per token and checking
the cancel token between tokens, like the real sampler. After the top level it sends one preview per
candidate; the final takes are stereo sines whose pitch comes from the seed. An ``encode`` job samples
nothing and returns ``tone_codes``: a codes take whose tokens come from the seed. ``fail`` makes loading
or running fail; ``gate`` (when set) holds every run at its start until released (cancel still works).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bridge.engine.backend import Candidate, CodesTake, RunEvents, Take
from bridge.jobs import JobKind, JobSpec, Length, ProjectContext
from common.errors import CheckpointError, InputError
from common.progress import CancelToken, Progress, ProgressFn
from model.codes import CodesMeta
from model.tasks.capabilities import Capabilities


def tone(seed: int, seconds: float, sample_rate: int) -> np.ndarray:
    frames = max(1, int(round(seconds * sample_rate)))
    hz = 110.0 + seed % 880
    t = np.arange(frames, dtype=np.float64) / sample_rate
    mono = 0.5 * np.sin(2 * np.pi * hz * t)
    return np.stack([mono, mono * 0.8], axis=1).astype(np.float32)  # (frames, 2)


@dataclass
class ToneBackend:
    names: tuple[str, ...] = ("tiny", "other")
    sample_rate: int = 22050
    token_s: float = 0.002
    tokens: tuple[int, ...] = (16, 8)  # per candidate at level 0 (bottom), level 1 (top)
    load_s: float = 0.05
    fail: str | None = None  # "load", "run" (user error) or "crash" (internal error)
    gate: threading.Event | None = None
    runs: list[JobSpec] = field(default_factory=list)
    threads: set[str] = field(default_factory=set)  # names of the threads that ran model code
    _loaded: set[str] = field(default_factory=set)

    def models(self) -> list[str]:
        return list(self.names)

    def loaded(self) -> list[str]:
        return sorted(self._loaded)

    def capabilities(self, name: str) -> Capabilities:
        """Everything, MIDI, stems and guidance included: the double exercises the daemon, not a model."""
        return Capabilities(
            kinds=tuple(k.value for k in JobKind), sample_rate=self.sample_rate, n_levels=len(self.tokens),
            levels=tuple(range(len(self.tokens))), lowest_level=0, conditioners=("artist", "genre", "midi", "grid", "stems"),
            min_song_seconds=0.0, max_seconds=None, guidance=True, stems=("bass", "drums", "other", "vocals"),
        )  # fmt: skip

    def load(self, name: str, progress: ProgressFn) -> None:
        self.threads.add(threading.current_thread().name)
        steps = 5
        for i in range(steps):
            time.sleep(self.load_s / steps)
            progress(Progress("load", i + 1, steps))
        if self.fail == "load":
            raise CheckpointError(f"model {name}: the tone backend was told to fail loading")
        self._loaded = {name}  # one model in memory at a time, like a GPU-bound backend

    def unload(self, name: str) -> None:
        self._loaded.discard(name)

    def run(self, spec: JobSpec, events: RunEvents, cancel: CancelToken) -> list[Take]:
        self.runs.append(spec)
        self.threads.add(threading.current_thread().name)
        while self.gate is not None and not self.gate.wait(0.01):
            cancel.raise_if_cancelled()
        if self.fail == "run":
            raise InputError("the tone backend was told to refuse this job (allowed: fail=None)")
        if self.fail == "crash":
            raise RuntimeError("tone backend crashed")
        seeds = spec.seeds
        if spec.kind is JobKind.ENCODE:
            events.progress(Progress("encode", 1, 1))
            return [tone_codes(seeds[0], spec.length_s)]
        for level in reversed(range(len(self.tokens))):
            total = self.tokens[level] * spec.candidates
            for done in range(1, total + 1):
                time.sleep(self.token_s)
                cancel.raise_if_cancelled()
                events.progress(Progress("sample", done, total, level=level))
            if level == len(self.tokens) - 1 and level > 0:
                for k in range(spec.candidates):
                    events.preview(Candidate(k, seeds[k], tone(seeds[k], spec.length_s, 8000), 8000, level))
            events.level_done(level)
        return [
            Candidate(k, seeds[k], tone(seeds[k], spec.length_s, self.sample_rate), self.sample_rate)
            for k in range(spec.candidates)
        ]


def tone_codes(seed: int, seconds: float) -> CodesTake:
    """Codes of three levels (hops 8, 32, 128 at 8 kHz, 64 codes) for ``seconds``, drawn from ``seed``."""
    samples = max(128, int(round(seconds * 8000)) // 128 * 128)
    rng = np.random.default_rng(seed)
    codes = tuple(rng.integers(0, 64, (1, samples // hop)) for hop in (8, 32, 128))  # per level (1, tokens)
    return CodesTake(0, seed, codes, CodesMeta(8000, (8, 32, 128), 64, "tone@0", samples, "tone"))


def spec(model: str = "tiny", *, client: str = "", priority: int = 0, seconds: float = 0.5, candidates: int = 1,
         tag: str = "", sample_rate: int = 48000) -> JobSpec:
    """A small ``generate`` job; ``tag`` goes into ``artist`` so tests can tell runs apart."""
    return JobSpec(
        kind=JobKind.GENERATE,
        model=model,
        length=Length(seconds=seconds),
        project=ProjectContext(sample_rate=sample_rate, region_start_s=4.0, region_end_s=8.0),
        candidates=candidates,
        artist=tag,
        client=client,
        priority=priority,
    )


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.005)
