"""``segue serve``: run the daemon until Ctrl-C, SIGTERM or a ``shutdown`` request.

Flags become settings here; the daemon is wired in ``segue.daemon`` (its composition root)."""

from __future__ import annotations

import argparse
import errno
import logging
from pathlib import Path
from typing import Any

from bridge.config import BridgeConfig, load_config_file
from common.errors import ConfigError

NAME = "serve"
HELP = "run the segue daemon (ZeroMQ + OSC front ends, job engine)"
DESCRIPTION = (
    "Run the segue daemon. Options come from --config FILE ([bridge], [engine] and [daemon] tables) and "
    "are overridden by flags. Binds 127.0.0.1 unless told otherwise; see docs/daemon.md."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="a segue TOML file")
    parser.add_argument("--host", help="ZeroMQ bind address (non-loopback needs --keys-dir)")
    parser.add_argument("--request-port", type=int)
    parser.add_argument("--control-port", type=int)
    parser.add_argument("--events-port", type=int)
    parser.add_argument("--osc-host", help="OSC bind address (non-loopback needs --osc-allow)")
    parser.add_argument("--osc-port", type=int)
    parser.add_argument("--osc-allow", action="append", metavar="IP", help="an address allowed to send OSC")
    parser.add_argument("--root", action="append", metavar="DIR", help="a directory clients may read inputs from")
    parser.add_argument("--keys-dir", help="CURVE keys directory (see 'segue keys issue')")
    parser.add_argument("--no-osc", action="store_true", help="do not start the OSC front end")
    parser.add_argument("--no-zmq", action="store_true", help="do not start the ZeroMQ front end")
    parser.add_argument("--state-dir", help="journal and render store (default ~/.segue)")
    parser.add_argument("--backend", help="the model backend factory, 'module:function' (or [daemon] backend)")
    parser.add_argument("--models", metavar="DIR", help="serve the model directories in DIR (or [daemon] models)")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for flag, name in (("host", "host"), ("request_port", "request_port"), ("control_port", "control_port"),
                       ("events_port", "events_port"), ("osc_host", "osc_host"), ("osc_port", "osc_port"),
                       ("keys_dir", "keys_dir")):
        if getattr(args, flag) is not None:
            out[name] = getattr(args, flag)
    if args.root:
        out["roots"] = tuple(str(Path(r).expanduser().resolve()) for r in args.root)
    if args.osc_allow:
        out["osc_allowed_sources"] = tuple(args.osc_allow)
    if args.no_osc:
        out["enable_osc"] = False
    if args.no_zmq:
        out["enable_zmq"] = False
    return out


def run(args: argparse.Namespace) -> int:
    import zmq

    from segue.daemon import daemon_settings, open_daemon

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    bridge, tables = load_config_file(args.config) if args.config else (BridgeConfig(), {})
    settings = daemon_settings(bridge, tables, _overrides(args), backend=args.backend, models=args.models,
                               state_dir=args.state_dir)
    with open_daemon(settings) as server:
        try:
            server.run(ready=lambda s: _print_addresses(s, settings.bridge, settings.state_dir))
        except (zmq.ZMQError, OSError) as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise ConfigError(f"cannot listen: {_address_of(exc, settings.bridge)} is already in use (another segue serve? "
                              "choose other ports with --request-port/--control-port/--events-port/--osc-port, 0 = any free)") from None
    return 0


def _address_of(exc: BaseException, config: BridgeConfig) -> str:
    """The address a failed bind named: pyzmq says it in the message; for OSC (UDP) it is the OSC port."""
    text = str(exc)
    if "addr='" in text:
        return text.split("addr='", 1)[1].split("'", 1)[0]
    return f"udp://{config.osc_host}:{config.osc_port}"


def _print_addresses(server: Any, config: BridgeConfig, state: Path) -> None:
    print("segue daemon listening:")
    for name, address in server.addresses.items():
        print(f"  {name:<12} {address}")
    print(f"  roots        {', '.join(config.roots) or '(none: clients cannot name input paths)'}")
    if config.keys_dir:
        keys = Path(config.keys_dir)
        clients = sorted(p.stem for p in (keys / "clients").glob("*.key"))
        print(f"  CURVE keys   {keys / 'server.key'} (public); clients: {', '.join(clients) or 'none'}")
    else:
        print("  CURVE keys   off (loopback only)")
    print(f"  state        {state}")
    print("Ctrl-C or SIGTERM stops it gracefully.", flush=True)
