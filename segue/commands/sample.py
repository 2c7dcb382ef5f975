"""``segue sample``: generate music with a model directory, in any Jukebox mode."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "sample"
HELP = "generate music: ancestral, primed (continue audio), continue (saved codes) or upsample"
DESCRIPTION = """\
Sample codes level by level (top first) and decode every sampled level to audio.

  segue sample --model models/tiny --artist "alan jackson" --genre country --lyrics-file song.txt \\
      --length 20 --candidates 3 --seed 7 -o out/
  segue sample --model models/tiny --mode primed --prime riff.wav --prime-length 5 --length 20 -o out/
  segue sample --model models/tiny --mode continue --codes out/codes.npz --length 40 -o out2/
  segue sample --model models/tiny --mode upsample --codes sketch/codes.npz -o full/

Writes OUTDIR/level_{L}/item_{I}.wav for every sampled level, OUTDIR/codes.npz (every level, one row per
candidate), OUTDIR/run.json (everything needed to reproduce the run) and, for lyrics models,
OUTDIR/alignment_item_{I}.json (per-character and per-word timings).
Per-level values (--temperature, --hop-fraction) are one number or a comma-separated list, level 0 first.
"""


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or a comma-separated list of numbers") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from segue.device import add_device_argument

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    a = parser.add_argument
    a("--model", type=Path, required=True, metavar="DIR", help="segue model directory (VQ-VAE + priors)")
    a("--mode", choices=("ancestral", "primed", "continue", "upsample"), default="ancestral")
    a("--artist", default="unknown", help="artist as listed in the model's id list (default: unknown)")
    a("--genre", default="unknown", help="genre as listed in the model's id list (default: unknown)")
    lyrics = parser.add_mutually_exclusive_group()
    lyrics.add_argument("--lyrics", default="", help="lyrics text (lyrics models)")
    lyrics.add_argument("--lyrics-file", type=Path, metavar="FILE", help="UTF-8 text file with the lyrics")
    a("--ids", type=Path, metavar="DIR", help="folder with {v2,v3}_{artist,genre}_ids.txt (default: MODEL/ids)")
    a("--length", type=float, metavar="S", help="seconds of audio at the end (not for upsample)")
    a("--total-length", type=float, metavar="S", help="song length label in seconds (default: the audio's end, at least the model's minimum)")
    a("--offset", type=float, default=0.0, metavar="S", help="where in the song the audio starts (label), seconds")
    a("--prime", type=Path, metavar="AUDIO", help="audio to continue (primed mode)")
    a("--prime-length", type=float, metavar="S", help="seconds of the prime to use (default: all)")
    a("--codes", type=Path, metavar="CODES.npz", help="codes to continue or upsample")
    a("--candidates", type=int, default=1, help="versions to sample (default 1)")
    a("--seed", type=int, default=0, help="seed of candidate 0; candidate i uses seed + i (default 0)")
    a("--temperature", type=_floats, default=(0.99,), metavar="T[,T,T]", help="default 0.99")
    a("--top-k", type=int, default=0, help="keep the k most likely codes (default 0 = off)")
    a("--top-p", type=float, default=0.0, help="nucleus sampling probability (default 0 = off)")
    a("--hop-fraction", type=_floats, default=(), metavar="H[,H,H]", help="new share of each window (default 0.5 below the top, 0.125 at the top)")
    a("--max-batch-size", type=int, default=16, help="candidates sampled together (default 16)")
    a("--chunk-size", type=int, default=32, help="context codes per model call when a window starts (default 32)")
    a("--precision", choices=("auto", "fp32", "bf16"), default="auto",
      help="of the priors, chosen at load; auto (default): whichever steps faster here at the run's batch size, by a short measurement")
    a("--step", choices=("auto", "compiled", "eager"), default="auto",
      help="single-token step: compiled (torch.compile; the first window compiles), eager, or auto (default): compiled where it works")
    a("--lowest-level", type=int, default=0, help="stop after this level (the top level = a quick sketch)")
    add_device_argument(parser)
    a("--no-align", action="store_true", help="skip the lyric alignment")
    a("-o", "--output", type=Path, required=True, metavar="OUTDIR")


def run(args: argparse.Namespace) -> int:
    import torch

    from common.errors import InputError
    from conditioning.labels import Metadata
    from model.audio import read_audio, write_audio
    from model.codes import CodesMeta, load_codes, save_codes
    from model.sampling import lengths as L
    from model.sampling import modes
    from model.sampling.alignment import align_lyrics
    from model.sampling.loading import load_sampling_model
    from model.sampling.params import SamplingParams
    from model.sampling.setup import labels_for_priors
    from segue.device import resolve_device
    from segue.progress_bars import ProgressBars

    params = SamplingParams(
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, n_candidates=args.candidates,
        max_batch_size=args.max_batch_size, chunk_size=args.chunk_size, seed=args.seed,
        hop_fraction=args.hop_fraction, precision=args.precision,
    )  # fmt: skip
    _check_output_folder(args.output)
    _check_seeds(args.seed, args.candidates)
    if args.candidates > MAX_CANDIDATES:
        raise InputError(f"--candidates {args.candidates} is out of range: use 1..{MAX_CANDIDATES} (each is a whole run; split more over several runs)")
    lyrics = _read_lyrics(args.lyrics_file) if args.lyrics_file else args.lyrics
    args.device = resolve_device(args.device)
    model = load_sampling_model(args.model, args.device, precision=args.precision, step=args.step,
                                batch=min(args.candidates, args.max_batch_size))  # fmt: skip
    geo, vq = model.geometry, model.vqvae
    sr = geo.sample_rate
    _check_levels(sorted(model.priors), geo.n_levels - 1, args.mode, args.lowest_level)

    codes_in: list[torch.Tensor] = []
    if args.mode in ("continue", "upsample"):
        if args.codes is None:
            raise InputError(f"--mode {args.mode} needs --codes CODES.npz")
        cf = load_codes(args.codes, codebook_size=vq.config.codebook_size)
        cf.check_fits(hop_lengths=vq.config.hop_lengths, codebook_size=vq.config.codebook_size, sample_rate=sr)
        codes_in = [torch.from_numpy(c).long() for c in cf.codes]
    if args.mode == "upsample":
        samples = codes_in[-1].shape[1] * geo.top_hop
    else:
        if args.length is None:
            raise InputError(f"--mode {args.mode} needs --length S (seconds of audio to have at the end)")
        samples = L.samples_from_seconds(args.length, geo)
    offset = L.label_samples(args.offset, geo, "offset")
    total = L.label_samples(args.total_length, geo) if args.total_length is not None else L.default_total_samples(samples, geo, offset)
    L.check_total_length(total, samples, geo, offset)

    meta = Metadata(args.artist, args.genre, lyrics, total_length=total, offset=offset)
    labels = labels_for_priors(model.configs, meta, args.ids or args.model / "ids")
    for warning in sorted({w for lab in labels.values() for w in lab.warnings}):
        print(f"segue sample: warning: {warning}", file=sys.stderr)

    levels, low = model.levels(), args.lowest_level
    with ProgressBars() as bars:
        if args.mode == "ancestral":
            result = modes.ancestral(levels, geo, samples, params, labels, low, bars)
        elif args.mode == "primed":
            if args.prime is None:
                raise InputError("--mode primed needs --prime AUDIO")
            audio = read_audio(args.prime, sample_rate=sr, channels=1).samples  # (T, 1)
            if args.prime_length is not None:
                audio = audio[: L.prime_samples_from_seconds(args.prime_length, samples, geo)]
            prime = torch.from_numpy(audio)[None].to(args.device)  # (1, T, 1)
            result = modes.primed(levels, geo, vq, prime, samples, params, labels, low, bars)
        elif args.mode == "continue":
            result = modes.continue_codes(levels, geo, codes_in, samples, params, labels, low, bars)
        else:
            result = modes.upsample(levels, geo, codes_in[-1], params, labels, low, bars)

        out: Path = args.output
        out.mkdir(parents=True, exist_ok=True)
        written = []
        for timing in result.timings:
            lv = timing.level
            folder = out / f"level_{lv}"
            folder.mkdir(exist_ok=True)
            audio_out = vq.decode(result.codes[lv].to(args.device), lv, progress=bars).cpu()  # (N, T, 1)
            for i in range(result.n_candidates):
                written.append(str(write_audio(folder / f"item_{i}.wav", audio_out[i], sr).path))
    codes_meta = CodesMeta(sr, tuple(vq.config.hop_lengths), vq.config.codebook_size, model.identity, samples, f"segue sample {args.mode}")
    save_codes(out / "codes.npz", [c.cpu() for c in result.codes], codes_meta)

    top = geo.n_levels - 1
    aligned = []
    top_prior = model.priors.get(top)
    if not args.no_align and lyrics and top in labels and top_prior is not None and top_prior.config.alignment_layer is not None:
        records = align_lyrics(levels[top], result.codes[top], labels[top], params.hop_fraction_at(top, geo.n_levels), sr)
        for i, record in enumerate(records):
            path = out / f"alignment_item_{i}.json"
            path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
            aligned.append(str(path))

    record = {
        "command": "segue sample",
        "model": {"dir": str(args.model), "identity": model.identity},
        "mode": args.mode,
        "labels": {"artist": args.artist, "genre": args.genre, "lyrics": lyrics, "total_length": total, "offset": offset},
        "inputs": {"prime": str(args.prime) if args.prime else None, "prime_length": args.prime_length,
                   "codes": str(args.codes) if args.codes else None},  # fmt: skip
        "length": {"samples": samples, "seconds": samples / sr},
        "lowest_level": args.lowest_level,
        "device": str(args.device),
        "result": result.to_dict(),
        "files": {"audio": written, "codes": str(out / "codes.npz"), "alignment": aligned},
    }
    (out / "run.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    for t in result.timings:
        print(f"level {t.level}: {t.new_tokens} tokens in {t.seconds:.1f} s ({t.tokens_per_second:.0f} tokens/s, {t.windows} windows)")
    print(f"wrote {len(written)} audio files, codes and run.json to {out}")
    return 0


MAX_CANDIDATES = 1024  # a typo such as 1000000 would otherwise start a days-long run
SEED_RANGE = (-(1 << 63), (1 << 63) - 1)  # what a torch generator takes


def _check_output_folder(out: Path) -> None:
    """Before any sampling: OUTDIR must be new or empty, so a run never mixes its files with an older one's."""
    from common.errors import InputError

    if out.exists() and not out.is_dir():
        raise InputError(f"-o {out}: exists and is not a folder; give a new folder for the run's files")
    if out.is_dir() and any(out.iterdir()):
        raise InputError(f"-o {out}: folder is not empty; give a new or empty folder (an older run's takes would mix with this one's)")


