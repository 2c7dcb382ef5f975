"""``segue convert``: turn official OpenAI checkpoints or a Hugging Face folder into a segue model directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from model.errors import InputError

NAME = "convert"
HELP = "convert official Jukebox checkpoints or a Hugging Face Jukebox folder into a segue model directory"
DESCRIPTION = """\
Convert Jukebox weights into a segue model directory (manifest.json + config JSON + safetensors per
component). The result loads without unpickling anything.

  segue convert --format openai --vqvae vqvae.pth.tar -o models/jukebox
  segue convert --format hf path/to/hf-jukebox -o models/jukebox

Official .pth.tar files are Python pickles. They are opened tensor-only; if a file holds other
pickled objects, conversion stops and asks for --trust-pickle (only for files from a trusted source).
Only the VQ-VAE is converted by this version; priors found in a Hugging Face folder are reported
and skipped.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "source",
        nargs="?",
        type=Path,
        metavar="HF_DIR",
        help="--format hf: the Hugging Face folder (config.json + model.safetensors or pytorch_model.bin)",
    )
    parser.add_argument(
        "--format",
        required=True,
        choices=["openai", "hf"],
        help="'openai': official .pth.tar files given by --vqvae; 'hf': a Hugging Face transformers folder",
    )
    parser.add_argument(
        "--vqvae", type=Path, metavar="FILE", help="--format openai: the VQ-VAE checkpoint (vqvae.pth.tar)"
    )
    parser.add_argument(
        "--hps",
        type=Path,
        metavar="HPS.json",
        help="--format openai: Jukebox hyper-parameters (Jukebox names, JSON object) for a custom-trained "
        "VQ-VAE; keys not given keep the released VQ-VAE's values. Default: the hps saved in the checkpoint, "
        "else the released VQ-VAE",
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow full unpickling of .pth.tar/.bin files that hold Python objects besides tensors; "
        "this can run code, so use it only for files from a source you trust",
    )
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="MODEL_DIR", help="directory to create"
    )
    parser.add_argument(
        "--force", action="store_true", help="replace MODEL_DIR if it already holds a segue model"
    )
    parser.add_argument(
        "--name", help="model name recorded in the manifest and in codes files (default: MODEL_DIR's name)"
    )


def run(args: argparse.Namespace) -> int:
    from model.checkpoint.convert import convert_hf, convert_openai

    if args.format == "openai":
        if args.source is not None:
            raise InputError(f"--format openai takes checkpoint files by option (--vqvae), not {args.source}")
        if args.vqvae is None:
            raise InputError("--format openai needs --vqvae vqvae.pth.tar")
        result = convert_openai(
            args.vqvae,
            args.output,
            hps_path=args.hps,
            trust_pickle=args.trust_pickle,
            force=args.force,
            name=args.name,
        )
    else:
        if args.source is None:
            raise InputError(
                "--format hf needs the Hugging Face folder: segue convert --format hf HF_DIR -o MODEL_DIR"
            )
        if args.vqvae is not None or args.hps is not None:
            raise InputError(
                "--vqvae and --hps belong to --format openai; a Hugging Face folder carries its own config"
            )
        result = convert_hf(
            args.source, args.output, trust_pickle=args.trust_pickle, force=args.force, name=args.name
        )
    for entry in result.components:
        print(f"{entry.name}: {entry.kind}, {entry.weights_file} (sha256 {entry.sha256[:12]})")
    if result.skipped:
        print(f"skipped (not supported yet): {', '.join(result.skipped)}")
    print(f"wrote {result.model_dir} ({result.identity})")
    return 0
