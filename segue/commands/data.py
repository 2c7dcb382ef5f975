"""``segue data``: training data (``segue data synth``: render procedural pieces with FluidSynth and espeak-ng)."""

from __future__ import annotations

import argparse
from pathlib import Path

NAME = "data"
HELP = "make training data (synth: procedural pieces rendered to a mix, stems, MIDI and labels)"
DESCRIPTION = """\
  segue data synth OUT_DIR --hours 10 --seed 0 [--sample-rate 22050] [--jobs 2] [--soundfont FluidR3_GM.sf2]

synth composes pieces from the seed, renders each with FluidSynth and a General MIDI soundfont (one stem per
group: drums bass keys strings leads vocals; the vocals are espeak-ng words sung on the melody) and writes
OUT_DIR/pieces/<id>/{mix.wav, stems/<group>.wav, piece.mid, meta.json} and OUT_DIR/index.json. Re-running
the same command resumes. Needs: apt-get install fluidsynth fluid-soundfont-gm espeak-ng. See docs/training.md.
"""


INDEX_DESCRIPTION = """\
  segue data index DIR [-o INDEX.json]

A piece is an audio file (.wav .flac .ogg .aiff .mp3) anywhere under DIR; beside it, with the same name:
NAME.mid (MIDI), NAME.lrc (lyrics with line or word times) or NAME.txt (plain lyrics), NAME.stems/LABEL.wav
(stems), and DIR/metadata.csv with columns file, artist, genre[, lyrics]. A folder made by segue data synth
is read through its own index. Every file is checked; bad ones are listed and skipped, never fatal.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="what", metavar="WHAT")
    sub.required = True
    _add_synth(sub)
    ix = sub.add_parser("index", help="check and index a folder of your own audio (with MIDI, lyrics, stems) for training",
                        description=INDEX_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ix.add_argument("folder", type=Path, metavar="DIR", help="a folder of audio files with optional sidecars, or a synth set")
    ix.add_argument("-o", "--output", type=Path, metavar="INDEX.json", help="where to write the index (default DIR/segue-index.json)")


def _add_synth(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    from model.data.synth import DEFAULT_PIECE_SECONDS

    p = sub.add_parser("synth", help="render hours of procedural pieces: mix, stems, MIDI and metadata",
                       description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    a = p.add_argument
    a("out_dir", type=Path, metavar="OUT_DIR", help="new or empty folder, or one this command made (to resume)")
    a("--hours", type=float, required=True, metavar="H", help="hours of audio to render (0 < H <= 1000)")
    a("--seed", type=int, default=0, metavar="S", help="the set's seed: the same seed makes the same set (default 0)")
    a("--sample-rate", type=int, default=22050, metavar="HZ", help="default 22050 (what the bundled model trains on)")
    a("--channels", type=int, choices=(1, 2), default=1, help="1 (default: mono, as training reads it) or 2 (stereo)")
    a("--jobs", type=int, default=2, metavar="N", help="pieces rendered at once, one process each (default 2)")
    a("--soundfont", type=Path, metavar="SF2",
      help="General MIDI soundfont (default $SEGUE_SOUNDFONT, else /usr/share/sounds/sf2/FluidR3_GM.sf2)")
    lo, hi = DEFAULT_PIECE_SECONDS
    a("--piece-seconds", type=float, nargs=2, default=[lo, hi], metavar=("MIN", "MAX"),
      help=f"range of piece lengths (default {lo:g} {hi:g})")


def run(args: argparse.Namespace) -> int:
    if args.what == "synth":
        return _run_synth(args)
    if args.what == "index":
        return _run_index(args)
    raise AssertionError(f"unknown segue data {args.what}")  # pragma: no cover (argparse refuses it first)


def _run_synth(args: argparse.Namespace) -> int:
    import sys

    from tqdm import tqdm

    from model.data.synth import synth_dataset
    from segue.progress_bars import LOG_INTERVAL_S

    bar: tqdm | None = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, initial=done, desc="pieces", unit="piece", leave=False,
                       mininterval=0.5 if sys.stderr.isatty() else LOG_INTERVAL_S)  # fmt: skip
        bar.update(done - bar.n)

    try:
        report = synth_dataset(args.out_dir, args.hours, args.seed, sample_rate=args.sample_rate, jobs=args.jobs,
                               soundfont=args.soundfont, channels=args.channels,
                               piece_seconds=(args.piece_seconds[0], args.piece_seconds[1]), progress=progress)  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    print(f"{report.pieces} pieces, {report.seconds / 3600:.3f} h in {report.out_dir} "
          f"({report.rendered} rendered, {report.skipped} already there); index: {report.out_dir / 'index.json'}")  # fmt: skip
    return 0


def _run_index(args: argparse.Namespace) -> int:
    import json

    from common.errors import InputError
    from model.atomic import atomic_write_text
    from model.data.index import index_folder
    from segue.commands._model import check_output_file

    if not args.folder.is_dir():
        raise InputError(f"{args.folder}: not a folder")
    output = args.output or args.folder / "segue-index.json"
    check_output_file("--output", output)
    report = index_folder(args.folder)
    atomic_write_text(output, json.dumps(report.to_dict(), indent=1) + "\n")
    notes = sum(len(p.notes) for p in report.pieces)
    print(f"{len(report.pieces)} pieces, {report.seconds / 3600:.2f} hours; {len(report.skipped)} files skipped, "
          f"{notes} sidecars left out; index written to {output}")  # fmt: skip
    for file, problem in report.skipped:
        print(f"  skipped {file}: {problem}")
    for piece in report.pieces:
        for note in piece.notes:
            print(f"  {piece.audio}: {note}")
    return 0

