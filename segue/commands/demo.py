"""``segue demo``: the main job on the bundled default model, with nothing to download."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

NAME = "demo"
HELP = "run the bundled demo: encode and decode a clip with the bundled model and report quality"
DESCRIPTION = """\
Runs segue's model stack end to end on files that ship with it: the bundled demo clip (12 s of
music rendered by segue's own synthesiser) is encoded into VQ-VAE codes at every level and decoded
back from each level on its own, as a continuation job does before and after sampling. Writes the
codes, one WAV per level and a JSON report with the reconstruction quality of each level.

  segue demo                       # writes ./segue-demo/
  segue demo --input my_loop.wav   # the same on your own audio
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from segue.device import add_device_argument

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    add_device_argument(parser)
    parser.add_argument("-o", "--output", type=Path, default=Path("segue-demo"), metavar="DIR",
                        help="folder for the results (default: ./segue-demo)")
    parser.add_argument("--input", type=Path, metavar="AUDIO",
                        help="audio file to use instead of the bundled clip (any libsndfile format)")
    parser.add_argument("--model", type=Path, metavar="DIR",
                        help="model directory to use instead of the bundled demo model")
    parser.add_argument("--max-seconds", type=float, default=60.0, metavar="S",
                        help="use at most the first S seconds of the input (default 60)")


def run(args: argparse.Namespace) -> int:
    import torch

    from common.errors import InputError
    from model.assets import demo_clip_path, demo_model_dir
    from model.audio import read_audio, write_audio
    from model.checkpoint.builders import load_vqvae, model_identity
    from model.codes import save_codes
    from model.metrics import log_spectral_distance_db, snr_db
    from model.sampling.hooks import Hooks
    from model.sampling.loading import SamplingModel
    from model.tasks import encode_region
    from segue.commands._model import check_output_folder
    from segue.device import resolve_device
    from segue.progress_bars import ProgressBars

    model_dir = args.model or demo_model_dir()
    source = args.input or demo_clip_path()
    if args.max_seconds <= 0:
        raise InputError(f"--max-seconds must be positive, got {args.max_seconds}")
    check_output_folder("-o", args.output)  # a file on the way to DIR was an internal error at out.mkdir
    device = resolve_device(args.device)
    vqvae = load_vqvae(model_dir).to(device)
    cfg = vqvae.config
    audio = read_audio(source, sample_rate=cfg.sample_rate, channels=1)
    top_hop = cfg.hop_lengths[-1]
    frames = min(audio.frames, int(args.max_seconds * cfg.sample_rate)) // top_hop * top_hop
    if frames == 0:
        raise InputError(f"{source}: too short; at least {top_hop} samples are needed")
    clip = audio.samples[:frames, 0]
    out: Path = args.output
    out.mkdir(parents=True, exist_ok=True)
    write_audio(out / "original.wav", clip[:, None], cfg.sample_rate, bits=16)

    model = SamplingModel(vqvae.eval(), {}, model_identity(model_dir))  # the VQ-VAE alone: the encode task
    with ProgressBars() as bars:
        encoded = encode_region(model, clip[:, None], source_name=Path(source).name, hooks=Hooks(progress=bars))
        with torch.inference_mode():
            codes = [torch.from_numpy(c).to(device) for c in encoded.codes]  # per level (1, T // hop)
            decoded = [vqvae.decode(c, level, progress=bars)[0, :, 0].cpu().numpy() for level, c in enumerate(codes)]
    meta = encoded.meta
    save_codes(out / "codes.npz", encoded.codes, meta)
    bits_per_token = max(1, (cfg.codebook_size - 1).bit_length())
    levels = []
    for level, audio_l in enumerate(decoded):
        write_audio(out / f"level_{level}.wav", audio_l[:, None], cfg.sample_rate, bits=16)
        hop = cfg.hop_lengths[level]
        levels.append({
            "level": level,
            "hop": hop,
            "tokens": int(codes[level].shape[-1]),
            "kbit_per_s": round(cfg.sample_rate / hop * bits_per_token / 1000, 1),
            "snr_db": round(snr_db(clip, audio_l), 2),
            "log_spectral_distance_db": round(log_spectral_distance_db(clip, audio_l), 2),
            "file": f"level_{level}.wav",
        })
    report = {"model": meta.model, "input": str(source), "seconds": round(frames / cfg.sample_rate, 3),
              "sample_rate": cfg.sample_rate, "levels": levels}
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")

    print(f"segue demo: {Path(source).name}, {report['seconds']} s, model {meta.model}")
    print(f"{'level':>5} {'hop':>5} {'tokens':>7} {'kbit/s':>7} {'SNR dB':>7} {'LSD dB':>7}  file")
    for row in levels:
        print(f"{row['level']:>5} {row['hop']:>5} {row['tokens']:>7} {row['kbit_per_s']:>7} "
              f"{row['snr_db']:>7} {row['log_spectral_distance_db']:>7}  {out / str(row['file'])}")
    print(f"codes: {out / 'codes.npz'}   report: {out / 'report.json'}")
    return 0
