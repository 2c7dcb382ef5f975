"""``segue sample``'s files: the flags read into a task's inputs, and a task's result written to OUTDIR."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import InputError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from model.sampling.lengths import Geometry
    from model.sampling.loading import SamplingModel
    from model.tasks import Song, TaskResult


def song_of(args: argparse.Namespace, geometry: Geometry, lyrics: str) -> Song:
    """The labels of ``--artist``, ``--genre``, the lyrics, ``--total-length`` and ``--offset``."""
    from model.sampling.lengths import label_samples
    from model.tasks import Song

    total = None if args.total_length is None else label_samples(args.total_length, geometry)
    return Song(args.artist, args.genre, lyrics, total_length=total, offset=label_samples(args.offset, geometry, "offset"))


def read_region(path: Path, end_s: float | None, geometry: Geometry) -> np.ndarray:
    """``--region`` as mono audio at the model's rate, (R, 1) float32, cut at ``--region-end`` if given."""
    from model.audio import read_audio
    from model.sampling.lengths import label_samples

    audio = read_audio(path, sample_rate=geometry.sample_rate, channels=1).samples  # (R, 1)
    if end_s is None:
        return audio
    end = label_samples(end_s, geometry, "--region-end")
    if not 0 < end <= audio.shape[0]:
        raise InputError(
            f"--region-end {end_s} s is outside the region ({path}: {audio.shape[0] / geometry.sample_rate:.2f} s): "
            "give a time inside it"
        )
    return audio[:end]


def write_run(
    args: argparse.Namespace, mode: str, model: SamplingModel, device: torch.device, result: TaskResult, lyrics: str,
    conditions: dict[str, object] | None = None,
) -> int:
    """The take decoded from every sampled level, the codes, the lyric alignment and run.json (with
    ``conditions``, the job's MIDI, stems, tempo and guidance as given); returns the number of audio files
    written."""
    from model.audio import write_audio
    from model.codes import CodesMeta, save_codes
    from model.tasks.render import decode_take

    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    geo, vq = model.geometry, model.vqvae.config
    sample = result.sample
    written = []
    for timing in sample.timings:
        lv = timing.level
        if lv == result.level:
            audio = result.audio
        else:
            audio = decode_take(model, sample.codes[lv], lv, result.start, result.frames)
        folder = out / f"level_{lv}"
        folder.mkdir(exist_ok=True)
        for i in range(result.n_candidates):
            written.append(str(write_audio(folder / f"item_{i}.wav", audio[i], geo.sample_rate).path))
    meta = CodesMeta(geo.sample_rate, tuple(vq.hop_lengths), vq.codebook_size, model.identity, sample.sample_length,
                     f"segue sample {mode}")  # fmt: skip
    save_codes(out / "codes.npz", [c.cpu() for c in sample.codes], meta)
    told = result.labels.get(geo.n_levels - 1)  # what the top prior was told (None: an unlabelled model)
    aligned = [] if args.no_align else _write_alignment(out, model, result, lyrics)
    record = {
        "command": "segue sample",
        "model": {"dir": str(args.model), "identity": model.identity},
        "mode": mode,
        "labels": {"artist": args.artist, "genre": args.genre, "lyrics": lyrics,
                   "total_length": told.total_length if told else None, "offset": told.offset if told else None},  # fmt: skip
        "inputs": {"region": str(args.region) if args.region else None, "region_end": args.region_end,
                   "codes": str(args.codes) if args.codes else None},  # fmt: skip
        "conditions": conditions,
        "length": {"samples": result.frames, "seconds": result.frames / geo.sample_rate},
        "take": {"start": result.start, "frames": result.frames, "level": result.level},
        "lowest_level": args.lowest_level,
        "device": str(device),
        "result": sample.to_dict(),
        "adherence": [a.to_dict() for a in result.adherence],  # per candidate (item_i), against --midi/--stem
        "order_by": getattr(args, "order_by", None),
        "warnings": list(result.warnings),
        "files": {"audio": written, "codes": str(out / "codes.npz"), "alignment": aligned},
    }
    (out / "run.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return len(written)


def _write_alignment(out: Path, model: SamplingModel, result: TaskResult, lyrics: str) -> list[str]:
    """Per-character and per-word timings of each candidate, for a top prior that has an alignment head."""
    from model.sampling.alignment import align_lyrics

    geo = model.geometry
    top = geo.n_levels - 1
    prior = model.priors.get(top)
    if not lyrics or top not in result.labels or prior is None or prior.config.lyrics.alignment_layer is None:
        return []
    hop_fraction = result.sample.params.hop_fraction_at(top, geo.n_levels)
    records = align_lyrics(model.levels()[top], result.sample.codes[top], result.labels[top], hop_fraction, geo.sample_rate)
    paths = []
    for i, record in enumerate(records):
        path = out / f"alignment_item_{i}.json"
        path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
        paths.append(str(path))
    return paths
