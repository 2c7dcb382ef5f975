"""Timed lyrics: LRC files (line tags ``[mm:ss.xx]``, enhanced word tags ``<mm:ss.xx>``) as timed words.

Jukebox spreads a song's lyrics linearly over its length when it picks a training window's characters;
where the words' times are known, a window should see the words sung in it. ``parse_lrc`` reads the
times; ``conditioning.lyrics.timed_lyric_window`` picks a window's characters by them. Pure functions
on text: the caller reads the file.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from common.errors import InputError

_TAG = re.compile(r"\[(\d{1,3}):(\d{1,2}(?:[.:]\d{1,3})?)\]")
_WORD_TAG = re.compile(r"<(\d{1,3}):(\d{1,2}(?:[.:]\d{1,3})?)>")
_META = re.compile(r"\[([a-zA-Z]+):([^\]]*)\]\s*$")
MAX_LINES = 20_000
MAX_SECONDS = 24 * 3600.0


@dataclass(frozen=True)
class TimedWord:
    """A word sung from ``start_s`` to ``end_s`` (song seconds)."""

    text: str
    start_s: float
    end_s: float


@dataclass(frozen=True)
class TimedLyrics:
    """``words`` in time order; ``word_timed``: the file had word tags (else each line's words are spread
    evenly over the line, up to the next line's start)."""

    words: tuple[TimedWord, ...]
    word_timed: bool
    lines: tuple[tuple[float, str], ...]  # (start_s, text) per timed line

    @property
    def text(self) -> str:
        return "\n".join(text for _, text in self.lines)


def _seconds(minutes: str, seconds: str) -> float:
    return int(minutes) * 60.0 + float(seconds.replace(":", "."))


def parse_lrc(text: str, name: str, *, end_s: float | None = None) -> TimedLyrics:
    """The timed words of an LRC text. ``end_s``: where the last line ends (the song's length; default the
    last line's start plus 4 s). ``[offset:+ms]`` shifts every time as LRC players do (positive = earlier).
    An LRC without any time tag, more than ``MAX_LINES`` lines or times past 24 h is an ``InputError``
    naming ``name``."""
    offset = 0.0
    entries: list[tuple[float, str]] = []
    raw_lines = text.splitlines()
    if len(raw_lines) > MAX_LINES:
        raise InputError(f"{name}: {len(raw_lines):,} lines; a lyrics file has at most {MAX_LINES:,}")
    for raw in raw_lines:
        line = raw.strip()
        meta = _META.fullmatch(line)
        if meta and not _TAG.match(line):
            if meta.group(1).lower() == "offset":
                try:
                    offset = float(meta.group(2).strip()) / 1000.0
                except ValueError:
                    raise InputError(f"{name}: [offset:{meta.group(2)}] is not a number of milliseconds") from None
            continue
        tags = []
        while (m := _TAG.match(line)) is not None:
            tags.append(_seconds(m.group(1), m.group(2)))
            line = line[m.end() :]
        for t in tags:  # a line may carry several times: a repeated chorus
            entries.append((t, line.strip()))
    if not entries:
        raise InputError(f"{name}: no [mm:ss.xx] time tags: not an LRC file (give plain lyrics as .txt)")
    entries = sorted(((t - offset, body) for t, body in entries), key=lambda e: e[0])
    if entries[-1][0] > MAX_SECONDS:
        raise InputError(f"{name}: a time tag at {entries[-1][0]:.0f} s is past 24 hours")
    last_end = end_s if end_s is not None and math.isfinite(end_s) else entries[-1][0] + 4.0
    words: list[TimedWord] = []
    word_timed = any(_WORD_TAG.search(body) for _, body in entries)
    lines = []
    for i, (start, body) in enumerate(entries):
        stop = entries[i + 1][0] if i + 1 < len(entries) else max(last_end, start)
        plain = _WORD_TAG.sub("", body).strip()
        lines.append((max(0.0, start), plain))
        words += _line_words(body, max(0.0, start), max(stop, start), offset)
    return TimedLyrics(tuple(words), word_timed, tuple(lines))


def _line_words(body: str, start: float, stop: float, offset: float) -> list[TimedWord]:
    """The words of one line: at their word tags, or spread evenly over the line."""
    pieces = _WORD_TAG.split(body)  # text, min, sec, text, min, sec, ...
    timed: list[tuple[float, str]] = []
    if len(pieces) > 1:
        head = pieces[0].split()
        timed += [(start, w) for w in head]
        for k in range(1, len(pieces), 3):
            t = max(0.0, _seconds(pieces[k], pieces[k + 1]) - offset)
            timed += [(t, w) for w in pieces[k + 2].split()]
        out = []
        for j, (t, word) in enumerate(timed):
            end = timed[j + 1][0] if j + 1 < len(timed) else stop
            out.append(TimedWord(word, t, max(end, t)))
        return out
    plain = body.split()
    if not plain:
        return []
    step = (stop - start) / len(plain)
    return [TimedWord(w, start + j * step, start + (j + 1) * step) for j, w in enumerate(plain)]
