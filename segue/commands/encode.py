"""``segue encode``: audio file -> codes file with every VQ-VAE level."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from segue.device import add_device_argument

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
    add_device_argument(parser)
    parser.add_argument("input", type=Path, metavar="IN", help="audio file (WAV, FLAC, AIFF, OGG, MP3, ...)")
    parser.add_argument("--model", type=Path, required=True, metavar="DIR", help="segue model directory")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="CODES.npz", help="codes file to write"
    )
    parser.add_argument(
        "--chunk-seconds",
        type=float,
        metavar="S",
        help="encode in overlapping pieces of about S seconds to bound memory (default: automatic; "
        "0 = whole file at once). Results equal the whole-file encoding",
    )


def run(args: argparse.Namespace) -> int:
    import torch

    from common.errors import InputError
    from model.audio import read_audio
    from model.checkpoint.builders import load_vqvae, model_identity
    from model.codes import CodesMeta, save_codes
    from segue.device import resolve_device
    from segue.progress_bars import ProgressBars

    if args.output.suffix.lower() != ".npz":  # 'song.wav' would be a zip a DAW takes for broken audio
        raise InputError(f"-o {args.output}: codes files are .npz archives; name it e.g. {args.output.with_suffix('.npz')}")
    device = resolve_device(args.device)
    vqvae = load_vqvae(args.model).to(device)
    cfg = vqvae.config
    audio = read_audio(args.input, sample_rate=cfg.sample_rate, channels=1)
    top_hop = cfg.hop_lengths[-1]
    if audio.frames < top_hop:
        raise InputError(
            f"{args.input}: {audio.frames} samples is too short; the model needs at least {top_hop} "
            f"samples ({top_hop / cfg.sample_rate * 1000:.1f} ms)"
        )
    chunk = None
    if args.chunk_seconds is not None:
        if not (math.isfinite(args.chunk_seconds) and args.chunk_seconds >= 0):
            raise InputError(f"--chunk-seconds must be a number of seconds >= 0, got {args.chunk_seconds}")
        chunk = int(round(args.chunk_seconds * cfg.sample_rate))
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
