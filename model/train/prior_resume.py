"""What a prior training run must share with its checkpoint to resume it, and the metrics it keeps.

A run resumes only with the same prior, conditioners, adapters, trained parameters, data and every
training field that changes the weights (``CADENCE_FIELDS``, how often it logs, checkpoints and
validates, may change); anything else is a ``ConfigError`` naming the differences, since the resumed
run would no longer end with the weights of an uninterrupted one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from model.conditioners.lora import LoraSet
from model.conditioners.network import ConditionerSet
from model.prior.prior import JukeboxPrior
from model.train.prior_checkpoint import TrainingCheckpoint, checkpoint_path
from model.train.prior_train_config import CADENCE_FIELDS, PriorTrainConfig


def run_header(
    config: PriorTrainConfig, prior: JukeboxPrior, conditioners: ConditionerSet | None, lora: LoraSet | None,
    params: list[str], fingerprint: str,
) -> dict[str, Any]:  # fmt: skip
    """The JSON a checkpoint of this run carries (``step`` and ``seconds`` are added when it is written)."""
    return {
        "config": config.to_dict(),
        "prior": prior.config.to_dict(),
        "conditioners": [k.to_dict() for k in conditioners.configs()] if conditioners is not None else [],
        "lora": lora.config.to_dict() if lora is not None else None,
        "params": params,
        "data": fingerprint,
    }


def check_resumable(run_dir: Path, checkpoint: TrainingCheckpoint, header: dict[str, Any], config: PriorTrainConfig) -> None:
    """``ConfigError`` unless ``checkpoint`` was written by this run (same everything but the cadence)."""
    saved = checkpoint.header
    where = f"{checkpoint_path(run_dir)} (step {checkpoint.step})"
    fresh = "resume with the same config and data, or give another run_dir to start afresh"
    old = {k: v for k, v in saved.get("config", {}).items() if k not in CADENCE_FIELDS}
    new = {k: v for k, v in header["config"].items() if k not in CADENCE_FIELDS}
    differ = sorted(set(old) | set(new), key=str)
    changed = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in differ if old.get(k) != new.get(k)]
    if changed:
        raise ConfigError(f"{where} was written with other training settings ({'; '.join(changed)}): {fresh}")
    for key, what in (("prior", "prior config"), ("conditioners", "conditioners"), ("lora", "LoRA adapters"),
                      ("params", "trained parameters"), ("data", "training items")):  # fmt: skip
        if saved.get(key) != header[key]:
            raise ConfigError(f"{where} was written for other {what}: {fresh}")
    if checkpoint.step > config.steps:
        raise ConfigError(f"{where} is past this run's {config.steps} steps: {fresh}")


def trim_metrics(path: Path, step: int) -> None:
    """Drop the metric lines after ``step`` (written after the checkpoint by a run that was then killed:
    the resumed run writes them again) and a torn last line."""
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and int(record.get("step", 0)) <= step:
            kept.append(line)
    path.write_text("".join(k + "\n" for k in kept), encoding="utf-8")
