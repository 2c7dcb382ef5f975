"""``segue sample``: run one of the model's tasks (``model.tasks``) on a model directory and write the takes."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from common.progress import ProgressFn
    from model.sampling.loading import SamplingModel
    from model.sampling.params import Guidance, SamplingParams
    from model.tasks import Song, TaskResult
    from model.tasks.conditions import JobConditions
    from model.tasks.song import Labelling

NAME = "sample"
HELP = "sample music: generate, continue (audio), extend (saved codes) or upsample"
DESCRIPTION = """\
Run one of the model's tasks (the daemon's job kinds, with the same names and the same results):

  generate  new music from nothing (Jukebox's "ancestral" sampling)
  continue  continue --region AUDIO; the take starts exactly where the region ends
  extend    continue saved --codes (every level); the take starts where the codes end
  upsample  render the top level of --codes through the levels below

  segue sample --model models/tiny --artist "alan jackson" --genre country --lyrics-file song.txt \\
      --length 20 --candidates 3 --seed 7 -o out/
  segue sample --model models/tiny --mode continue --region riff.wav --length 10 -o more/
  segue sample --model models/tiny --mode extend --codes out/codes.npz --length 10 -o out2/
  segue sample --model models/tiny --mode upsample --codes sketch/codes.npz -o full/

--length is the take's length in seconds (the new audio only; for upsample, default: all the codes).
Writes OUTDIR/level_{L}/item_{I}.wav (the take, decoded from each sampled level), OUTDIR/codes.npz (every
level of the sampled audio, one row per candidate), OUTDIR/run.json (everything needed to reproduce the
run, and where the take lies in the codes) and, for lyrics models, OUTDIR/alignment_item_{I}.json.
Per-level values (--temperature, --hop-fraction) are one number or a comma-separated list, level 0 first.

Conditions (a model with MIDI, stem or grid conditioners), placed in project seconds: --region-start S is
where the region (continue), the codes (extend, upsample) or the new audio (generate) starts.

  segue sample --model models/mine --mode continue --region verse.wav --region-start 32 --length 10 \
      --midi chorus.mid --midi-bar 17 --bpm 120 --stem drums=drums.wav@32 --guidance midi=2 -o out/

A condition the model has no conditioner for is an error naming the conditioners it has
('segue labels' shows how the model reads them).
"""
MODES = ("generate", "continue", "extend", "upsample")
OLD_MODES = {"ancestral": "generate", "primed": "continue"}  # the names before one vocabulary (read, with a note)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or a comma-separated list of numbers") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from segue.commands._conditions import add_condition_arguments
    from segue.commands._model import add_model_arguments, add_song_arguments

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    a = parser.add_argument
    add_model_arguments(parser, "segue model directory (VQ-VAE + priors)")
    a("--mode", choices=(*MODES, *OLD_MODES), default="generate", help="the task (default: generate)")
    add_song_arguments(parser, start="the region or the codes start", end="the take's end")
    a("--length", type=float, metavar="S", help="seconds of new audio (the take); for upsample: at most this much")
    a("--region", "--prime", type=Path, metavar="AUDIO", help="audio to continue (continue)")
    a("--region-end", "--prime-length", type=float, metavar="S", help="continue from S seconds into the region (default: its end)")
    a("--codes", type=Path, metavar="CODES.npz", help="codes to extend or upsample")
    a("--allow-other-model", action="store_true", help="use --codes made by another VQ-VAE (they decode to other music)")
    a("--candidates", type=int, default=1, help="versions to sample (default 1)")
    a("--seed", type=int, default=0, help="seed of candidate 0; candidate i uses seed + i (default 0)")
    a("--temperature", type=_floats, default=(0.99,), metavar="T[,T,T]", help="0.01..10 (default 0.99)")
    a("--top-k", type=int, default=0, help="keep the k most likely codes (default 0 = off)")
    a("--top-p", type=float, default=0.0, help="nucleus sampling probability (default 0 = off)")
    a("--hop-fraction", type=_floats, default=(), metavar="H[,H,H]", help="new share of each window (default 0.5 below the top, 0.125 at the top)")
    a("--max-batch-size", type=int, default=16, help="candidates sampled together (default 16)")
    a("--chunk-size", type=int, default=32, help="context codes per model call when a window starts (default 32)")
    a("--precision", choices=("auto", "fp32", "bf16"), default="auto",
      help="of the priors, chosen at load; auto (default): whichever steps faster here at the run's batch size, by a short measurement")
    a("--step", choices=("auto", "compiled", "eager"), default="auto",
      help="single-token step: compiled (torch.compile; the first window compiles), eager, or auto (default): compiled where it works")
    a("--lowest-level", type=int, default=0, help="stop after this level (default 0, full quality; the top level = a quick sketch)")
    a("--no-align", action="store_true", help="skip the lyric alignment")
    a("--order-by", metavar="METRIC",
      help="write the candidates best first by how they follow --midi/--stem: midi_chroma, drum_onset_f1, "
           "loudness_corr[:STEM] or mean (item_0 is the best; run.json has every take's numbers)")  # fmt: skip
    a("-o", "--output", type=Path, required=True, metavar="OUTDIR")
    add_condition_arguments(parser, region="the region's, the codes' or the generated audio's first sample")


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from common.errors import InputError
    from model.sampling.params import SamplingParams
    from model.tasks.song import Labelling
    from segue.commands._conditions import check_condition_flags, describe
    from segue.commands._model import load_for_sampling, lyrics_of
    from segue.commands._sample_io import song_of, write_run
    from segue.progress_bars import ProgressBars

    mode = _mode(args)
    params = SamplingParams(
        temperature=args.temperature, top_k=args.top_k, top_p=args.top_p, n_candidates=args.candidates,
        max_batch_size=args.max_batch_size, chunk_size=args.chunk_size, seed=args.seed,
        hop_fraction=args.hop_fraction, precision=args.precision,
    )  # fmt: skip
    _check_output_folder(args.output)
    _check_seeds(args.seed, args.candidates)
    if args.candidates > MAX_CANDIDATES:
        raise InputError(f"--candidates {args.candidates} is out of range: use 1..{MAX_CANDIDATES} (each is a whole run; split more over several runs)")
    lyrics = lyrics_of(args)
    _check_inputs(mode, args)
    check_condition_flags(args)
    if args.order_by is not None and not (args.midi or args.stem):
        raise InputError("--order-by orders the candidates by how they follow --midi or --stem: give one")
    conditions, guidance = _prepare_conditions(args)
    params = replace(params, guidance=guidance)
    device, model = load_for_sampling(args.model, args.device, precision=args.precision, step=args.step,
                                      batch=min(args.candidates, args.max_batch_size))  # fmt: skip
    song = song_of(args, model.geometry, lyrics)
    labelling = Labelling(args.ids or args.model / "ids", strict=True)
    with ProgressBars() as bars:
        result, conditions = _run_task(mode, args, model, song, params, labelling, bars, conditions)
    if args.order_by is not None:
        result = result.ordered(args.order_by)
    for warning in result.warnings:
        print(f"segue sample: warning: {warning}", file=sys.stderr)
    written = write_run(args, mode, model, device, result, lyrics, describe(args, conditions))
    for t in result.sample.timings:
        print(f"level {t.level}: {t.new_tokens} tokens in {t.seconds:.1f} s ({t.tokens_per_second:.0f} tokens/s, {t.windows} windows)")
    print(f"wrote {written} audio files, codes and run.json to {args.output}")
    return 0


def _mode(args: argparse.Namespace) -> str:
    if args.mode in OLD_MODES:
        print(f"segue sample: note: --mode {args.mode} is now called --mode {OLD_MODES[args.mode]}", file=sys.stderr)
        return OLD_MODES[args.mode]
    return str(args.mode)


def _check_inputs(mode: str, args: argparse.Namespace) -> None:
    """Before loading the model: the flags each task needs, with the flag to add in the message, then their
    values (numbers, files, the codes file), so a typo is named at once and not after minutes of loading."""
    from common.errors import InputError
    from model.codes import load_codes

    if mode == "continue" and args.region is None:
        hint = "; to continue saved codes use --mode extend --codes" if args.codes is not None else ""
        raise InputError(f"--mode continue needs --region AUDIO (the audio to continue){hint}")
    if mode in ("extend", "upsample") and args.codes is None:
        raise InputError(f"--mode {mode} needs --codes CODES.npz")
    if mode != "upsample" and args.length is None:
        raise InputError(f"--mode {mode} needs --length S (seconds of new audio)")
    if args.length is not None and not (math.isfinite(args.length) and args.length > 0):
        raise InputError(f"--length {args.length} s is not a positive number of seconds")  # take_samples' rule
    for flag, value in (("--region-end", args.region_end), ("--total-length", args.total_length), ("--offset", args.offset)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise InputError(f"{flag} {value} s is not a number of seconds of 0 or more")  # label_samples' rule
    if mode == "continue":
        _check_readable("--region", args.region)
    if mode in ("extend", "upsample"):
        _check_readable("--codes", args.codes)
        load_codes(args.codes)  # a damaged or foreign file; whether it fits the model is checked once it is loaded


def _check_readable(flag: str, path: Path) -> None:
    from common.errors import InputError

    if not path.exists():
        raise InputError(f"{flag} {path}: no such file")
    if not path.is_file():
        raise InputError(f"{flag} {path}: is a folder, not a file" if path.is_dir() else f"{flag} {path}: is not a regular file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"{flag} {path}: cannot be read ({exc.strerror})") from exc


def _prepare_conditions(args: argparse.Namespace) -> tuple[JobConditions, tuple[Guidance, ...]]:
    """Before the model loads: the condition files read, checked against the model's conditioners (from
    their configs; the error is the task's own, naming the conditioners the model has) and each stem
    analysed for the levels that read it, and ``--guidance`` given to the levels that read its condition.
    The take's start is placed once the task's input is read (``_run_task``)."""
    from common.errors import InputError
    from model.checkpoint.priors import read_vqvae_config
    from model.tasks.conditions import NO_CONDITIONS, check_conditioners
    from segue.commands._conditions import (
        analyse_stems,
        conditioner_configs,
        conditions_of,
        given,
        guidance_for,
    )

    if not given(args) and not args.guidance:
        return NO_CONDITIONS, ()
    configs = conditioner_configs(args.model)
    conditions = conditions_of(args, take_start_s=float(args.region_start))
    check_conditioners(conditions, configs)
    for g in args.guidance:
        if g.scale != 0 and g.condition not in conditions.names:
            at = "" if g.level is None else f"@{g.level}"
            raise InputError(
                f"--guidance {g.condition}{at}={g.scale:g}: this run gives no {g.condition} condition "
                f"(it gives: {', '.join(conditions.names) or 'none'}); guidance needs the condition itself"
            )
    vq = read_vqvae_config(args.model)
    analyse_stems(args, conditions, configs, vq.sample_rate, tuple(vq.hop_lengths))
    return conditions, guidance_for(args.guidance, configs)


def _run_task(
    mode: str, args: argparse.Namespace, model: SamplingModel, song: Song, params: SamplingParams,
    labelling: Labelling, bars: ProgressFn, conditions: JobConditions,
) -> tuple[TaskResult, JobConditions]:  # fmt: skip
    """The task of ``mode`` on the loaded model, its inputs read from the flags, and the conditions it
    ran with (the take's project start placed after the region or the codes)."""
    from dataclasses import replace

    from model import tasks
    from model.sampling.hooks import Hooks
    from model.sampling.lengths import take_samples
    from segue.commands._model import load_codes_for
    from segue.commands._sample_io import read_region

    hooks = Hooks(progress=bars)
    low = args.lowest_level
    geo = model.geometry
    start_s = float(args.region_start)  # project time of the task's input (or, for generate, of the take)
    length = None if args.length is None else take_samples(args.length, geo, "--length")
    if mode == "upsample":
        codes = load_codes_for(args.codes, model.vqvae.config)
        cond = replace(conditions, take_start_s=start_s)
        return tasks.upsample(model, codes, song, params, labelling, length=length, lowest_level=low,
                              allow_other_model=args.allow_other_model, hooks=hooks, conditions=cond), cond  # fmt: skip
    assert length is not None  # _check_inputs: every other task needs --length
    if mode == "generate":
        cond = replace(conditions, take_start_s=start_s)
        return tasks.generate(model, length, song, params, labelling, lowest_level=low, hooks=hooks, conditions=cond), cond
    if mode == "continue":
        region = read_region(args.region, args.region_end, geo)
        cond = replace(conditions, take_start_s=start_s + region.shape[0] / geo.sample_rate)
        return tasks.continue_region(model, region, length, song, params, labelling, lowest_level=low, hooks=hooks,
                                     conditions=cond), cond  # fmt: skip
    codes = load_codes_for(args.codes, model.vqvae.config)
    top = geo.n_levels - 1
    cond = replace(conditions, take_start_s=start_s + codes.codes[top].shape[-1] * geo.top_hop / geo.sample_rate)
    return tasks.extend(model, codes, length, song, params, labelling, lowest_level=low,
                        allow_other_model=args.allow_other_model, hooks=hooks, conditions=cond), cond  # fmt: skip


MAX_CANDIDATES = 1024  # a typo such as 1000000 would otherwise start a days-long run
SEED_RANGE = (-(1 << 63), (1 << 63) - 1)  # what a torch generator takes


def _check_output_folder(out: Path) -> None:
    """Before any sampling: OUTDIR must be new or empty, so a run never mixes its files with an older one's."""
    from common.errors import InputError
    from segue.commands._model import check_output_folder

    check_output_folder("-o", out)  # a file on the way to OUTDIR was an internal error after all the sampling
    if out.is_dir() and any(out.iterdir()):
        raise InputError(f"-o {out}: folder is not empty; give a new or empty folder (an older run's takes would mix with this one's)")


def _check_seeds(seed: int, candidates: int) -> None:
    from common.errors import InputError

    low, high = SEED_RANGE
    if not low <= seed <= high - max(candidates - 1, 0):
        raise InputError(f"--seed {seed} is out of range: use {low}..{high} (candidate i uses seed + i)")
