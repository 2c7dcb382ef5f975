import argparse
from pathlib import Path

import pytest
import torch

from common.errors import CheckpointError
from model.checkpoint.openai import read_openai_checkpoint


def _state() -> dict[str, torch.Tensor]:
    return {"bottleneck.level_blocks.0.k": torch.randn(4, 2), "decoders.0.out.bias": torch.randn(1)}


def test_reads_model_and_hps(tmp_path: Path) -> None:
    hps = {"sr": 44100, "downs_t": (3, 2, 2), "dilation_cycle": None}
    torch.save({"model": _state(), "hps": hps, "opt": None, "step": 7}, tmp_path / "vqvae.pth.tar")
    ckpt = read_openai_checkpoint(tmp_path / "vqvae.pth.tar")
    assert set(ckpt.state_dict) == set(_state())
    assert ckpt.hps == hps


def test_legacy_format_and_module_prefix(tmp_path: Path) -> None:
    state = {f"module.{k}": v for k, v in _state().items()}
    torch.save({"model": state}, tmp_path / "old.pth.tar", _use_new_zipfile_serialization=False)
    ckpt = read_openai_checkpoint(tmp_path / "old.pth.tar")
    assert set(ckpt.state_dict) == set(_state()) and ckpt.hps is None


def test_bare_state_dict(tmp_path: Path) -> None:
    torch.save(_state(), tmp_path / "bare.pt")
    assert set(read_openai_checkpoint(tmp_path / "bare.pt").state_dict) == set(_state())


def test_pickled_objects_need_trust(tmp_path: Path) -> None:
    torch.save({"model": _state(), "hps": argparse.Namespace(sr=22050)}, tmp_path / "obj.pth.tar")
    with pytest.raises(CheckpointError, match=r"obj\.pth\.tar: refused to load: .*--trust-pickle"):
        read_openai_checkpoint(tmp_path / "obj.pth.tar")
    ckpt = read_openai_checkpoint(tmp_path / "obj.pth.tar", trust_pickle=True)
    assert ckpt.hps == {"sr": 22050}


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such file"):
        read_openai_checkpoint(tmp_path / "missing.pth.tar")
    with pytest.raises(CheckpointError, match="not a file"):
        read_openai_checkpoint(tmp_path)
    (tmp_path / "text.pth.tar").write_text("hello")
    with pytest.raises(CheckpointError, match=r"text\.pth\.tar: a text file, not a PyTorch checkpoint \(it starts with 'hello'\)"):
        read_openai_checkpoint(tmp_path / "text.pth.tar")
    torch.save({"model": _state()}, tmp_path / "full.pth.tar")
    data = (tmp_path / "full.pth.tar").read_bytes()
    (tmp_path / "cut.pth.tar").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pth\.tar: the checkpoint is cut short \(\d+ bytes, the end of its zip archive is missing\)"):
        read_openai_checkpoint(tmp_path / "cut.pth.tar")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="expected a checkpoint dict"):
        read_openai_checkpoint(tmp_path / "list.pt")
    torch.save({"model": {"a": torch.zeros(1), "b": 3}}, tmp_path / "mixed.pt")
    with pytest.raises(CheckpointError, match="entry 'b' of the state dict is a int"):
        read_openai_checkpoint(tmp_path / "mixed.pt")
