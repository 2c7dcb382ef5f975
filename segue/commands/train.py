"""``segue train``: train model components (``segue train prior CONFIG.toml``: one prior level on a data index)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

NAME = "train"
HELP = "train a model component (prior: one prior level on an indexed folder of audio)"
DESCRIPTION = """\
  segue train prior CONFIG.toml [--device cpu]

prior: encodes every piece of a data index (segue data index DIR) with the model directory's VQ-VAE
(codes cached beside the run), trains the prior of one level with its conditioners, and writes the prior,
its conditioners and the id lists into the model directory. Run it again on the same run_dir to resume.
See docs/training.md for every key of CONFIG.toml.
"""

TOP_KEYS = ("model_dir", "data", "level", "prior", "conditioners", "train", "run_dir", "val_fraction", "cache_dir")
CONDITIONER_KEYS = ("name", "kind", "hidden", "kernel", "dropout")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="what", metavar="WHAT")
    sub.required = True
    p = sub.add_parser("prior", help="train one prior level on a data index (see docs/training.md)",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    p.add_argument("config", type=Path, metavar="CONFIG.toml", help="the run's TOML config")
    p.add_argument("--device", default="cpu", help="torch device to train on (default cpu; cuda for a GPU)")
    _add_vqvae_arguments(sub)


def run(args: argparse.Namespace) -> int:
    if args.what == "prior":
        return _run_prior(args)
    if args.what == "vqvae":
        from segue.commands._train_vqvae import run_vqvae

        return run_vqvae(args)
    raise AssertionError(f"unknown segue train {args.what}")  # pragma: no cover (argparse refuses it first)


def _add_vqvae_arguments(sub: Any) -> None:
    """``segue train vqvae CONFIG.toml`` (its code: segue/commands/_train_vqvae.py)."""
    v = sub.add_parser("vqvae", help="train a VQ-VAE on a folder or index of audio (see docs/training.md)",
                       description=VQVAE_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    v.add_argument("config", type=Path, metavar="CONFIG.toml", help="the run's TOML config")


VQVAE_DESCRIPTION = """\
  segue train vqvae CONFIG.toml

