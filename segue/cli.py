"""The ``segue`` command line.

Each sub-command lives in its own module under ``segue.commands`` and exposes

    NAME: str                   # the sub-command name
    HELP: str                   # one line for ``segue --help``
    def add_arguments(parser: argparse.ArgumentParser) -> None
    def run(args: argparse.Namespace) -> int

Modules are discovered automatically, so adding a command never edits this file.
User errors (``SegueError``) are printed as one line, without a traceback; ``--debug`` shows it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from common.errors import SegueError
from segue.runtime import keep_freed_memory

from . import commands as _commands


def _load_commands() -> list:
    mods = []
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module(f"{_commands.__name__}.{info.name}"))
    return sorted(mods, key=lambda m: m.NAME)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="segue",
        description="segue: a local Jukebox-class music continuation engine and DAW bridge.",
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in _load_commands():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=getattr(mod, "DESCRIPTION", mod.HELP))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    keep_freed_memory()
    try:
        rc = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handlers below
        return rc
    except SegueError as exc:
        if args.debug:
            raise
        print(f"segue {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # 'segue jobs | head' closed our stdout: not an error of ours or the user's
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush does not fail again
        return 0
    except KeyboardInterrupt:
        print(f"segue {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an internal bug: say so briefly; --debug shows the traceback
        if args.debug:
            raise
        print(
            f"segue {args.command}: internal error: {type(exc).__name__}: {exc} (run with --debug for details)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
