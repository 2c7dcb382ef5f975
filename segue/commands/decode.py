"""``segue decode``: one level of a codes file -> audio file."""

from __future__ import annotations

import argparse
from pathlib import Path

from segue.commands._model import (
    add_chunk_argument,
    add_model_arguments,
    check_output_file,
    chunk_seconds,
    load_codes_for,
    load_vqvae_on,
)

NAME = "decode"
HELP = "decode one level of a codes file back to audio (32-bit float WAV by default)"
DESCRIPTION = """\
Decode the codes of one level with the VQ-VAE's decoder for that level. Level 0 (bottom) sounds
best; higher levels are coarser. Codes made by a different model are refused.

  segue decode --model models/jukebox song.codes.npz --level 0 -o song.level0.wav

A codes file with several items (batch) writes OUT-0.wav, OUT-1.wav, ...
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("codes", type=Path, metavar="CODES.npz", help="codes file written by 'segue encode'")
    add_model_arguments(parser)
    parser.add_argument("--level", type=int, required=True, help="level to decode (0 = bottom, finest)")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="OUT.wav", help="audio file (.wav or .flac)"
    )
    parser.add_argument(
        "--bits",
        type=int,
        choices=[16, 24, 32],
        default=32,
        help="32: float WAV, written exactly (default); 16/24: integer PCM (WAV or FLAC), clipped to [-1, 1]",
    )
    add_chunk_argument(parser, "decode", "all at once")
    parser.add_argument(
        "--allow-other-model",
        action="store_true",
        help="decode even if the codes were made by a different model of the same shape (results will differ)",
    )


def run(args: argparse.Namespace) -> int:
    import sys

    import torch

    from common.errors import CodesError, InputError
    from model.audio import write_audio
    from model.checkpoint.builders import model_identity
    from segue.progress_bars import ProgressBars

    seconds = chunk_seconds(args.chunk_seconds)
    check_output_file("-o", args.output)  # before the model loads and decodes, not after
    device, vqvae = load_vqvae_on(args.model, args.device)
    cfg = vqvae.config
    codes_file = load_codes_for(args.codes, cfg)
    identity = model_identity(args.model)
    same_weights = codes_file.meta.model.rsplit("@", 1)[-1] == identity.rsplit("@", 1)[-1]
    if not same_weights and not args.allow_other_model:
        raise CodesError(
            f"{args.codes}: made by model {codes_file.meta.model}, not {identity}; "
            "pass --allow-other-model to decode anyway"
        )
    if not 0 <= args.level < codes_file.levels:
        raise InputError(f"--level {args.level} is outside 0..{codes_file.levels - 1}")
    codes = torch.from_numpy(codes_file.level(args.level)).to(device)  # (N, L)
    if codes.shape[1] == 0:
        raise InputError(f"{args.codes}: level {args.level} has no tokens")
    hop = cfg.hop_lengths[args.level]
    chunk = None if seconds is None else (max(1, int(round(seconds * cfg.sample_rate / hop))) if seconds else 0)
    with ProgressBars() as bars, torch.inference_mode():
        audio = vqvae.decode(codes, args.level, chunk_tokens=chunk, progress=bars).cpu()  # (N, L * hop, 1)
    outputs = (
        [args.output]
        if audio.shape[0] == 1
        else [
            args.output.with_name(f"{args.output.stem}-{i}{args.output.suffix}")
            for i in range(audio.shape[0])
        ]
    )
    for item, path in zip(audio, outputs):
        result = write_audio(path, item.numpy(), cfg.sample_rate, bits=args.bits)
        print(f"wrote {path} ({result.frames / cfg.sample_rate:.2f} s, {args.bits}-bit)")
        if result.clipped_samples:
            print(f"warning: {result.clipped_samples} samples clipped to [-1, 1] in {path}", file=sys.stderr)
    return 0
