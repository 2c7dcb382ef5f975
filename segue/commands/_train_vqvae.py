"""``segue train vqvae CONFIG.toml``: train a VQ-VAE on a folder (or index) of audio into a model directory.

Kept apart from ``segue.commands.train`` (which registers the sub-command) so that the prior's path and this
one can change independently. ``run_dir/train_state.safetensors`` holds the training state: a run on the same
run_dir resumes from it (docs/training.md).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

CHECKPOINT = "train_state.safetensors"
TOP_KEYS = ("model_dir", "model_name", "data", "val_fraction", "seed", "vqvae", "train", "run_dir")
VALIDATION_SECONDS = 60.0  # per held-out file, from its start: enough for SNR and LSD, bounded in time


def read_toml(path: Path) -> dict[str, Any]:
    """The TOML file as a dict; unreadable or invalid TOML, unknown or missing keys are one-line errors."""
    from common.errors import ConfigError
    from segue.commands._toml import check_val_fraction, load_toml

    data = load_toml(path, TOP_KEYS, required=("model_dir", "data", "vqvae"), tables=("vqvae", "train"))
    check_val_fraction(path, data)
    seed = data.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f"{path}: seed = {seed!r} must be a whole number")
    return data


def vqvae_config(table: dict[str, Any]) -> Any:
    """``[vqvae]`` as a ``VQVAEConfig``: every field inline (model/ has no VQ-VAE presets, so ``preset`` is refused)."""
    from common.errors import ConfigError, SegueError
    from model.vqvae import VQVAEConfig

    if "preset" in table:
        raise ConfigError(
            "[vqvae]: there are no VQ-VAE presets; give the VQVAEConfig fields inline "
            "(levels, downs_t, strides_t, emb_width, codebook_size, width, depth, multipliers, ...)"
        )
    if not table:
        raise ConfigError("[vqvae] is empty: give the VQVAEConfig fields (levels, downs_t, strides_t, ...)")
    known = {f.name for f in dataclasses.fields(VQVAEConfig)}
    unknown = sorted(set(table) - known)
    # VQVAEConfig.from_dict skips training keys silently; here they belong in [train.training]
    if unknown:
        raise ConfigError(f"[vqvae]: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    try:
        return VQVAEConfig.from_dict(table)
    except SegueError as exc:
        raise ConfigError(f"[vqvae]: {exc}") from None
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"[vqvae]: {exc}") from None


def train_config(table: dict[str, Any]) -> Any:
    """``[train]`` (with an optional ``[train.training]`` of loss weights and codebook EMA) as a ``VQVAETrainConfig``."""
    from common.errors import ConfigError, SegueError
    from model.train.vqvae_trainer import VQVAETrainConfig
    from model.vqvae.training import VQVAETraining

    fields = {f.name: f for f in dataclasses.fields(VQVAETrainConfig)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        raise ConfigError(
            f"[train]: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(fields))})"
        )
    values = dict(table)
    defaults = VQVAETrainConfig()
    for name, value in values.items():
        if name == "training":
            continue
        default = getattr(defaults, name)
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        else:
            ok = isinstance(value, str)
        if not ok:
            raise ConfigError(f"[train]: {name} = {value!r} must be of the type of its default {default!r}")
    if values.get("precision", "fp32") not in ("fp32", "bf16"):
        raise ConfigError(f'[train]: precision = {values["precision"]!r} must be "fp32" or "bf16"')
    if "training" in values:
        if not isinstance(values["training"], dict):
            raise ConfigError("[train.training] must be a table")
        try:
            values["training"] = VQVAETraining.from_dict(values["training"])
        except SegueError as exc:
            raise ConfigError(f"[train.training]: {exc}") from None
        except TypeError as exc:
            raise ConfigError(f"[train.training]: {exc}") from None
    values = {k: float(v) if k != "training" and isinstance(getattr(defaults, k), float) else v
              for k, v in values.items()}  # fmt: skip
    return VQVAETrainConfig(**values)


def audio_files(source: Path) -> list[Path]:
    """The audio of ``data``: a folder (indexed with ``index_folder``, so unreadable files are reported and
    skipped) or an index JSON of ``segue data index``; paths sorted, for a reproducible split."""
    from common.errors import InputError
    from model.data.index import index_folder
    from model.train.prior_dataset import read_index
    from segue.commands.train import _index_root

    if source.is_dir():
        report = index_folder(source)
        root = source
        for file, problem in report.skipped:
            print(f"  skipped {file}: {problem}", file=sys.stderr)
    elif source.is_file():
        report = read_index(source)
        root = _index_root(source, report)
    else:
        raise InputError(f"data {source}: no such index file or folder")
    files = sorted({root / p.audio for p in report.pieces})
    if not files:
        raise InputError(f"data {source}: no readable audio pieces (indexed with segue data index's rules)")
    return files


def validate(vqvae: Any, clips: list[Any]) -> list[tuple[float, float]]:
    """Per level (bottom first): mean (SNR dB, log-spectral distance dB) of the held-out clips' reconstructions."""
    import numpy as np
    import torch

    from model.metrics import log_spectral_distance_db, snr_db

    top = vqvae.config.hop_lengths[-1]
    limit = int(VALIDATION_SECONDS * vqvae.config.sample_rate)
    scores: list[list[tuple[float, float]]] = [[] for _ in range(vqvae.config.levels)]
    vqvae.eval()
    for clip in clips:
        x = clip[: min(limit, clip.shape[0]) // top * top]
        if x.shape[0] < max(top, 2048):
            continue
        audio = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None, :, None]
        codes = vqvae.encode(audio)
        for level, c in enumerate(codes):
            y = vqvae.decode(c, level)[0, :, 0].float().numpy()
            scores[level].append((snr_db(x, y), log_spectral_distance_db(x, y)))
    return [(float(np.mean([s for s, _ in lv])), float(np.mean([d for _, d in lv]))) for lv in scores if lv]