def _check_seeds(seed: int, candidates: int) -> None:
    from common.errors import InputError

    low, high = SEED_RANGE
    if not low <= seed <= high - max(candidates - 1, 0):
        raise InputError(f"--seed {seed} is out of range: use {low}..{high} (candidate i uses seed + i)")


def _read_lyrics(path: Path) -> str:
    from common.errors import InputError

    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"--lyrics-file {path}: no such file") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"--lyrics-file {path}: not UTF-8 text (byte {exc.start}); save the lyrics as UTF-8") from exc
    except OSError as exc:
        raise InputError(f"--lyrics-file {path}: cannot be read ({exc.strerror})") from exc


def _check_levels(have: list[int], top: int, mode: str, lowest: int) -> None:
    """A model without every prior (e.g. only the top one) can still sketch: say which --lowest-level works."""
    from common.errors import InputError

    first = top - 1 if mode == "upsample" else top
    missing = [lv for lv in range(first, lowest - 1, -1) if lv not in have]
    if not missing or lowest > first:
        return
    reach = [lv for lv in range(first, -1, -1) if lv > missing[0]]
    hint = f"; add --lowest-level {reach[-1]} to stop at the lowest level it can sample" if reach else ""
    raise InputError(f"this model has no prior for level {missing[0]} (it has priors for levels {have}){hint}")
