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
    _add_adherence(sub)


def _add_adherence(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from segue.commands._conditions import add_condition_arguments

    p = sub.add_parser("adherence", help="how closely takes follow their MIDI and stems (files, or a model on pieces)",
                       description=_ADHERENCE, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    a = p.add_argument
    a("takes", type=Path, nargs="*", metavar="TAKE.wav", help="take files to score against --midi/--stem")
    a("--take-start", type=float, metavar="S", help="project time of each take's first sample (default: --region-start)")
    a("--order-by", metavar="METRIC", help="also rank the takes: midi_chroma, drum_onset_f1, loudness_corr[:STEM], mean")
    a("--model", type=Path, metavar="DIR", help="generate a take per piece of --pieces with this model and score it")
    a("--pieces", type=Path, metavar="PIECES.json", help="the pieces to generate (see above)")
    a("--baseline", choices=("none", "shuffled"), default="none",
      help="shuffled: also generate each piece with another piece's conditions, so every number has its baseline")
    a("--length", type=float, default=4.0, metavar="S", help="seconds per generated take (default 4)")
    a("--seed", type=int, default=0, help="seed of every take and of the shuffle (default 0)")
    a("--lowest-level", type=int, default=0, help="decode from this level (default 0; the top level is quick)")
    a("--ids", type=Path, metavar="DIR", help="id lists (default: MODEL/ids)")
    from segue.device import add_device_argument

    add_device_argument(p)
    a("--precision", choices=("auto", "fp32", "bf16"), default="auto", help="default auto")
    a("--step", choices=("auto", "compiled", "eager"), default="auto", help="single-token step (default auto)")
    a("-o", "--output", type=Path, metavar="REPORT.json", help="write the whole report here")
    add_condition_arguments(p, region="the conditions' timeline origin", guidance=False)


def run(args: argparse.Namespace) -> int:
    if args.what == "adherence":
        return _run_adherence(args)
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


_ADHERENCE = """\
  segue eval adherence take1.wav take2.wav --midi clip.mid --stem drums=kit.wav --region-start 8 [--order-by mean]
  segue eval adherence --model models/mini --pieces pieces.json --baseline shuffled --length 8 -o report.json

Scores: midi_chroma (chroma similarity to the MIDI), drum_onset_f1 (mir_eval onset F1 against a stem labelled
drums, else the MIDI's drum notes), loudness_corr (per stem), mean (docs/conditioning.md, "Measuring
adherence"). pieces.json: {"pieces": [{"name", "region", "region_start_s", "midi", "midi_start_s",
"stems": [{"name", "path", "start_s"}], "bpm", "time_signature", "artist", "genre"}]}, paths relative to it.
"""


def _run_adherence(args: argparse.Namespace) -> int:
    import json

    from common.errors import InputError
    from segue.commands import _adherence
    from segue.commands._conditions import check_condition_flags, conditions_of
    from segue.commands._model import check_output_file

    if args.output is not None:
        check_output_file("--output", args.output)
    if (args.model is None) != (args.pieces is None):
        raise InputError("--model and --pieces go together: a model generates a take for each piece")
    if args.model is not None:
        if args.takes or args.midi or args.stem:
            raise InputError("with --model/--pieces the conditions come from the pieces: give no take files, --midi or --stem")
        if not args.length > 0 or args.length > 600:
            raise InputError(f"--length {args.length}: give 0 < seconds <= 600")
        report = _adherence.run_model(args)
    else:
        if not args.takes:
            raise InputError("give take files to score (or --model and --pieces to generate them)")
        if args.baseline != "none":
            raise InputError("--baseline needs --model and --pieces: the model is run with shuffled conditions")
        check_condition_flags(args)
        if not (args.midi or args.stem):
            raise InputError("give --midi and/or --stem: the conditions the takes should follow")
        start = args.region_start if args.take_start is None else args.take_start
        reports = _adherence.score_files(list(args.takes), conditions_of(args, float(start)))
        report = {"takes": [{"file": str(f), **r.to_dict()} for f, r in zip(args.takes, reports)]}
        if args.order_by:
            from conditioning.adherence import order_candidates

            report["order"] = [str(args.takes[i]) for i in order_candidates(reports, args.order_by)]
    text = json.dumps(report, indent=1)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")
    if "matched" in report:
        print(_adherence.table(report))
    else:
        print(text)
    return 0

