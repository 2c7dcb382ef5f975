import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from common.errors import CheckpointError
from model.checkpoint.builders import build_component, build_module, model_identity, register_kind
from model.checkpoint.model_dir import (
    MANIFEST,
    load_component,
    read_manifest,
    save_component,
    sha256_file,
)


def _linear(cfg: Mapping[str, Any]) -> nn.Module:
    return nn.Linear(int(cfg["inputs"]), int(cfg["outputs"]))


register_kind("test_linear", _linear)


def _save_linear(model_dir: Path, name: str = "proj", inputs: int = 3, outputs: int = 2) -> nn.Linear:
    module = nn.Linear(inputs, outputs)
    save_component(
        model_dir,
        name,
        "test_linear",
        {"inputs": inputs, "outputs": outputs},
        module.state_dict(),
        model_name="tiny",
    )
    return module


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    module = _save_linear(tmp_path / "m")
    loaded = load_component(tmp_path / "m", "proj")
    assert loaded.config == {"inputs": 3, "outputs": 2}
    assert loaded.entry.kind == "test_linear"
    torch.testing.assert_close(loaded.state_dict["weight"], module.weight.detach())
    manifest = json.loads((tmp_path / "m" / MANIFEST).read_text())
    assert manifest["format"] == "segue-model" and manifest["version"] == 1 and manifest["name"] == "tiny"
    assert manifest["components"][0]["sha256"] == sha256_file(tmp_path / "m" / "proj.safetensors")
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        MANIFEST,
        "proj.config.json",
        "proj.safetensors",
    ]


def test_build_component_loads_weights(tmp_path: Path) -> None:
    module = _save_linear(tmp_path / "m")
    built = build_component(tmp_path / "m", "proj")
    assert isinstance(built, nn.Linear) and not built.training
    x = torch.randn(4, 3)  # (batch, inputs)
    torch.testing.assert_close(built(x), module(x))


def test_components_accumulate_and_replace(tmp_path: Path) -> None:
    _save_linear(tmp_path / "m", "a")
    _save_linear(tmp_path / "m", "b", inputs=5)
    _save_linear(tmp_path / "m", "a", inputs=7)
    manifest = read_manifest(tmp_path / "m")
    assert [e.name for e in manifest.components] == ["b", "a"]
    assert load_component(tmp_path / "m", "a").config["inputs"] == 7


def test_tied_weights_are_saved(tmp_path: Path) -> None:
    shared = torch.randn(4, 2)
    save_component(tmp_path / "m", "tied", "test_linear", {}, {"x_emb": shared, "x_out": shared})
    sd = load_component(tmp_path / "m", "tied").state_dict
    torch.testing.assert_close(sd["x_emb"], sd["x_out"])


def test_identity_names_model_and_weights(tmp_path: Path) -> None:
    _save_linear(tmp_path / "m", "vqvae")
    first = model_identity(tmp_path / "m")
    assert first.startswith("tiny@") and len(first) == len("tiny@") + 10
    _save_linear(tmp_path / "m", "vqvae")  # new random weights
    assert model_identity(tmp_path / "m") != first


def test_missing_and_foreign_dirs(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="model directory not found"):
        read_manifest(tmp_path / "nope")
    with pytest.raises(CheckpointError, match="no manifest.json"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text('{"format": "other"}')
    with pytest.raises(CheckpointError, match="not a segue model manifest"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text('{"format": "segue-model", "version": 7}')
    with pytest.raises(CheckpointError, match="version 7 is not supported"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST).write_text("{broken")
    with pytest.raises(CheckpointError, match="not readable JSON"):
        read_manifest(tmp_path)


def test_unknown_component_and_kind(tmp_path: Path) -> None:
    _save_linear(tmp_path / "m")
    with pytest.raises(CheckpointError, match=r"no component 'vqvae' \(it has: proj\)"):
        load_component(tmp_path / "m", "vqvae")
    save_component(tmp_path / "m", "odd", "banjo", {}, {"w": torch.zeros(1)})
    with pytest.raises(CheckpointError, match="unknown component kind 'banjo'"):
        build_component(tmp_path / "m", "odd")


def test_damaged_weights_are_caught(tmp_path: Path) -> None:
    _save_linear(tmp_path / "m")
    weights = tmp_path / "m" / "proj.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="do not match the manifest checksum"):
        load_component(tmp_path / "m", "proj")
    weights.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_component(tmp_path / "m", "proj", verify=False)
    weights.unlink()
    with pytest.raises(CheckpointError, match=r"proj\.safetensors: missing"):
        load_component(tmp_path / "m", "proj")


def test_strict_loading_lists_problems() -> None:
    sd = nn.Linear(3, 2).state_dict()
    with pytest.raises(CheckpointError, match=r"src: weights do not fit the model \(1 missing: bias\)"):
        build_module("test_linear", {"inputs": 3, "outputs": 2}, {"weight": sd["weight"]}, "src")
    extra = {**sd, **{f"extra.{i}": torch.zeros(1) for i in range(5)}}
    with pytest.raises(CheckpointError, match=r"5 unexpected: extra\.0, extra\.1, extra\.2 and 2 more"):
        build_module("test_linear", {"inputs": 3, "outputs": 2}, extra, "src")
    with pytest.raises(CheckpointError, match=r"wrong shape: weight \(2, 3\) vs model \(2, 4\)"):
        build_module("test_linear", {"inputs": 4, "outputs": 2}, sd, "src")
    with pytest.raises(CheckpointError, match="config does not describe a valid test_linear"):
        build_module("test_linear", {"outputs": 2}, sd, "src")


def test_bad_component_name(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="component name"):
        save_component(tmp_path, "../escape", "test_linear", {}, {})