def run_vqvae(args: argparse.Namespace) -> int:
    import json

    import torch

    from common.errors import InputError
    from model.checkpoint.model_dir import MANIFEST, read_manifest, save_component
    from model.train.data import AudioChunks, bandwidth, load_clips
    from model.train.vqvae_trainer import TrainLog, check_train_config, train_vqvae
    from model.vqvae import VQVAE
    from segue.commands.train import split

    path: Path = args.config
    data = read_toml(path)
    here = path.parent

    def resolve(value: Any) -> Path:
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else here / p

    config = vqvae_config(data["vqvae"])
    train_cfg = train_config(data.get("train", {}))
    model_dir = resolve(data["model_dir"])
    run_dir = resolve(data.get("run_dir", model_dir / "runs" / "vqvae"))
    checkpoint = run_dir / CHECKPOINT
    resuming = checkpoint.is_file()
    if (
        not resuming
        and (model_dir / MANIFEST).is_file()
        and any(e.name == "vqvae" for e in read_manifest(model_dir).components)
    ):
        raise InputError(
            f"model_dir {model_dir}: already holds a VQ-VAE (priors may depend on it); choose a new folder"
        )
    seed = int(data.get("seed", 0))
    torch.manual_seed(seed)
    vqvae = VQVAE(config)
    check_train_config(vqvae, train_cfg)

    files = audio_files(resolve(data["data"]))
    train_ix, val_ix = split(len(files), float(data.get("val_fraction", 0.1)), seed)
    clips = load_clips(files, config.sample_rate)
    train_clips = [clips[i] for i in train_ix]
    chunks = AudioChunks(train_clips, train_cfg.sample_length, seed=seed)
    bw = bandwidth(train_clips, sample_rate=config.sample_rate)

    run_dir.mkdir(parents=True, exist_ok=True)
    metrics = run_dir / "metrics.jsonl"
    if not resuming:
        metrics.write_text("", encoding="utf-8")

    def log(line: TrainLog) -> None:
        with metrics.open("a", encoding="utf-8") as f:
            f.write(json.dumps(dataclasses.asdict(line)) + "\n")
        usage = "/".join(f"{u:.0f}" for u in line.codebook_usage)
        print(f"  step {line.step}: loss {line.loss:.4f}, codes in use {usage}", flush=True)

    print(f"training a {config.levels}-level VQ-VAE on {len(train_ix)} files ({len(val_ix)} held out), "
          f"{train_cfg.steps} steps; metrics in {metrics}")  # fmt: skip
    if resuming:
        print(f"resuming from {checkpoint}")
    logs = train_vqvae(vqvae, chunks, bw, train_cfg, on_log=log, checkpoint=checkpoint)
    name = str(data.get("model_name", model_dir.name))
    save_component(model_dir, "vqvae", "vqvae", config.to_dict(), vqvae.state_dict(), model_name=name)
    if logs:
        print(f"final train loss {logs[-1].loss:.4f}")
    scores = validate(vqvae, [clips[i] for i in val_ix])
    if scores:
        print(f"validation on {len(val_ix)} held-out files (higher SNR, lower LSD are better):")
        for level, (snr, lsd) in enumerate(scores):
            print(f"  level {level} (hop {config.hop_lengths[level]}): SNR {snr:.2f} dB, LSD {lsd:.2f} dB")
    else:
        print("no held-out files to validate on (val_fraction = 0, or a single file)")
    print(f"wrote the VQ-VAE (component vqvae of model {name!r}) into {model_dir}")
    return 0
