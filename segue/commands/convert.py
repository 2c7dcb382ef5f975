"""``segue convert``: turn official OpenAI checkpoints or a Hugging Face folder into a segue model directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from common.errors import InputError

NAME = "convert"
HELP = "convert official Jukebox checkpoints or a Hugging Face Jukebox folder into a segue model directory"
DESCRIPTION = """\
Convert Jukebox weights into a segue model directory (manifest.json + config JSON + safetensors per
component). The result loads without unpickling anything.

  segue convert --format openai --vqvae vqvae.pth.tar -o models/jukebox
  segue convert --format openai --vqvae vqvae.pth.tar --preset 1b_lyrics \\
      --prior-level-0 prior_level_0.pth.tar --prior-level-1 prior_level_1.pth.tar \\
      --prior-level-2 prior_level_2.pth.tar -o models/jukebox-1b
  segue convert --format openai --preset 5b --prior-level-2 prior_level_2.pth.tar -o models/jukebox
  segue convert --format hf path/to/hf-jukebox -o models/jukebox

Without --vqvae, the priors are added to the existing model directory given by -o (its VQ-VAE must fit
them); replacing a prior level it already has needs --force. With --vqvae a new directory is written
(--force replaces an old one as a whole, priors included).

Prior hyper-parameters, first that applies: --hps (one JSON object for the one prior given, or objects
keyed "prior_level_0/1/2" and "vqvae"), --preset (released configs: top prior of that model, the shared
upsamplers for levels 0 and 1), the hps saved in the checkpoint.

Official .pth.tar files are Python pickles. They are opened tensor-only; if a file holds other
pickled objects, conversion stops and asks for --trust-pickle (only for files from a trusted source).
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
    for level in range(3):
        parser.add_argument(
            f"--prior-level-{level}",
            type=Path,
            metavar="FILE",
            help=f"--format openai: the level-{level} prior checkpoint (prior_level_{level}.pth.tar)",
        )
    parser.add_argument(
        "--preset",
        choices=["5b", "5b_lyrics", "1b_lyrics"],
        help="--format openai: the released hyper-parameters for the priors given (level 2: that model's top "
        "prior; levels 0 and 1: the upsamplers every release shares)",
    )
    parser.add_argument(
        "--hps",
        type=Path,
        metavar="HPS.json",
        help="--format openai: Jukebox hyper-parameters (Jukebox names, JSON object). One object applies to the "
        "VQ-VAE when no prior is given, else to the one prior given; or key objects by 'vqvae' and "
        "'prior_level_0/1/2'. VQ-VAE keys not given keep the released VQ-VAE's values. Default: the hps saved "
        "in each checkpoint (VQ-VAE: else the released one)",
    )
    parser.add_argument(
        "--trust-pickle",
        action="store_true",
        help="allow full unpickling of .pth.tar/.bin files that hold Python objects besides tensors; "
        "this can run code, so use it only for files from a source you trust",
    )
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar="MODEL_DIR",
        help="directory to create (or, without --vqvae, the model directory to add priors to)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="with --vqvae: replace MODEL_DIR if it already holds a segue model; without: replace prior levels "
        "it already has",
    )
    parser.add_argument(
        "--name", help="model name recorded in the manifest and in codes files (default: MODEL_DIR's name)"
    )


def run(args: argparse.Namespace) -> int:
    from model.checkpoint.convert import convert_hf, convert_openai

    priors = {
        level: path for level in range(3) if (path := getattr(args, f"prior_level_{level}")) is not None
    }
    if args.format == "openai":
        if args.source is not None:
            raise InputError(
                f"--format openai takes checkpoint files by option (--vqvae, --prior-level-N), not {args.source}"
            )
        if args.vqvae is None and not priors:
            raise InputError(
                "--format openai needs --vqvae vqvae.pth.tar and/or --prior-level-N prior_level_N.pth.tar"
            )
        if args.preset is not None and not priors:
            raise InputError("--preset describes priors; give them with --prior-level-0/1/2")
        result = convert_openai(
            args.vqvae,
            args.output,
            priors=priors,
            hps_path=args.hps,
            preset=args.preset,
            trust_pickle=args.trust_pickle,
            force=args.force,
            name=args.name,
        )
    else:
        if args.source is None:
            raise InputError(
                "--format hf needs the Hugging Face folder: segue convert --format hf HF_DIR -o MODEL_DIR"
            )
        if args.vqvae is not None or args.hps is not None or priors or args.preset is not None:
            raise InputError(
                "--vqvae, --prior-level-N, --preset and --hps belong to --format openai; "
                "a Hugging Face folder carries its own config"
            )
        result = convert_hf(
            args.source, args.output, trust_pickle=args.trust_pickle, force=args.force, name=args.name
        )
    for entry in result.components:
        print(f"{entry.name}: {entry.kind}, {entry.weights_file} (sha256 {entry.sha256[:12]})")
    if result.skipped:
        print(f"skipped (listed in config.json, no weights): {', '.join(result.skipped)}")
    print(f"wrote {result.model_dir} ({result.identity})")
    return 0
