import pytest
import torch

from common.errors import InputError
from segue.device import resolve_device


def test_cpu_and_auto() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")


def test_absent_accelerators_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(InputError, match="--device cuda: no CUDA GPU"):
        resolve_device("cuda")
    with pytest.raises(InputError, match="not one of auto, cpu, cuda, mps"):
        resolve_device("tpu")
