"""Codes files: the discrete VQ-VAE tokens of a piece of audio, one array per level, versioned.

A codes file is an ``.npz`` archive (readable with ``numpy.load(..., allow_pickle=False)``) with

- ``level_0``, ``level_1``, ...: integer arrays ``(batch, tokens)``, level 0 = bottom (hop 8),
  stored in the smallest signed integer type that holds the codebook (int16 for 2048 codes);
- ``meta``: a JSON string ``{"format": "segue-codes", "version": 1, "sample_rate", "hop_lengths",
  "codebook_size", "model", "source_samples", "source_name"}``.

``load_codes`` validates everything and returns int64 arrays, so downstream code never sees a
half-valid file. Only JSON and plain integer arrays are read: nothing is unpickled.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import CodesError
from model.atomic import atomic_write_bytes

CODES_FORMAT = "segue-codes"
CODES_VERSION = 1


@dataclass(frozen=True)
class CodesMeta:
    """What the codes mean: which model made them, at which rate, from which audio."""

    sample_rate: int
    hop_lengths: tuple[int, ...]  # per level, bottom first, e.g. (8, 32, 128)
    codebook_size: int
    model: str  # model identity, e.g. "jukebox-vqvae@3f2a9c1e" (see model.checkpoint)
    source_samples: int  # length of the encoded audio in samples at sample_rate
    source_name: str = ""  # file name of the encoded audio, for people reading the file

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": CODES_FORMAT,
            "version": CODES_VERSION,
            "sample_rate": self.sample_rate,
            "hop_lengths": list(self.hop_lengths),
            "codebook_size": self.codebook_size,
            "model": self.model,
            "source_samples": self.source_samples,
            "source_name": self.source_name,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], name: str = "codes file") -> CodesMeta:
        if d.get("format") != CODES_FORMAT:
            raise CodesError(f"{name}: not a segue codes file (format {d.get('format')!r})")
        if d.get("version") != CODES_VERSION:
            raise CodesError(
                f"{name}: codes format version {d.get('version')!r} is not supported "
                f"(this segue reads version {CODES_VERSION})"
            )
        try:
            meta = cls(
                sample_rate=int(d["sample_rate"]),
                hop_lengths=tuple(int(h) for h in d["hop_lengths"]),
                codebook_size=int(d["codebook_size"]),
                model=str(d["model"]),
                source_samples=int(d["source_samples"]),
                source_name=str(d.get("source_name", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise CodesError(f"{name}: metadata is incomplete or malformed ({exc!r})") from exc
        if (
            not meta.hop_lengths
            or min(meta.hop_lengths) < 1
            or meta.codebook_size < 1
            or meta.sample_rate < 1
        ):
            raise CodesError(f"{name}: metadata has non-positive hop lengths, codebook size or sample rate")
        return meta


@dataclass(frozen=True)
class CodesFile:
    """A loaded codes file: ``codes[level]`` is int64 ``(batch, tokens)``, bottom level first."""

    codes: tuple[np.ndarray, ...]
    meta: CodesMeta
    path: Path | None = None

    @property
    def levels(self) -> int:
        return len(self.codes)

    def level(self, level: int) -> np.ndarray:
        if not 0 <= level < self.levels:
            raise CodesError(f"{self._name}: level {level} does not exist; levels are 0..{self.levels - 1}")
        return self.codes[level]

    def check_fits(self, *, hop_lengths: Sequence[int], codebook_size: int, sample_rate: int) -> None:
        """Raise ``CodesError`` unless these codes were made by a model with this geometry."""
        theirs = (tuple(self.meta.hop_lengths), self.meta.codebook_size, self.meta.sample_rate)
        ours = (tuple(hop_lengths), codebook_size, sample_rate)
        if theirs != ours:
            raise CodesError(
                f"{self._name}: made by a model with hops {theirs[0]}, {theirs[1]} codes, {theirs[2]} Hz; "
                f"this model has hops {ours[0]}, {ours[1]} codes, {ours[2]} Hz"
            )

    def check_model(self, identity: str) -> None:
        """Raise ``CodesError`` unless these codes were made by the VQ-VAE weights of ``identity`` (name@hash):
        codes of another model with the same geometry decode to different music."""
        if self.meta.model.rsplit("@", 1)[-1] != identity.rsplit("@", 1)[-1]:
            raise CodesError(f"{self._name}: made by model {self.meta.model}, not by this model ({identity})")

    @property
    def name(self) -> str:
        """The file's path, for messages."""
        return self._name

    @property
    def _name(self) -> str:
        return str(self.path) if self.path is not None else "codes"