vqvae: trains a VQ-VAE from scratch on a folder of audio (or a segue data index), holds out val_fraction of
the files, writes the VQ-VAE into the model directory and prints its reconstruction SNR and log-spectral
distance per level on the held-out files. Run it again on the same run_dir to resume.
See docs/training.md for every key of CONFIG.toml.
"""


# ---- the config -----------------------------------------------------------------------------------------


def read_config(path: Path) -> dict[str, Any]:
    """The TOML file as a dict, with unknown keys refused (``ConfigError`` naming them)."""
    from common.errors import ConfigError
    from segue.commands._toml import check_val_fraction, load_toml

    data = load_toml(path, TOP_KEYS, required=("model_dir", "data", "level"), tables=("prior", "train"))
    if not isinstance(data["level"], int) or isinstance(data["level"], bool):
        raise ConfigError(f"{path}: level = {data['level']!r} must be a whole number")
    conditioners = data.get("conditioners", [])
    if not isinstance(conditioners, list) or not all(isinstance(c, dict) for c in conditioners):
        raise ConfigError(f"{path}: conditioners must be [[conditioners]] tables")
    for i, c in enumerate(conditioners):
        bad = sorted(set(c) - set(CONDITIONER_KEYS))
        if bad:
            raise ConfigError(f"{path}: [[conditioners]] {i + 1}: unknown key(s) {', '.join(bad)} "
                              f"(known: {', '.join(CONDITIONER_KEYS)})")  # fmt: skip
        if "name" not in c or "kind" not in c:
            raise ConfigError(f"{path}: [[conditioners]] {i + 1}: needs a name and a kind")
    check_val_fraction(path, data)
    return data


def prior_config(table: dict[str, Any], level: int) -> Any:
    """The ``[prior]`` table as a ``PriorConfig``: ``preset = NAME`` (a function of model.prior.presets,
    other keys changing its fields) or every field inline."""
    import dataclasses

    from common.errors import ConfigError, SegueError
    from model.prior import presets
    from model.prior.prior_config import PriorConfig

    values = dict(table)
    try:
        if "preset" in values:
            name = values.pop("preset")
            maker = getattr(presets, str(name), None) if not str(name).startswith("_") else None
            known = sorted(n for n in vars(presets) if n in presets.OFFICIAL or n.startswith("tiny_"))
            if not callable(maker) or (name not in presets.OFFICIAL and not str(name).startswith("tiny_")):
                raise ConfigError(f"[prior] preset {name!r} is not known; choose one of {', '.join(known)}")
            config = maker(level) if name == "tiny_upsampler" else maker()
            bad = sorted(set(values) - {f.name for f in dataclasses.fields(PriorConfig)})
            if bad:
                raise ConfigError(f"[prior]: unknown key(s) {', '.join(bad)}")
            if values:  # through to_dict/from_dict, so TOML's lists become the tuples the parts hold
                config = PriorConfig.from_dict(presets.with_changes(config, **values).to_dict())
        else:
            if not values:
                raise ConfigError("[prior] is missing: give preset = \"tiny_prior\" (or another preset) or its fields")
            values.setdefault("level", level)
            values.setdefault("version", 2)
            config = PriorConfig.from_dict(values)
    except SegueError as exc:
        raise ConfigError(str(exc)) from None
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(f"[prior]: {exc}") from None
    if config.level != level:
        raise ConfigError(f"[prior] is a level-{config.level} prior, but level = {level}")
    return config


def conditioner_configs(tables: list[dict[str, Any]], prior: Any, vq_emb_width: int) -> list[Any]:
    """``[[conditioners]]`` as ``ConditionerConfig``s: n_features from the kind, width from the prior."""
    from conditioning import grid, midi, stems
    from model.conditioners.config import ConditionerConfig

    features = {"midi": midi.N_FEATURES, "grid": grid.N_FEATURES, "stem": stems.N_FEATURES, "stem_codes": vq_emb_width}
    out = []
    for t in tables:
        kind = str(t["kind"])
        out.append(ConditionerConfig.from_dict({**t, "kind": kind, "n_features": features.get(kind, 1),
                                                "width": prior.transformer.width, "level": prior.level}))  # fmt: skip
    return out


def split(n: int, fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train indices, validation indices): a seeded shuffle; at least one held out when 2+ pieces and
    ``fraction`` > 0, never all."""
    import numpy as np

    if n < 2 or fraction <= 0:
        return list(range(n)), []
    k = min(n - 1, max(1, round(n * fraction)))
    order = np.random.default_rng(seed).permutation(n)
    val = sorted(int(i) for i in order[:k])
    return [i for i in range(n) if i not in set(val)], val


# ---- the run --------------------------------------------------------------------------------------------


def _run_prior(args: argparse.Namespace) -> int:
    """Under torchrun, each process is one rank of a DDP run (model.train.distributed); rank 0 writes."""
    import torch

    from model.train.distributed import process_group

    with process_group(torch.device(args.device)) as (world, device):
        return _train_prior(args, world, device)


