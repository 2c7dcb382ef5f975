"""``segue keys issue NAME`` / ``segue keys revoke NAME``: let a collaborator on another machine use this daemon
(ZeroMQ CURVE), or stop them. Both take effect on a running daemon within a second (``bridge.keyring``)."""

from __future__ import annotations

import argparse

from bridge.keyring import mark_owner, revoke_client_key
from bridge.security import issue_client_keys

NAME = "keys"
HELP = "issue or revoke CURVE keys of remote collaborators"
DEFAULT_KEYS_DIR = "~/.segue/keys"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    issue = sub.add_parser("issue", help="make a client keypair and authorise it")
    issue.add_argument("name", help="the collaborator's name (letters, digits, - and _)")
    issue.add_argument("--owner", action="store_true",
                       help="give the key the owner's rights (load/unload models, stop the daemon, every job)")
    issue.add_argument("--keys-dir", default=DEFAULT_KEYS_DIR, help=f"the daemon's keys directory ({DEFAULT_KEYS_DIR})")
    revoke = sub.add_parser("revoke", help="withdraw a client's key (its open connections are refused too)")
    revoke.add_argument("name", help="the collaborator's name, as issued")
    revoke.add_argument("--keys-dir", default=DEFAULT_KEYS_DIR, help=f"the daemon's keys directory ({DEFAULT_KEYS_DIR})")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.action == "revoke":
        moved = revoke_client_key(Path(args.keys_dir).expanduser(), args.name)
        print(f"revoked {args.name!r}: its public key moved to {moved}; a running daemon refuses it within a second")
        return 0
    secret, server_public = issue_client_keys(Path(args.keys_dir).expanduser(), args.name)
    if args.owner:
        mark_owner(Path(args.keys_dir).expanduser(), args.name)
    print(f"client secret key: {secret} ({'owner' if args.owner else 'collaborator'})")
    print(f"daemon public key: {server_public}")
    print("Give both files to the collaborator (privately); they connect with "
          "--key <client secret key> --server-key <daemon public key>.")
    print("The daemon must run with keys_dir pointing at this directory; a running daemon admits the key within a second.")
    return 0
