"""``segue eval``: measure models on codes (``segue eval nll``: bits per token under a prior)."""

from __future__ import annotations

import argparse
from pathlib import Path

from segue.commands._model import (
    add_model_arguments,
    add_song_arguments,
    check_output_file,
    load_codes_for,
    load_for_sampling,
    lyrics_of,
)

NAME = "eval"
HELP = "evaluate a model on codes (nll: bits per token under one level's prior)"
DESCRIPTION = """\
  segue eval nll --model models/tiny song.codes.npz --level 2 --artist "alan jackson" --genre country \\
      --lyrics-file song.txt --total-length 180 [--per-token bits.npy]

Codes longer than one window are scored window by window (each code once). Lower is better.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="what", metavar="WHAT")
    sub.required = True
    nll = sub.add_parser("nll", help="bits per token of a codes file under one level's prior")
    a = nll.add_argument
    a("codes", type=Path, metavar="CODES.npz")
    add_model_arguments(nll)
    a("--level", type=int, required=True, help="level whose prior scores the codes (0 = bottom)")
    add_song_arguments(nll, start="the codes start", end="the codes' length")
    a("--per-token", type=Path, metavar="OUT.npy", help="also save the bits of every code, (items, tokens) float32")
    a("--precision", choices=("fp32", "bf16"), default="fp32", help="default fp32")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from common.errors import InputError
    from conditioning.labels import Metadata
    from model.sampling import lengths as L
    from model.sampling.jukebox import JukeboxLevel
    from model.sampling.nll import code_nll
    from model.sampling.setup import labels_for_priors
    from segue.progress_bars import ProgressBars

    lyrics = lyrics_of(args)  # before the model loads: a missing file is a one-line error at once
    if args.per_token:
        check_output_file("--per-token", args.per_token)  # np.save to a missing folder was an internal error
    _, model = load_for_sampling(args.model, args.device)
    vq, geo = model.vqvae, model.geometry
    if args.level not in model.priors:
        raise InputError(f"--level {args.level}: the model has priors for levels {sorted(model.priors)}")
    prior = model.priors[args.level]
    cf = load_codes_for(args.codes, vq.config)
    codes = torch.from_numpy(cf.level(args.level)).long()  # (N, T)
    upper = torch.from_numpy(cf.level(args.level + 1)).long() if prior.config.is_upsampler else None
    samples = codes.shape[1] * geo.hops[args.level]
    offset = L.label_samples(args.offset, geo, "offset")
    if args.total_length is not None:
        total = L.label_samples(args.total_length, geo)
    else:
        total = L.default_total_samples(samples, geo, offset)
    if prior.config.time_signal:
        L.check_total_length(total, samples, geo, offset)
    meta = Metadata(args.artist, args.genre, lyrics, total_length=total, offset=offset)
    labels = labels_for_priors({args.level: prior.config}, meta, args.ids or args.model / "ids")
    with ProgressBars() as bars:
        res = code_nll(JukeboxLevel(prior), codes, labels.get(args.level), upper, args.precision, bars)
    if args.per_token:
        np.save(args.per_token, res.per_token.numpy())
    n, t = codes.shape
    print(f"level {args.level}: {res.bits_per_token:.4f} bits per token ({n} x {t} codes, {res.windows} windows)")
    return 0
