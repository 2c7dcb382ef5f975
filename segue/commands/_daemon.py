"""Options shared by the commands that talk to a running daemon (status, jobs, cancel)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bridge.config import BridgeConfig, load_config_file
from common.errors import ConfigError, SegueError
from plugin_host.client import RemoteError, SegueClient
from plugin_host.zmq_client import ClientKeys


class DaemonError(SegueError):
    """The daemon refused a request; the message starts with its error code."""

    code = "daemon_error"


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("daemon connection")
    g.add_argument("--config", help="read host and ports from this segue TOML file ([bridge] table)")
    g.add_argument("--host", help="daemon host (default 127.0.0.1)")
    g.add_argument("--request-port", type=int, help="ZeroMQ request port (default 5570)")
    g.add_argument("--control-port", type=int, help="ZeroMQ control port (default 5571)")
    g.add_argument("--key", help="CURVE: the client secret key file from 'segue keys issue'")
    g.add_argument("--server-key", help="CURVE: the daemon's public key file (server.key)")
    g.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for the daemon (default 3)")


def endpoints(args: argparse.Namespace) -> tuple[str, str]:
    """The daemon's ZeroMQ request and control addresses from the flags, else --config, else the defaults."""
    config = load_config_file(args.config)[0] if args.config else BridgeConfig()
    host = args.host or config.host
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    request = args.request_port or config.request_port
    control = args.control_port or config.control_port
    return f"tcp://{host}:{request}", f"tcp://{host}:{control}"


def connect(args: argparse.Namespace) -> SegueClient:
    request, control = endpoints(args)
    keys = None
    if args.key or args.server_key:
        if not (args.key and args.server_key):
            raise ConfigError("CURVE needs both --key (client secret key file) and --server-key (server.key)")
        keys = ClientKeys.load(Path(args.key), Path(args.server_key))
    return SegueClient.over_zmq(request, control, None, name="segue-cli",
                                keys=keys, timeout=args.timeout)


def call(args: argparse.Namespace, fn_name: str, *fn_args: object) -> object:
    """Run one client call; a daemon that does not answer becomes a one-line error."""
    client = connect(args)
    try:
        return getattr(client, fn_name)(*fn_args)
    except RemoteError as exc:
        raise DaemonError(f"the daemon answered {exc.code}: {exc.message}") from None
    except TimeoutError:
        raise ConfigError(
            f"no segue daemon answered at {' / '.join(endpoints(args))} within {args.timeout:g} s "
            "(is 'segue serve' running? are host, ports and keys right?)"
        ) from None
    finally:
        client.close()


def job_line(job: dict) -> str:
    progress = f"{100 * job.get('fraction', 0.0):5.1f}%"
    where = f" #{job['queue_position']}" if job.get("queue_position") else ""
    eta = f" eta {job['eta_s']:.0f}s" if job.get("eta_s") is not None else ""
    error = f" {job['error_code']}: {job['error_message']}" if job.get("error_code") else ""
    return (f"{job['id']}  {job['state']:<11} {progress}{where}{eta}  {job['kind']} {job['model']} "
            f"{job['length_s']:.1f}s x{job['candidates']}  {job.get('client', '')}{error}")
