"""``ModelBackend``: the daemon's real backend, segue model directories sampled with the sampling engine.

Models are model directories (``manifest.json`` + components, see ``model.checkpoint.model_dir``):
either a mapping name → directory, or a folder whose sub-folders are model directories (named after
the sub-folder; re-scanned on every ``models()`` call, so new models appear without a restart). A
folder that is itself a model directory serves that one model.

``load`` reads the VQ-VAE and every prior onto ``config.device`` (a model with no priors can still be
loaded; jobs that need a prior then fail with a message naming the missing level). At most
``config.max_loaded`` models stay in memory; loading another evicts the least recently used.
A job runs as one of the model's tasks (``model.tasks``, through ``bridge.backend.jobs``), the same code
``segue sample`` runs. User errors are ``SegueError``s that name the problem; nothing here is allowed to
take the worker thread down.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bridge.backend.jobs import run_job
from bridge.engine.backend import RunEvents, Take
from bridge.jobs import JobSpec
from common.errors import CheckpointError, ConfigError
from common.progress import CancelToken, Progress, ProgressFn
from model.checkpoint.builders import load_vqvae, model_identity
from model.checkpoint.model_dir import MANIFEST, read_manifest
from model.prior.fast_step import STEPS
from model.sampling.loading import PRIOR_KIND, SamplingModel, load_sampling_model
from model.sampling.params import PRECISIONS, SamplingParams
from model.tasks.capabilities import Capabilities, capabilities_of
from model.tasks.song import Labelling


@dataclass(frozen=True)
class ModelBackendConfig:
    """``[model_backend]`` in the daemon's config file. ``ids_dir``: where ``{v2,v3}_{artist,genre}_ids.txt``
    live when a model directory has no ``ids/`` folder of its own."""

    device: str = "cpu"
    precision: str = "auto"  # of the priors, chosen at load: auto = measured at max_batch_size rows; the VQ-VAE stays fp32
    step: str = "auto"  # single-token step: compiled (torch.compile), eager, or auto = compiled where it works
    max_batch_size: int = 16  # candidates sampled together
    chunk_size: int = 32  # context tokens per model call when a window refills its cache
    max_loaded: int = 1  # models kept in memory
    strict_labels: bool = True  # unknown artist/genre is an error (False: map to "unknown", as Jukebox)
    ids_dir: str | None = None
    max_region_s: float = 600.0  # longest region a job reads (decoded length; a compressed hour of silence is tiny)
    encode_chunk_s: float = 0.0  # encode jobs encode the region in pieces of about this many seconds (0: automatic)

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ConfigError(f"model_backend.precision {self.precision!r} is not one of {', '.join(PRECISIONS)}")
        if self.step not in STEPS:
            raise ConfigError(f"model_backend.step {self.step!r} is not one of {', '.join(STEPS)}")
        if not 1 <= self.max_batch_size <= 1024:
            raise ConfigError(f"model_backend.max_batch_size {self.max_batch_size} is outside 1..1024")
        if not 1 <= self.chunk_size <= 65536:
            raise ConfigError(f"model_backend.chunk_size {self.chunk_size} is outside 1..65536")
        if not 1 <= self.max_loaded <= 64:
            raise ConfigError(f"model_backend.max_loaded {self.max_loaded} is outside 1..64")
        if not 0.0 < self.max_region_s <= 86400.0:
            raise ConfigError(f"model_backend.max_region_s {self.max_region_s} is outside 0..86400 (seconds, above 0)")
        if not 0.0 <= self.encode_chunk_s <= 3600.0:
            raise ConfigError(f"model_backend.encode_chunk_s {self.encode_chunk_s} is outside 0..3600 (0: automatic)")

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelBackendConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"[model_backend]: unknown option(s) {unknown}; known: {sorted(known)}")
        return cls(**dict(d))


class ModelBackend:
    """The ``bridge.backend.Backend`` of real models. Only the engine's worker calls load/unload/run."""

    def __init__(self, models: Mapping[str, str | Path] | str | Path, config: ModelBackendConfig | None = None) -> None:
        self.config = config or ModelBackendConfig()
        self._fixed = None if isinstance(models, (str, Path)) else {k: Path(v) for k, v in models.items()}
        self._root = Path(models) if isinstance(models, (str, Path)) else None
        self._loaded: OrderedDict[str, SamplingModel] = OrderedDict()
        self._caps: dict[Path, tuple[int, Capabilities]] = {}  # directory -> (manifest mtime_ns, capabilities)
        self._lock = threading.Lock()

    # -- what there is ------------------------------------------------------------------------------
    def model_dirs(self) -> dict[str, Path]:
        if self._fixed is not None:
            return dict(self._fixed)
        assert self._root is not None
        if (self._root / MANIFEST).is_file():
            return {self._root.name: self._root}
        try:
            subdirs = sorted(p for p in self._root.iterdir() if (p / MANIFEST).is_file())
        except OSError:
            return {}
        return {p.name: p for p in subdirs}

    def models(self) -> list[str]:
        return sorted(self.model_dirs())

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._loaded)

    def capabilities(self, name: str) -> Capabilities:
        """Read from the model directory's configs (no weights), re-read when its manifest changes."""
        directory = self._dir(name)
        try:
            stamp = (directory / MANIFEST).stat().st_mtime_ns
        except OSError as exc:
            raise CheckpointError(f"{directory / MANIFEST}: cannot be read ({exc.strerror})") from exc
        with self._lock:
            cached = self._caps.get(directory)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        caps = capabilities_of(directory)
        with self._lock:
            self._caps[directory] = (stamp, caps)
        return caps

    # -- memory -------------------------------------------------------------------------------------
    def load(self, name: str, progress: ProgressFn) -> None:
        directory = self._dir(name)
        progress(Progress("load", 0, 1))
        model = _load_model_dir(directory, self.config)
        with self._lock:
            self._loaded.pop(name, None)
            while len(self._loaded) >= self.config.max_loaded:
                self._loaded.popitem(last=False)
            self._loaded[name] = model
        progress(Progress("load", 1, 1))

    def unload(self, name: str) -> None:
        with self._lock:
            self._loaded.pop(name, None)

    # -- jobs ---------------------------------------------------------------------------------------
    def run(self, spec: JobSpec, events: RunEvents, cancel: CancelToken) -> Sequence[Take]:
        cancel.raise_if_cancelled()
        self.capabilities(spec.model).check(
            spec.model, spec.kind.value, spec.length_s, midi=spec.midi is not None, stems=spec.stem_labels,
            guidance=spec.guidance,
        )  # fmt: skip (the engine checked at submit; a direct caller may not have)
        spec.check_conditions(self.capabilities(spec.model))
        with self._lock:
            model = self._loaded.get(spec.model)
            if model is not None:
                self._loaded.move_to_end(spec.model)
        if model is None:  # the engine loads first; a direct caller may not have
            self.load(spec.model, events.progress)
            model = self._loaded[spec.model]
        labelling = Labelling(self._ids_dir(spec.model), self.config.strict_labels)
        return run_job(model, spec, self.params_for(spec), labelling, events, cancel, self._encode_chunk(model),
                       self.config.max_region_s)  # fmt: skip

    def params_for(self, spec: JobSpec) -> SamplingParams:
        """Sampling settings of one job: the spec's seeds and per-level temperatures, the backend's precision."""
        seeds = spec.seeds or tuple(range(spec.candidates))
        return SamplingParams(
            temperature=spec.temperatures or (0.99,), n_candidates=spec.candidates, seeds=seeds,
            max_batch_size=self.config.max_batch_size, chunk_size=self.config.chunk_size,
            precision=self.config.precision,
        )  # fmt: skip

    def _encode_chunk(self, model: SamplingModel) -> int | None:
        """Samples per encode chunk for encode jobs (None: the VQ-VAE's default)."""
        if self.config.encode_chunk_s == 0.0:
            return None
        return max(1, round(self.config.encode_chunk_s * model.vqvae.config.sample_rate))

    def _dir(self, name: str) -> Path:
        dirs = self.model_dirs()
        if name not in dirs:
            raise CheckpointError(f"no model named {name!r}; available: {', '.join(sorted(dirs)) or 'none'}")
        return dirs[name]

    def _ids_dir(self, name: str) -> Path:
        own = self._dir(name) / "ids"
        if own.is_dir() or self.config.ids_dir is None:
            return own
        return Path(self.config.ids_dir).expanduser()


def _load_model_dir(directory: Path, config: ModelBackendConfig) -> SamplingModel:
    """The VQ-VAE and every prior of ``directory``; a directory without priors gives a model that can only encode."""
    manifest = read_manifest(directory)
    if any(entry.kind == PRIOR_KIND for entry in manifest.components):
        return load_sampling_model(directory, config.device, config.precision, config.step, config.max_batch_size)
    return SamplingModel(load_vqvae(directory).to(config.device).eval(), {}, model_identity(directory))


def from_config(tables: Mapping[str, Any]) -> ModelBackend:
    """Backend factory for ``segue serve``: ``[daemon] models`` (a folder) and the ``[model_backend]`` table."""
    daemon = tables.get("daemon", {})
    models = daemon.get("models")
    if not models:
        raise ConfigError("no models folder configured: pass 'segue serve --models DIR' or set [daemon] models")
    root = Path(str(models)).expanduser()
    if not root.is_dir():
        raise ConfigError(f"models folder {root} does not exist or is not a folder")
    return ModelBackend(root, ModelBackendConfig.from_dict(tables.get("model_backend", {})))
