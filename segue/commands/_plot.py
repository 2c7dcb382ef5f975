"""``segue labels --plot``: the feature rolls as a PNG, written with numpy and zlib alone.

matplotlib is not a dependency of segue (it would be the only one for one debugging picture), so the
picture is drawn as pixels: stacked panels, one per feature, time left to right at one column per frame of
the plot's hop, no text. ``Panel`` rows list what each band shows, in order; ``segue labels`` prints them
in its JSON (``plot.panels``: name and pixel rows), and docs/conditioning.md describes the colours.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

BACKGROUND = (24, 24, 28)
SEPARATOR = (90, 90, 96)
UNCOVERED = (48, 20, 20)  # frames the condition does not cover (before or after the clip / stem)


@dataclass(frozen=True)
class Panel:
    """One band of the picture: ``pixels`` (rows, columns, 3) uint8, and what it shows."""

    name: str
    pixels: np.ndarray


def heat(values: np.ndarray, colour: tuple[int, int, int], row_height: int = 1) -> np.ndarray:
    """(rows, columns) values in 0..1 -> a band, row 0 at the bottom, each row ``row_height`` pixels tall."""
    v = np.clip(np.nan_to_num(values.astype(np.float32)), 0.0, 1.0)[::-1]  # the highest row on top
    v = np.repeat(v, row_height, axis=0)
    base = np.array(BACKGROUND, dtype=np.float32)
    out = base + v[..., None] * (np.array(colour, dtype=np.float32) - base)
    return out.astype(np.uint8)


def curve(values: np.ndarray, colour: tuple[int, int, int], height: int) -> np.ndarray:
    """(columns,) values in 0..1 -> a filled area band ``height`` pixels tall."""
    v = np.clip(np.nan_to_num(values.astype(np.float32)), 0.0, 1.0)
    filled = (np.arange(height)[::-1, None] + 0.5) < v[None, :] * height  # (height, columns)
    out = np.empty((height, v.shape[0], 3), dtype=np.uint8)
    out[:] = BACKGROUND
    out[filled] = colour
    return out


def marks(columns: np.ndarray, width: int, colour: tuple[int, int, int], height: int) -> np.ndarray:
    """Vertical ticks ``height`` pixels tall at ``columns`` (window starts, beats)."""
    out = np.empty((height, width, 3), dtype=np.uint8)
    out[:] = BACKGROUND
    cols = columns[(columns >= 0) & (columns < width)].astype(np.int64)
    out[:, cols] = colour
    return out


def with_coverage(band: np.ndarray, coverage: np.ndarray) -> np.ndarray:
    """``band`` with the columns of coverage 0 tinted, so a clip that misses the audio shows as such."""
    out = band.copy()
    missing = coverage <= 0
    empty = (out == np.array(BACKGROUND, dtype=np.uint8)).all(axis=2)  # (rows, columns)
    out[empty & missing[None, :]] = UNCOVERED
    return out


def stack(panels: list[Panel], gap: int = 2) -> tuple[np.ndarray, list[dict[str, object]]]:
    """The panels one above the other with a separator line between them; and each one's rows."""
    width = max(p.pixels.shape[1] for p in panels)
    parts: list[np.ndarray] = []
    rows: list[dict[str, object]] = []
    top = 0
    for i, panel in enumerate(panels):
        if i:
            line = np.empty((gap, width, 3), dtype=np.uint8)
            line[:] = SEPARATOR
            parts.append(line)
            top += gap
        pixels = panel.pixels
        if pixels.shape[1] < width:
            pad = np.empty((pixels.shape[0], width - pixels.shape[1], 3), dtype=np.uint8)
            pad[:] = BACKGROUND
            pixels = np.concatenate([pixels, pad], axis=1)
        parts.append(pixels)
        rows.append({"name": panel.name, "rows": [top, top + pixels.shape[0]]})
        top += pixels.shape[0]
    return np.concatenate(parts, axis=0), rows


def write_png(path: Path, rgb: np.ndarray) -> None:
    """An 8-bit RGB PNG of ``rgb`` (height, width, 3) uint8 (filter 0 on every row, zlib level 6)."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or 0 in rgb.shape:
        raise ValueError(f"write_png takes a non-empty (height, width, 3) uint8 array, got {rgb.shape} {rgb.dtype}")
    height, width, _ = rgb.shape
    raw = np.concatenate([np.zeros((height, 1), dtype=np.uint8), rgb.reshape(height, width * 3)], axis=1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8 bits, truecolour, no interlace
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw.tobytes(), 6)) + chunk(b"IEND", b"")
    path.write_bytes(data)