def _storage_dtype(codebook_size: int) -> type[np.signedinteger[Any]]:
    for dtype in (np.int16, np.int32):
        if codebook_size - 1 <= np.iinfo(dtype).max:
            return dtype
    return np.int64


def save_codes(path: str | os.PathLike[str], codes: Sequence[Any], meta: CodesMeta) -> Path:
    """Write ``codes`` (bottom level first; arrays or tensors ``(batch, tokens)`` or ``(tokens,)``) atomically."""
    file = Path(path)
    if len(codes) != len(meta.hop_lengths):
        raise CodesError(
            f"{file}: got {len(codes)} levels of codes but meta lists {len(meta.hop_lengths)} hops"
        )
    arrays: dict[str, np.ndarray] = {}
    for level, level_codes in enumerate(codes):
        arr = _as_numpy(level_codes)
        if arr.ndim == 1:
            arr = arr[None, :]  # (1, tokens)
        _validate_level(arr, level, meta, str(file))
        arrays[f"level_{level}"] = arr.astype(_storage_dtype(meta.codebook_size))
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(meta.to_dict())), **arrays)  # type: ignore[arg-type]
    if not file.parent.is_dir():
        raise CodesError(f"{file}: cannot write, directory {file.parent} does not exist")
    if file.is_dir():
        raise CodesError(f"{file}: is a directory; give a file name such as {file / 'codes.npz'}")
    atomic_write_bytes(file, buffer.getvalue())
    return file


def load_codes(path: str | os.PathLike[str], *, codebook_size: int | None = None) -> CodesFile:
    """Read and validate a codes file; ``codebook_size`` (if given) bounds the codes instead of the file's own."""
    file = Path(path)
    name = str(file)
    if not file.is_file():
        raise CodesError(f"{name}: no such file" if not file.exists() else f"{name}: not a file")
    with open(file, "rb") as head:  # np.load would take a non-zip for a pickle and advise unsafe unpickling
        is_zip = head.read(4) == b"PK\x03\x04"
    if not is_zip:
        raise CodesError(f"{name}: not a codes file (an .npz archive written by 'segue encode' or 'segue sample')")
    try:
        with np.load(file, allow_pickle=False) as archive:
            contents = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as exc:
        raise CodesError(f"{name}: not a readable codes file or corrupt ({exc})") from exc
    if "meta" not in contents:
        raise CodesError(f"{name}: has no 'meta' entry; not a segue codes file")
    try:
        meta_dict = json.loads(str(contents["meta"]))
    except json.JSONDecodeError as exc:
        raise CodesError(f"{name}: 'meta' is not valid JSON ({exc})") from exc
    if not isinstance(meta_dict, dict):
        raise CodesError(f"{name}: 'meta' is not a JSON object")
    meta = CodesMeta.from_dict(meta_dict, name)
    bound = meta if codebook_size is None else _with_codebook(meta, codebook_size)
    levels = []
    for level in range(len(meta.hop_lengths)):
        key = f"level_{level}"
        if key not in contents:
            have = sorted(k for k in contents if k.startswith("level_"))
            raise CodesError(
                f"{name}: missing '{key}' (has {have}; expected level_0..level_{len(meta.hop_lengths) - 1})"
            )
        arr = contents[key]
        _validate_level(arr, level, bound, name)
        levels.append(arr.astype(np.int64))
    batch = {arr.shape[0] for arr in levels}
    if len(batch) > 1:
        raise CodesError(f"{name}: levels disagree on the batch size ({sorted(batch)})")
    return CodesFile(tuple(levels), meta, file)


def _with_codebook(meta: CodesMeta, codebook_size: int) -> CodesMeta:
    return CodesMeta(
        meta.sample_rate, meta.hop_lengths, codebook_size, meta.model, meta.source_samples, meta.source_name
    )


def _as_numpy(codes: Any) -> np.ndarray:
    if hasattr(codes, "detach"):  # torch tensor
        codes = codes.detach().cpu().numpy()
    return np.asarray(codes)


def _validate_level(arr: np.ndarray, level: int, meta: CodesMeta, name: str) -> None:
    if arr.dtype.kind not in "iu":
        raise CodesError(f"{name}: level {level} codes have dtype {arr.dtype}; expected integers")
    if arr.ndim != 2:
        raise CodesError(f"{name}: level {level} codes have shape {arr.shape}; expected (batch, tokens)")
    if arr.size and (int(arr.min()) < 0 or int(arr.max()) >= meta.codebook_size):
        raise CodesError(
            f"{name}: level {level} codes range {int(arr.min())}..{int(arr.max())} is outside "
            f"0..{meta.codebook_size - 1} (codebook size {meta.codebook_size})"
        )
