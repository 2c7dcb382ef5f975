"""``segue keys issue NAME``: let a collaborator on another machine use this daemon (ZeroMQ CURVE)."""

from __future__ import annotations

import argparse

from bridge.security import issue_client_keys

NAME = "keys"
HELP = "issue CURVE keys for a remote collaborator"
DEFAULT_KEYS_DIR = "~/.segue/keys"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    issue = sub.add_parser("issue", help="make a client keypair and authorise it")
    issue.add_argument("name", help="the collaborator's name (letters, digits, - and _)")
    issue.add_argument("--keys-dir", default=DEFAULT_KEYS_DIR, help=f"the daemon's keys directory ({DEFAULT_KEYS_DIR})")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    secret, server_public = issue_client_keys(Path(args.keys_dir).expanduser(), args.name)
    print(f"client secret key: {secret}")
    print(f"daemon public key: {server_public}")
    print("Give both files to the collaborator (privately); they connect with "
          "--key <client secret key> --server-key <daemon public key>.")
    print("The daemon must run with keys_dir pointing at this directory; restart it to admit the new key.")
    return 0
