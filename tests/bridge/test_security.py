"""Path rules, limits, loopback defaults, CURVE key issuing."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from bridge.config import BridgeConfig, load_config_file
from bridge.jobs import JobKind, JobSpec, Length
from bridge.security import FileMissing, Guard, PathNotAllowed, TooLarge, issue_client_keys
from common.errors import ConfigError


@pytest.fixture
def guard(tmp_path: Path) -> Guard:
    root = tmp_path / "root"
    root.mkdir()
    (root / "ok.wav").write_bytes(b"RIFF" + b"\0" * 60)
    (root / "big.wav").write_bytes(b"\0" * 2000)
    (tmp_path / "secret.wav").write_bytes(b"s")
    os.symlink(tmp_path / "secret.wav", root / "escape.wav")
    os.symlink(root / "ok.wav", root / "inner-link.wav")
    os.symlink("/dev/null", root / "device.wav")
    os.mkfifo(root / "pipe.wav")
    (root / "dir.wav").mkdir()
    return Guard(BridgeConfig(roots=(str(root),), max_input_bytes=1000, max_seconds=60, max_candidates=2))


def test_files_inside_the_roots_resolve(guard: Guard) -> None:
    root = guard.roots[0]
    assert guard.input_path(str(root / "ok.wav")) == root / "ok.wav"
    assert guard.input_path(str(root / "inner-link.wav")) == root / "ok.wav"


@pytest.mark.parametrize(
    ("name", "error"),
    [
        ("escape.wav", PathNotAllowed),  # symlink out of the root
        ("device.wav", PathNotAllowed),  # symlink to a device outside
        ("pipe.wav", PathNotAllowed),  # FIFO
        ("dir.wav", PathNotAllowed),  # directory
        ("../secret.wav", PathNotAllowed),  # '..' escape
        ("sub/../ok.wav", PathNotAllowed),  # '..' even when it would stay inside
        ("missing.wav", FileMissing),
        ("big.wav", TooLarge),
    ],
)
def test_paths_are_refused(guard: Guard, name: str, error: type) -> None:
    with pytest.raises(error):
        guard.input_path(f"{guard.roots[0]}/{name}")


def test_relative_nul_and_no_roots_are_refused(tmp_path: Path) -> None:
    guard = Guard(BridgeConfig(roots=(str(tmp_path),)))
    for path in ("ok.wav", f"{tmp_path}/a\0b"):
        with pytest.raises(PathNotAllowed):
            guard.input_path(path)
    with pytest.raises(PathNotAllowed, match="no roots"):
        Guard(BridgeConfig()).input_path(str(tmp_path))


def test_the_daemons_own_results_are_allowed_inputs_even_without_roots(tmp_path: Path) -> None:
    renders, elsewhere = tmp_path / "store" / "renders", tmp_path / "music"
    for folder in (renders / "job1", elsewhere):
        folder.mkdir(parents=True)
    (renders / "job1" / "candidate-0.codes.npz").write_bytes(b"PK")
    (elsewhere / "riff.wav").write_bytes(b"RIFF")
    guard = Guard(BridgeConfig(), results=renders)
    assert guard.input_path(str(renders / "job1" / "candidate-0.codes.npz")) == renders / "job1" / "candidate-0.codes.npz"
    with pytest.raises(PathNotAllowed, match="outside the allowed roots"):
        guard.input_path(str(elsewhere / "riff.wav"))
    with pytest.raises(PathNotAllowed, match=r"contains '\.\.'"):
        guard.input_path(str(renders / ".." / ".." / "music" / "riff.wav"))


def test_job_limits(guard: Guard) -> None:
    guard.job(JobSpec(kind=JobKind.GENERATE, model="m", length=Length(seconds=60)))
    with pytest.raises(TooLarge, match="60"):
        guard.job(JobSpec(kind=JobKind.GENERATE, model="m", length=Length(seconds=61)))
    with pytest.raises(TooLarge, match="candidates"):
        guard.job(JobSpec(kind=JobKind.GENERATE, model="m", length=Length(seconds=1), candidates=3))
    with pytest.raises(TooLarge):
        guard.buffer(b"\0" * 1001, "region")


def test_defaults_bind_loopback_and_remote_needs_keys_or_a_source_list() -> None:
    config = BridgeConfig()
    assert config.host == "127.0.0.1" and config.osc_host == "127.0.0.1"
    with pytest.raises(ConfigError, match="CURVE"):
        BridgeConfig(host="0.0.0.0")
    with pytest.raises(ConfigError, match="osc_allowed_sources"):
        BridgeConfig(osc_host="0.0.0.0")
    with pytest.raises(ConfigError, match="not an IP"):
        BridgeConfig(osc_host="0.0.0.0", osc_allowed_sources=("studio-mac",))
    assert BridgeConfig(host="0.0.0.0", keys_dir="/k").keys_dir == "/k"


def test_config_file(tmp_path: Path) -> None:
    f = tmp_path / "segue.toml"
    f.write_text('[bridge]\nosc_port = 9100\nroots = ["/music"]\n[engine]\nqueue_limit = 4\n')
    config, tables = load_config_file(f)
    assert config.osc_port == 9100 and config.roots == ("/music",) and tables["engine"]["queue_limit"] == 4
    f.write_text("[bridge]\nport = 1\n")
    with pytest.raises(ConfigError, match="unknown option"):
        load_config_file(f)


def test_issued_keys_are_authorised_once(tmp_path: Path) -> None:
    secret, server_public = issue_client_keys(tmp_path / "keys", "alice")
    assert secret.is_file() and server_public.is_file()
    assert (tmp_path / "keys" / "clients" / "alice.key").is_file()
    assert "secret" not in server_public.read_text()
    with pytest.raises(ConfigError, match="already"):
        issue_client_keys(tmp_path / "keys", "alice")
    with pytest.raises(ConfigError):
        issue_client_keys(tmp_path / "keys", "../bob")


@pytest.mark.skipif(os.name != "posix", reason="POSIX permissions only")
def test_secret_keys_are_owner_only(tmp_path: Path) -> None:
    # pyzmq writes them 0644; the client's is copied to a collaborator, where cp keeps the mode
    secret, _ = issue_client_keys(tmp_path / "keys", "alice")
    for path in (secret, tmp_path / "keys" / "server.key_secret"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


@pytest.mark.parametrize(
    "line,words",
    [
        ('request_port = "5570"', "request_port = '5570' must be an integer"),
        ("enable_osc = 1", "enable_osc = 1 must be true or false"),
        ('roots = "/music"', "roots = '/music' must be a list of strings"),
        ("host = 127", "host = 127 must be a string"),
        ('max_seconds = "long"', "max_seconds = 'long' must be a number"),
    ],
)
def test_config_values_of_the_wrong_type_are_named(tmp_path: Path, line: str, words: str) -> None:
    # request_port = "x" failed later as "internal error: TypeError: '<=' not supported ..."
    f = tmp_path / "segue.toml"
    f.write_text(f"[bridge]\n{line}\n")
    with pytest.raises(ConfigError, match=re.escape(f"[bridge] {words}")):
        load_config_file(f)
    assert BridgeConfig.from_dict({"max_seconds": 30, "keys_dir": None}).max_seconds == 30  # an int is a number
