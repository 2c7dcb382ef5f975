"""The set-up shared by the model commands (sample, eval, encode, decode, demo): their common flags, and
reading them into inputs and placed models with one-line errors (``InputError``) instead of tracebacks.

torch and the model code are imported inside the functions that load something, so building the
parser stays cheap (``segue status`` never loads torch).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import InputError
from common.text import control_character_problem
from segue.device import add_device_argument, resolve_device

if TYPE_CHECKING:
    import torch

    from model.codes import CodesFile
    from model.sampling.loading import SamplingModel
    from model.vqvae import VQVAE
    from model.vqvae.config import VQVAEConfig


# ---- flags ------------------------------------------------------------------------------------------
def add_model_arguments(parser: argparse.ArgumentParser, help: str = "segue model directory") -> None:
    """``--model DIR`` (required) and ``--device``."""
    parser.add_argument("--model", type=Path, required=True, metavar="DIR", help=help)
    add_device_argument(parser)


def add_song_arguments(parser: argparse.ArgumentParser, start: str = "the audio starts", end: str = "the audio's end") -> None:
    """The song labels: --artist, --genre, --lyrics | --lyrics-file, --ids, --total-length, --offset.
    ``start`` / ``end`` name what the labels place in the song in the help ("the codes start")."""
    a = parser.add_argument
    blend = ("; repeat it, or write 'NAME=WEIGHT; NAME=WEIGHT', to blend several by weight "
             "(a repeated name without a weight counts 1)")
    a("--artist", action=_Blend, default="unknown", help="artist as listed in the model's id list (default: unknown)" + blend)
    a("--genre", action=_Blend, default="unknown", help="genre as listed in the model's id list (default: unknown)" + blend)
    lyrics = parser.add_mutually_exclusive_group()
    lyrics.add_argument("--lyrics", default="", help="lyrics text (lyrics models)")
    lyrics.add_argument("--lyrics-file", type=Path, metavar="FILE", help="UTF-8 text file with the lyrics")
    a("--ids", type=Path, metavar="DIR", help="folder with {v2,v3}_{artist,genre}_ids.txt (default: MODEL/ids)")
    a("--total-length", type=float, metavar="S",
      help=f"song length label in seconds (default: {end}, at least the model's minimum)")
    a("--offset", type=float, default=0.0, metavar="S", help=f"where in the song {start} (label), seconds")


class _Blend(argparse.Action):
    """``--artist`` / ``--genre``: once, the value as given; repeated, a weighted blend of every value
    (``conditioning.labels.parse_blend``): ``--artist ada=3 --artist bo`` is ``"ada=3; bo=1"``."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:  # fmt: skip
        given = getattr(namespace, f"_{self.dest}_given", [])
        given.append(str(values))
        setattr(namespace, f"_{self.dest}_given", given)
        if len(given) == 1:
            setattr(namespace, self.dest, given[0])
        else:
            setattr(namespace, self.dest, "; ".join(v if "=" in v else f"{v}=1" for v in given))


def add_chunk_argument(parser: argparse.ArgumentParser, verb: str, whole: str) -> None:
    """``--chunk-seconds S``: work in overlapping pieces to bound memory; ``whole`` says what 0 means."""
    parser.add_argument(
        "--chunk-seconds", type=float, metavar="S",
        help=f"{verb} in overlapping pieces of about S seconds to bound memory (default: automatic; 0 = {whole})",
    )  # fmt: skip


# ---- reading them -----------------------------------------------------------------------------------
def read_lyrics(path: Path) -> str:
    """The text of ``--lyrics-file`` ``path`` (UTF-8); a missing, unreadable or non-UTF-8 file is an
    ``InputError`` naming the file and the problem."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"--lyrics-file {path}: no such file") from exc
    except IsADirectoryError as exc:
        raise InputError(f"--lyrics-file {path}: is a folder, not a text file") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"--lyrics-file {path}: not UTF-8 text (byte {exc.start}); save the lyrics as UTF-8") from exc
    except OSError as exc:
        raise InputError(f"--lyrics-file {path}: cannot be read ({exc.strerror})") from exc


def lyrics_of(args: argparse.Namespace) -> str:
    """``--lyrics-file`` read (see ``read_lyrics``), else ``--lyrics``; the song's text (``--artist``,
    ``--genre``, the lyrics) checked for control characters by the protocol's rule (``common.text``)."""
    lyrics = read_lyrics(args.lyrics_file) if args.lyrics_file else str(args.lyrics)
    texts = tuple(("--" + kind, str(value), False) for kind in ("artist", "genre")
                  for value in getattr(args, f"_{kind}_given", None) or [getattr(args, kind)])  # each as typed
    where = f"--lyrics-file {args.lyrics_file}" if args.lyrics_file else "--lyrics"
    for what, text, multiline in (*texts, (where, lyrics, True)):
        problem = control_character_problem(what, str(text), lyrics=multiline)
        if problem:
            raise InputError(problem)
    return lyrics


def check_output_file(flag: str, path: Path) -> None:
    """Before any work: the folder of output file ``path`` (given as ``flag``) must exist and ``path`` must not
    be a folder, so a typo is a one-line error now and not a failed write (or an internal error) at the end."""
    if path.is_dir():
        raise InputError(f"{flag} {path}: is a folder; give a file name")
    _check_folder(flag, path, path.parent)


def check_output_folder(flag: str, path: Path) -> None:
    """Before any work: output folder ``path`` (created with its parents when missing) must not be a file,
    nor lie under one."""
    if path.exists() and not path.is_dir():
        raise InputError(f"{flag} {path}: exists and is not a folder; give a new folder for the run's files")
    _check_folder(flag, path, next(p for p in path.absolute().parents if p.exists()))


def _check_folder(flag: str, path: Path, folder: Path) -> None:
    if not folder.is_dir():
        problem = f"{folder} is not a folder" if folder.exists() else f"folder {folder} does not exist"
        raise InputError(f"{flag} {path}: {problem}")


def chunk_seconds(value: float | None) -> float | None:
    """``--chunk-seconds`` checked: None (automatic), 0 (all at once) or a positive number of seconds."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise InputError(f"--chunk-seconds must be a number of seconds >= 0, got {value}")
    return value


def load_vqvae_on(model_dir: Path, device: str) -> tuple[torch.device, VQVAE]:
    """``--device`` resolved and the model directory's VQ-VAE placed there (eval mode)."""
    from model.checkpoint.builders import load_vqvae

    placed = resolve_device(device)
    return placed, load_vqvae(model_dir).to(placed)


def load_for_sampling(model_dir: Path, device: str, **options: Any) -> tuple[torch.device, SamplingModel]:
    """``--device`` resolved and the VQ-VAE and every prior of ``model_dir`` placed there, checked to fit
    each other; ``options`` go to ``model.sampling.loading.load_sampling_model`` (precision, ...)."""
    from model.sampling.loading import load_sampling_model

    placed = resolve_device(device)
    return placed, load_sampling_model(model_dir, placed, **options)


def load_codes_for(path: Path, config: VQVAEConfig) -> CodesFile:
    """The codes file at ``path``, refused (``CodesError``) unless its geometry fits the VQ-VAE ``config``."""
    from model.codes import load_codes

    codes = load_codes(path, codebook_size=config.codebook_size)
    codes.check_fits(hop_lengths=config.hop_lengths, codebook_size=config.codebook_size, sample_rate=config.sample_rate)
    return codes
