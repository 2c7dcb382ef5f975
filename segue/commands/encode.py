"""``segue encode``: audio file -> codes file with every VQ-VAE level."""

from __future__ import annotations

import argparse
from pathlib import Path

from segue.commands._model import (
    add_chunk_argument,
    add_model_arguments,
    check_output_file,
    chunk_seconds,
    load_vqvae_on,
)

NAME = "encode"
HELP = "encode an audio file into VQ-VAE codes (all levels) saved as a .npz codes file"
DESCRIPTION = """\
Encode audio into the VQ-VAE's discrete codes, one array per level (level 0 = bottom, hop 8 for
Jukebox). The audio is read in any format libsndfile reads, mixed down to mono and resampled to the
model's rate (44100 Hz for Jukebox).

  segue encode --model models/jukebox song.flac -o song.codes.npz
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("input", type=Path, metavar="IN", help="audio file (WAV, FLAC, AIFF, OGG, MP3, ...)")
    add_model_arguments(parser)
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="CODES.npz", help="codes file to write"
    )
    add_chunk_argument(parser, "encode", "whole file at once; results equal the whole-file encoding")


def run(args: argparse.Namespace) -> int:
    import torch

    from common.errors import InputError
    from model.audio import read_audio
    from model.checkpoint.builders import model_identity
    from model.codes import CodesMeta, save_codes
    from segue.progress_bars import ProgressBars

    if args.output.suffix.lower() != ".npz":  # 'song.wav' would be a zip a DAW takes for broken audio
        raise InputError(f"-o {args.output}: codes files are .npz archives; name it e.g. {args.output.with_suffix('.npz')}")
    check_output_file("-o", args.output)  # before the model loads and encodes, not after
    seconds = chunk_seconds(args.chunk_seconds)
    device, vqvae = load_vqvae_on(args.model, args.device)
    cfg = vqvae.config
    audio = read_audio(args.input, sample_rate=cfg.sample_rate, channels=1)
    top_hop = cfg.hop_lengths[-1]
    if audio.frames < top_hop:
        raise InputError(
            f"{args.input}: {audio.frames} samples is too short; the model needs at least {top_hop} "
            f"samples ({top_hop / cfg.sample_rate * 1000:.1f} ms)"
        )
    chunk = None if seconds is None else int(round(seconds * cfg.sample_rate))
    x = torch.from_numpy(audio.samples)[None].to(device)  # (1, T, 1)
    with ProgressBars() as bars, torch.inference_mode():
        codes = vqvae.encode(x, chunk_samples=chunk, progress=bars)
    meta = CodesMeta(
        sample_rate=cfg.sample_rate,
        hop_lengths=tuple(cfg.hop_lengths),
        codebook_size=cfg.codebook_size,
        model=model_identity(args.model),
        source_samples=audio.frames,
        source_name=args.input.name,
    )
    save_codes(args.output, codes, meta)
    sizes = ", ".join(f"level {lv}: {c.shape[-1]}" for lv, c in enumerate(codes))
    print(f"wrote {args.output} ({audio.duration:.2f} s; tokens {sizes})")
    return 0
