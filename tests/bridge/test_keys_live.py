"""CURVE keys issued or revoked while the daemon runs take effect within a second, without a restart."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bridge.keyring import REFRESH_S, KeyRing, revoke_client_key
from bridge.security import issue_client_keys
from common.errors import ConfigError
from plugin_host.client import RemoteError, SegueClient
from plugin_host.zmq_client import ClientKeys
from tests.bridge.daemon_rig import rig_config, running_daemon

pytestmark = [pytest.mark.timeout(60), pytest.mark.e2e]


def _client(addresses: dict[str, str], keys: ClientKeys, timeout: float = 3.0) -> SegueClient:
    a = addresses
    return SegueClient.over_zmq(a["zmq_request"], a["zmq_control"], None, keys=keys, timeout=timeout)


def test_the_ring_follows_the_folder(tmp_path: Path) -> None:
    ring = KeyRing(tmp_path)
    issue_client_keys(tmp_path, "alice")
    public = (tmp_path / "clients" / "alice.key").read_text()
    z85 = public.split('public-key = "')[1].split('"')[0]
    assert ring.name_of(z85) == "alice"
    revoke_client_key(tmp_path, "alice")
    time.sleep(REFRESH_S + 0.05)  # the folder's mtime may not tick on a coarse clock: the periodic re-read catches it
    assert ring.name_of(z85) is None and (tmp_path / "revoked" / "alice.key").is_file()
    with pytest.raises(ConfigError, match="no authorised client named 'alice'"):
        revoke_client_key(tmp_path, "alice")


def test_keys_issued_and_revoked_while_running(tmp_path: Path) -> None:
    keys_dir = tmp_path / "keys"
    alice_secret, server_public = issue_client_keys(keys_dir, "alice")
    with running_daemon(tmp_path / "s", rig_config(tmp_path, keys_dir=str(keys_dir))) as server:
        alice = _client(server.addresses, ClientKeys.load(alice_secret, server_public))
        assert alice.hello()["protocol_version"]
        bob_secret, _ = issue_client_keys(keys_dir, "bob")  # issued after the start: admitted without a restart
        time.sleep(1.0)
        bob = _client(server.addresses, ClientKeys.load(bob_secret, server_public))
        assert bob.hello()["protocol_version"]

        revoke_client_key(keys_dir, "alice")  # alice is connected: her next request is refused
        time.sleep(1.0)
        with pytest.raises(RemoteError) as err:
            alice.list_jobs()
        assert err.value.code == "not_allowed" and "revoked" in str(err.value)
        again = _client(server.addresses, ClientKeys.load(alice_secret, server_public), timeout=0.5)
        with pytest.raises(TimeoutError):  # and a new connection fails its handshake
            again.hello()
        assert bob.list_jobs() == []  # bob is unaffected (no jobs were submitted)
        for c in (alice, again, bob):
            c.close()
