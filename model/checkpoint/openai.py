"""Reading the official OpenAI Jukebox ``.pth.tar`` files (``torch.save`` pickles, not tar archives).

A pickle can run arbitrary code when loaded, so these files are opened with
``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers. If a file holds
other pickled objects, loading stops with a ``CheckpointError`` that explains ``--trust-pickle``;
only when the user passes it (for a file from a source they trust) is full unpickling used.
"""

from __future__ import annotations

import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from common.errors import CheckpointError

TRUST_HINT = (
    "it contains pickled Python objects besides tensors, which can run code when loaded. "
    "If the file comes from a source you trust (e.g. OpenAI's own download), load it with "
    "--trust-pickle to allow full unpickling"
)


@dataclass(frozen=True)
class TorchCheckpoint:
    """The parts of a Jukebox checkpoint segue uses: ``checkpoint['model']`` and ``checkpoint['hps']``."""

    state_dict: dict[str, torch.Tensor]  # OpenAI key names, ``module.`` prefix removed
    hps: dict[str, Any] | None  # Jukebox hyper-parameters saved with the weights, if any
    path: Path


def load_torch_file(path: str | os.PathLike[str], *, trust_pickle: bool = False) -> Any:
    """``torch.load`` on CPU with ``weights_only=True`` unless ``trust_pickle``; errors become ``CheckpointError``."""
    file = Path(path)
    if not file.exists():
        raise CheckpointError(f"{file}: no such file")
    if not file.is_file():
        raise CheckpointError(f"{file}: not a file")
    try:
        return torch.load(file, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as exc:
        what = describe_bad_torch_file(file, exc)
        if what is None and not trust_pickle and "weights_only" in str(exc).lower().replace(" ", "_"):
            raise CheckpointError(f"{file}: refused to load: {TRUST_HINT}") from exc
        raise CheckpointError(f"{file}: {what or _DAMAGED}") from exc
    except ModuleNotFoundError as exc:
        raise CheckpointError(
            f"{file}: its pickled objects need the Python module '{exc.name}', which is not installed"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError, KeyError, zipfile.BadZipFile, AttributeError) as exc:
        raise CheckpointError(f"{file}: {describe_bad_torch_file(file, exc) or _DAMAGED}") from exc


_AGAIN = "download or copy it again"
_DAMAGED = f"a PyTorch checkpoint whose contents are damaged; {_AGAIN}"
_PICKLE_MAGIC = b"\x80"  # torch.save's older format: a pickle, protocol 2 or later
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save's default format since PyTorch 1.6


def describe_bad_torch_file(file: Path, exc: BaseException) -> str | None:
    """Say in plain words what ``file`` is when ``torch.load`` failed on it with ``exc`` (torch's own
    messages are internal, e.g. a bare ``KeyError: 101`` for a text file). None: it looks like an
    intact checkpoint, so the failure is about its contents (e.g. pickled objects)."""
    size = file.stat().st_size
    with file.open("rb") as f:
        head = f.read(64)
    if size == 0:
        return f"the file is empty (0 bytes), not a PyTorch checkpoint; {_AGAIN}"
    if head.startswith(_ZIP_MAGIC):
        if not zipfile.is_zipfile(file):
            return f"the checkpoint is cut short ({size} bytes, the end of its zip archive is missing): " \
                   f"the download or copy did not finish; {_AGAIN}"
        with zipfile.ZipFile(file) as archive:
            if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in archive.namelist()):
                return "a zip archive, but not a PyTorch checkpoint (it has no data.pkl inside)"
        return None if isinstance(exc, pickle.UnpicklingError) else _DAMAGED
    if head.startswith(_PICKLE_MAGIC):
        cut = isinstance(exc, EOFError) or any(w in str(exc).lower() for w in ("eof", "truncated"))
        if cut:
            return f"the checkpoint is cut short ({size} bytes, an older-format PyTorch file that ends early): " \
                   f"the download or copy did not finish; {_AGAIN}"
        return None if isinstance(exc, pickle.UnpicklingError) else _DAMAGED
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and all(c.isprintable() or c.isspace() for c in text):
        start = " ".join(text.split())[:40]
        return f"a text file, not a PyTorch checkpoint (it starts with {start!r}); a failed download often " \
               "saves an error page instead of the file"
    return "not a PyTorch checkpoint: neither the zip format nor the older pickle format that torch.save writes"


def read_openai_checkpoint(path: str | os.PathLike[str], *, trust_pickle: bool = False) -> TorchCheckpoint:
    """Read a Jukebox ``vqvae.pth.tar`` / ``prior_level_N.pth.tar`` (or a bare state dict)."""
    file = Path(path)
    checkpoint = load_torch_file(file, trust_pickle=trust_pickle)
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{file}: expected a checkpoint dict, found {type(checkpoint).__name__}")
    if "model" in checkpoint:
        weights = checkpoint["model"]
        hps = checkpoint.get("hps")
    else:  # a bare state dict saved with torch.save(model.state_dict())
        weights, hps = checkpoint, None
    if not isinstance(weights, Mapping) or not weights:
        raise CheckpointError(f"{file}: checkpoint['model'] is not a non-empty state dict")
    state_dict: dict[str, torch.Tensor] = {}
    for key, value in weights.items():
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(
                f"{file}: entry {key!r} of the state dict is a {type(value).__name__}, not a tensor"
            )
        state_dict[key.removeprefix("module.")] = value
    if hps is not None and not isinstance(hps, Mapping):
        hps = dict(vars(hps)) if hasattr(hps, "__dict__") else None  # an hps object unpickled with trust
    return TorchCheckpoint(state_dict, dict(hps) if hps is not None else None, file)
