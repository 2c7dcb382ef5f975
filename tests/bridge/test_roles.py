"""Owner and collaborators over both transports: a collaborator sees and cancels only its own jobs and may
not load or unload models or stop the daemon (bridge/roles.py). Loopback is the owner by default, so these
tests turn ``local_owner`` off to make loopback peers collaborators."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.keyring import mark_owner
from bridge.security import issue_client_keys
from plugin_host.client import RemoteError, SegueClient
from plugin_host.zmq_client import ClientKeys
from tests.bridge.daemon_rig import connect, rig_config, running_daemon
from tests.bridge.tone_backend import ToneBackend

pytestmark = [pytest.mark.timeout(60), pytest.mark.e2e]
JOB = {"kind": "generate", "model": "tiny", "length_s": 0.1}


def _keyed(server: object, keys_dir: Path, name: str, client_name: str = "") -> SegueClient:
    a = server.addresses  # type: ignore[attr-defined]
    keys = ClientKeys.load(keys_dir / "issued" / f"{name}.key_secret", keys_dir / "server.key")
    c = SegueClient.over_zmq(a["zmq_request"], a["zmq_control"], a["zmq_events"], keys=keys, name=client_name or name)
    c.hello()
    return c


def _code(call: object) -> str:
    with pytest.raises(RemoteError) as err:
        call()  # type: ignore[operator]
    return err.value.code


@pytest.fixture
def keys_dir(tmp_path: Path) -> Path:
    d = tmp_path / "keys"
    for name in ("alice", "bob", "olga"):
        issue_client_keys(d, name)
    mark_owner(d, "olga")
    return d


def test_collaborators_over_zeromq(tmp_path: Path, keys_dir: Path) -> None:
    config = rig_config(tmp_path, keys_dir=str(keys_dir), local_owner=False)
    with running_daemon(tmp_path / "s", config, ToneBackend(token_s=0.05)) as server:
        alice = _keyed(server, keys_dir, "alice", client_name="mallory")  # the hello name is not an identity
        bob, olga = _keyed(server, keys_dir, "bob"), _keyed(server, keys_dir, "olga")
        mine, theirs = alice.submit(**JOB)["id"], bob.submit(**JOB)["id"]
        assert alice.status(mine)["client"] == "alice"
        assert [j["id"] for j in alice.list_jobs()] == [mine]
        for call in (lambda: alice.status(theirs), lambda: alice.cancel(theirs), lambda: alice.events_since(theirs),
                     lambda: alice.fetch_result(theirs), lambda: alice.resubmit(theirs)):  # fmt: skip
            assert _code(call) == "not_found"
        for call in (lambda: alice.load_model("tiny"), lambda: alice.unload_model("tiny"), alice.shutdown):
            assert _code(call) == "not_allowed"
        assert alice.cancel(mine)["state"] in ("cancelled", "done")
        assert {j["id"] for j in olga.list_jobs()} == {mine, theirs}  # the owner sees and may do everything
        assert olga.cancel(theirs)["id"] == theirs
        olga.load_model("tiny")
        for c in (alice, bob, olga):
            c.close()


def test_shared_jobs_are_visible_to_collaborators(tmp_path: Path, keys_dir: Path) -> None:
    config = rig_config(tmp_path, keys_dir=str(keys_dir), local_owner=False, share_jobs=True)
    with running_daemon(tmp_path / "s", config) as server:
        alice, bob = _keyed(server, keys_dir, "alice"), _keyed(server, keys_dir, "bob")
        theirs = bob.submit(**JOB)["id"]
        assert alice.status(theirs)["id"] == theirs and [j["id"] for j in alice.list_jobs()] == [theirs]
        assert _code(alice.shutdown) == "not_allowed"  # sharing jobs gives no owner rights
        alice.close()
        bob.close()


def test_loopback_is_the_owner_unless_told_otherwise(tmp_path: Path, keys_dir: Path) -> None:
    with running_daemon(tmp_path / "s", rig_config(tmp_path, keys_dir=str(keys_dir))) as server:
        alice = _keyed(server, keys_dir, "alice")  # a CURVE key connecting from loopback: local, the owner
        alice.load_model("tiny")
        alice.close()


def test_collaborators_over_osc(tmp_path: Path) -> None:
    with running_daemon(tmp_path / "s", rig_config(tmp_path, local_owner=False)) as server:
        c = connect(server, "osc")
        job = c.submit(**JOB)["id"]
        assert c.status(job)["client"] == "osc:127.0.0.1"
        assert [j["id"] for j in c.list_jobs()] == [job]
        for call in (lambda: c.unload_model("tiny"), c.shutdown):
            assert _code(call) == "not_allowed"
        c.close()
    with running_daemon(tmp_path / "t", rig_config(tmp_path)) as server:  # loopback OSC is the owner by default
        c = connect(server, "osc")
        c.load_model("tiny")
        c.close()
