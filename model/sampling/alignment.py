"""Lyric-to-audio alignment from the attention of a lyrics-reading layer (spec 6).

The top prior's alignment layer/head attends from each music token to the lyric characters of its
window. Each window's (music tokens × lyric tokens) attention is scattered into one
(song tokens × characters) matrix, last window first so earlier windows win where they overlap;
padding lyric positions (index −1) fall into a spare column that is dropped. Timings then follow
the strongest-attended character of every music token, made monotonic (lyrics are sung in order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

from conditioning.labels import SongLabels
from model.sampling.jukebox import JukeboxLevel
from model.sampling.windows import plan_windows


@dataclass(frozen=True)
class WindowAttention:
    """One window's recorded attention: music tokens ``start .. start + rows`` × its lyric tokens."""

    start: int
    weights: np.ndarray  # (rows, n_tokens) softmax weights of the alignment head
    lyric_indices: Sequence[int]  # index in the full lyrics of each lyric token, −1 = padding


@dataclass(frozen=True)
class CharTiming:
    index: int
    char: str
    start: float  # seconds
    end: float


@dataclass(frozen=True)
class WordTiming:
    word: str
    first_char: int
    start: float
    end: float


def scatter_alignment(total_tokens: int, n_chars: int, windows: Sequence[WindowAttention]) -> np.ndarray:
    """(total_tokens, n_chars) attention of every music token to every lyric character."""
    out = np.zeros((total_tokens, n_chars + 1), dtype=np.float32)  # last column: padding positions
    for w in reversed(windows):
        rows = min(w.weights.shape[0], total_tokens - w.start)  # windows zero-padded past the end
        cols = np.asarray(w.lyric_indices, dtype=np.int64)  # (n_tokens,)
        cols = np.where(cols < 0, n_chars, cols)
        out[w.start : w.start + rows, cols] = w.weights[:rows]  # (rows, n_tokens)
    return out[:, :n_chars]


def character_timings(alignment: np.ndarray, lyrics: str, hop: int, sample_rate: int) -> list[CharTiming]:
    """When each character is sung: from the first music token whose (monotonic) best character reaches it."""
    total, n_chars = alignment.shape
    if n_chars == 0 or total == 0:
        return []
    best = np.maximum.accumulate(alignment.argmax(axis=1))  # (total,) non-decreasing character index
    starts = np.searchsorted(best, np.arange(n_chars), side="left")  # (n_chars,) first token reaching c
    ends = np.append(starts[1:], total)
    ends = np.maximum(ends, np.minimum(starts + 1, total))  # every character lasts at least one token
    seconds = hop / sample_rate
    return [
        CharTiming(i, lyrics[i], float(min(starts[i], total - 1) * seconds), float(ends[i] * seconds))
        for i in range(n_chars)
    ]


def word_timings(chars: Sequence[CharTiming]) -> list[WordTiming]:
    """Group characters into words (split on whitespace); a word spans its first to last character."""
    words: list[WordTiming] = []
    current: list[CharTiming] = []
    for c in [*chars, None]:
        if c is not None and not c.char.isspace():
            current.append(c)
            continue
        if current:
            text = "".join(x.char for x in current)
            words.append(WordTiming(text, current[0].index, current[0].start, current[-1].end))
            current = []
    return words


def alignment_record(alignment: np.ndarray, lyrics: str, hop: int, sample_rate: int) -> dict:
    """JSON-ready per-character and per-word timings."""
    chars = character_timings(alignment, lyrics, hop, sample_rate)
    return {
        "lyrics": lyrics,
        "hop": hop,
        "sample_rate": sample_rate,
        "characters": [asdict(c) for c in chars],
        "words": [asdict(w) for w in word_timings(chars)],
    }


def align_lyrics(
    level: JukeboxLevel, codes: Tensor, labels: SongLabels, hop_fraction: float, sample_rate: int
) -> list[dict]:
    """Per-candidate alignment records for top-level ``codes`` (N, T), over the same windows as sampling."""
    prior, c = level.prior, level.prior.config
    n, total = codes.shape
    windows = plan_windows(total, c.n_ctx, hop_fraction)
    recorded: list[list[WindowAttention]] = [[] for _ in range(n)]
    with torch.inference_mode():
        for w in windows:
            wl = labels.for_window(w.start, c.hop_length, c.n_ctx)
            window = codes[:, w.start : w.end].to(level.device)  # (N, L)
            cond = prior.conditioning(wl.y.expand(n, -1).to(level.device))
            weights = prior.alignment_attention(window, cond).float().cpu().numpy()  # (N, L, n_tokens)
            for i in range(n):
                recorded[i].append(WindowAttention(w.start, weights[i], wl.lyric_indices))
    n_chars = len(labels.full_tokens)
    return [
        alignment_record(scatter_alignment(total, n_chars, rec), labels.lyrics, c.hop_length, sample_rate)
        for rec in recorded
    ]