def _train_prior(args: argparse.Namespace, world: Any, device: Any) -> int:
    import sys

    import torch

    from common.errors import CheckpointError, ConfigError, InputError
    from model.checkpoint.priors import check_prior_fits_vqvae, read_vqvae_config
    from model.conditioners.network import ConditionerSet
    from model.data.index import index_folder
    from model.prior.prior import JukeboxPrior
    from model.train.distributed import barrier, ddp_wrap
    from model.train.prior_dataset import encode_index, read_index
    from model.train.prior_train_config import PriorTrainConfig
    from model.train.prior_trainer import save_trained, train_prior
    from segue.progress_bars import ProgressBars

    path: Path = args.config
    data = read_config(path)
    here = path.parent

    def resolve(value: Any) -> Path:
        p = Path(str(value)).expanduser()
        return p if p.is_absolute() else here / p

    model_dir = resolve(data["model_dir"])
    if not model_dir.is_dir():
        raise InputError(f"model_dir {model_dir}: not a folder (a model directory with a VQ-VAE)")
    vq = read_vqvae_config(model_dir)
    level = int(data["level"])
    prior_cfg = prior_config(data.get("prior", {}), level)
    if prior_cfg.n_bins != vq.codebook_size:
        raise ConfigError(
            f"[prior] n_bins = {prior_cfg.n_bins}, but the VQ-VAE of {model_dir} has a codebook of "
            f"{vq.codebook_size} codes: set n_bins = {vq.codebook_size}"
        )
    try:
        check_prior_fits_vqvae(prior_cfg, vq, str(path))
    except CheckpointError as exc:  # here a problem of the TOML's [prior], not of a checkpoint
        raise ConfigError(str(exc)) from None
    train_cfg = PriorTrainConfig.from_dict(dict(data.get("train", {})))
    conditioner_cfgs = conditioner_configs(data.get("conditioners", []), prior_cfg, vq.emb_width)
    run_dir = resolve(data.get("run_dir", model_dir / "runs" / f"prior_level_{level}"))
    cache_dir = resolve(data.get("cache_dir", run_dir / "codes"))

    source = resolve(data["data"])
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
    levels = (level, level + 1) if prior_cfg.is_upsampler else (level,)

    def skipped(audio: str, problem: str) -> None:
        print(f"  {audio}: {problem}", file=sys.stderr)

    from tqdm import tqdm

    from segue.progress_bars import LOG_INTERVAL_S

    if not world.main:
        barrier()  # rank 0 encodes and fills the code cache first; the other ranks then read it
    with tqdm(total=len(report.pieces), desc="encode pieces", unit="piece", leave=False, disable=not world.main,
              mininterval=0.5 if sys.stderr.isatty() else LOG_INTERVAL_S) as bar:  # fmt: skip
        items = encode_index(report, root, model_dir, levels, cache_dir=cache_dir, prior=prior_cfg,
                             conditioners=conditioner_cfgs, on_skip=skipped if world.main else None,
                             progress=lambda done, _total: bar.update(done - bar.n))  # fmt: skip
    if world.main:
        barrier()
    if not items:
        raise InputError(
            f"data {source}: no piece could be read, encoded and cut into level-{level} windows of n_ctx = "
            f"{prior_cfg.n_ctx} codes within the prior's label ranges; nothing to train on"
        )
    train_ix, val_ix = split(len(items), float(data.get("val_fraction", 0.1)), train_cfg.seed)
    torch.manual_seed(train_cfg.seed)  # the same initial weights on every rank (DDP broadcasts rank 0's too)
    prior = JukeboxPrior(prior_cfg).to(device)
    conditioners = ConditionerSet(conditioner_cfgs).to(device) if conditioner_cfgs else None
    ranks = f" on each of {world.size} processes" if world.size > 1 else ""
    if world.main:
        print(f"training the level-{level} prior on {len(train_ix)} pieces ({len(val_ix)} held out){ranks} in {run_dir}")
    with ProgressBars(delay=0.0) as bars:
        result = train_prior(prior, [items[i] for i in train_ix], train_cfg, run_dir=run_dir, conditioners=conditioners,
                             val_items=[items[i] for i in val_ix], progress=bars if world.main else None,
                             wrap=ddp_wrap(device), stream=world.rank, main=world.main)  # fmt: skip
    if not world.main:
        barrier()  # wait for rank 0's model directory before the group ends
        return 0
    written = save_trained(model_dir, prior, result.ema, conditioners)
    barrier()
    lines = _metrics(run_dir)
    train_lines = [line for line in lines if line.get("kind") == "train"]
    val_lines = [line for line in lines if line.get("kind") == "val"]
    where = f"resumed from step {result.resumed_from}, " if result.resumed_from is not None else ""
    print(f"{where}{result.step} steps; wrote {', '.join(written)} into {model_dir}")
    if train_lines:
        print(f"final train loss {train_lines[-1]['loss']:.3f} bits per token")
    if val_lines:
        print(f"final validation loss {val_lines[-1]['val_loss']:.3f} bits per token")
    return 0


def _index_root(source: Path, report: Any) -> Path:
    """The folder an index's paths are relative to: its ``root`` as written (relative to where it was
    indexed), else relative to the index file, else the index file's folder; the first that holds the
    first piece."""
    root = Path(report.root)
    candidates = [root] if root.is_absolute() else [root, source.parent / root, source.parent]
    if not report.pieces:
        return candidates[0]
    for c in candidates:
        if (c / report.pieces[0].audio).is_file():
            return c
    return candidates[-1]


def _metrics(run_dir: Path) -> list[dict[str, Any]]:
    import json

    try:
        text = (run_dir / "metrics.jsonl").read_text(encoding="utf-8")
    except OSError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
