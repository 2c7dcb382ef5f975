"""Lyrics as Jukebox sees them: cleaning, one token per character, and the linear lyric window.

Pure functions on explicit arguments; nothing here reads files or touches nn modules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from unidecode import unidecode

from common.errors import InputError

from .ids import LabelVersion

PAD_TOKEN = 0  # also the id of <unk>; it decodes to the empty string
PAD_INDEX = -1  # lyric index of a padding position in a window


@dataclass(frozen=True)
class LyricsVocab:
    """A character vocabulary: ``chars[i]`` has token ``i + 1``; token 0 is <unk>/padding."""

    version: LabelVersion
    chars: str

    @property
    def size(self) -> int:
        """Number of token ids including 0 (Jukebox ``n_vocab``): 80 for v2, 79 for v3."""
        return len(self.chars) + 1

    @property
    def token_of(self) -> dict[str, int]:
        return {char: index + 1 for index, char in enumerate(self.chars)}


_LETTERS_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
V2_VOCAB = LyricsVocab("v2", _LETTERS_DIGITS + ".,:;!?-+'\"()[] \t\n")
V3_VOCAB = LyricsVocab("v3", _LETTERS_DIGITS + ".,:;!?-'\"()[] \t\n")  # v3 lost "+"


def vocab_for(version: LabelVersion) -> LyricsVocab:
    """The lyrics vocabulary of a label set version."""
    return V3_VOCAB if version == "v3" else V2_VOCAB


def _outside(vocab: LyricsVocab) -> re.Pattern[str]:
    return re.compile("[^" + re.escape(vocab.chars) + "]+")


def clean_lyrics(text: str, vocab: LyricsVocab) -> str:
    """Jukebox's cleaning: transliterate to ASCII (unidecode), ``\\`` → newline, drop characters outside ``vocab``."""
    ascii_text = unidecode(text).replace("\\", "\n")
    return _outside(vocab).sub("", ascii_text)


def tokenize(clean_text: str, vocab: LyricsVocab) -> list[int]:
    """One token per character of already cleaned text (see :func:`clean_lyrics`)."""
    token_of = vocab.token_of
    bad = sorted({char for char in clean_text if char not in token_of})
    if bad:
        raise InputError(
            f"lyrics contain characters outside the {vocab.version} lyrics vocabulary: {bad!r}; "
            "clean them with clean_lyrics first"
        )
    return [token_of[char] for char in clean_text]


def detokenize(tokens: Sequence[int], vocab: LyricsVocab) -> str:
    """Text of ``tokens``; 0 (padding/<unk>) decodes to nothing."""
    out = []
    for token in tokens:
        if not 0 <= token < vocab.size:
            raise InputError(f"lyric token {token} is outside the {vocab.version} vocabulary range 0..{vocab.size - 1}")
        if token:
            out.append(vocab.chars[token - 1])
    return "".join(out)


class LyricWindow(NamedTuple):
    """The ``n_tokens`` lyric tokens a window sees, and each one's index in the full lyrics (−1 = padding)."""

    tokens: list[int]
    indices: list[int]


def relevant_lyric_tokens(
    full_tokens: Sequence[int], n_tokens: int, total_length: int, offset: int, duration: int
) -> LyricWindow:
    """Jukebox's linear lyric alignment for a window of ``duration`` samples starting at ``offset``.

    Short lyrics are left-padded with 0 (index −1). Otherwise the window is centred on the character at the
    same relative position as the window's middle in the song, kept inside the lyrics.
    """
    full = list(full_tokens)
    if n_tokens < 0:
        raise ValueError(f"n_tokens must be >= 0, got {n_tokens}")
    if len(full) < n_tokens:
        pad = n_tokens - len(full)
        return LyricWindow([PAD_TOKEN] * pad + full, [PAD_INDEX] * pad + list(range(len(full))))
    if not 0 <= offset < total_length:
        raise InputError(
            f"window offset {offset} samples is outside the song (total length {total_length} samples); "
            f"allowed 0..{total_length - 1}"
        )
    midpoint = int(len(full) * (offset + duration / 2.0) / total_length)
    start = min(max(midpoint - n_tokens // 2, 0), len(full) - n_tokens)  # == Jukebox's clamp for even n_tokens
    indices = list(range(start, start + n_tokens))
    return LyricWindow(full[start : start + n_tokens], indices)


def timed_lyric_window(
    words: Sequence[tuple[str, float, float]], vocab: LyricsVocab, n_tokens: int, offset_s: float, duration_s: float
) -> LyricWindow:
    """The lyric window of a training window by time: the characters of the words ``(text, start_s, end_s)``
    whose middle falls in ``[offset_s, offset_s + duration_s)``, instead of Jukebox's linear spread.

    The full lyrics are the cleaned words joined by spaces (indices count into them). Fewer characters than
    ``n_tokens`` are left-padded with 0 (index -1), as Jukebox pads; more are cut to the ``n_tokens`` around
    the window's middle word. A window with no word is all padding.
    """
    if n_tokens < 0:
        raise ValueError(f"n_tokens must be >= 0, got {n_tokens}")
    spans: list[tuple[int, int, float]] = []  # (first char, end char, middle time) per kept word
    pieces: list[str] = []
    at = 0
    for text, start, end in sorted(words, key=lambda w: w[1]):
        clean = clean_lyrics(text, vocab).strip()
        if not clean:
            continue
        if pieces:
            pieces.append(" ")
            at += 1
        spans.append((at, at + len(clean), (start + end) / 2.0))
        pieces.append(clean)
        at += len(clean)
    full = tokenize("".join(pieces), vocab)
    inside = [(a, b, mid) for a, b, mid in spans if offset_s <= mid < offset_s + duration_s]
    if not inside or n_tokens == 0:
        return LyricWindow([PAD_TOKEN] * n_tokens, [PAD_INDEX] * n_tokens)
    first, last = inside[0][0], inside[-1][1]
    if last - first <= n_tokens:
        pad = n_tokens - (last - first)
        return LyricWindow([PAD_TOKEN] * pad + full[first:last], [PAD_INDEX] * pad + list(range(first, last)))
    centre = inside[len(inside) // 2]
    start = min(max((centre[0] + centre[1]) // 2 - n_tokens // 2, first), last - n_tokens)
    return LyricWindow(full[start : start + n_tokens], list(range(start, start + n_tokens)))

