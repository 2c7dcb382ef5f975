"""English-like sung lines from a small word list written for segue (plain common words; no song's lyrics).

A line is built from short grammatical chunks ("i walk", "the cold river", "into the night") to exactly
the number of words its melody has notes for, so each word is sung on one note.
"""

from __future__ import annotations

import numpy as np

WORDS: dict[str, tuple[str, ...]] = {
    "pron": ("i", "you", "we", "they", "she", "he"),
    "verb": ("walk", "run", "call", "fall", "hold", "know", "see", "feel", "wait", "burn", "sing", "dream",
             "turn", "shine", "stay", "drive", "break", "find", "keep", "leave", "dance", "breathe", "rise",
             "carry", "follow", "wander", "listen", "remember"),
    "det": ("the", "a", "my", "your", "our", "this", "that"),
    "adj": ("cold", "bright", "blue", "wild", "quiet", "golden", "broken", "open", "long", "empty", "silver",
            "slow", "sweet", "heavy", "little", "restless", "hollow", "gentle", "distant", "shining"),
    "noun": ("night", "road", "heart", "light", "rain", "sky", "fire", "river", "city", "morning", "window",
             "ocean", "shadow", "summer", "winter", "story", "mountain", "garden", "highway", "water", "sun",
             "moon", "door", "song", "line", "star", "home", "dawn", "train", "wind"),
    "prep": ("in", "on", "to", "through", "under", "over", "into", "across", "along", "beyond"),
    "adv": ("now", "again", "away", "tonight", "forever", "alone", "slowly", "down", "home"),
    "excl": ("oh", "yeah", "hey", "la", "whoa"),
}

# chunks a line is built from; the first chunk of a line is drawn from the first group when it fits
OPENERS = (("pron", "verb"), ("pron", "verb", "det", "noun"), ("det", "adj", "noun"), ("excl",))
CHUNKS = (("pron", "verb"), ("det", "noun"), ("det", "adj", "noun"), ("prep", "det", "noun"),
          ("verb", "adv"), ("adv",), ("excl",), ("prep", "det", "adj", "noun"), ("adj", "noun"))  # fmt: skip


def line(rng: np.random.Generator, n: int) -> tuple[str, ...]:
    """``n`` (>= 1) words that read like a line of a song."""
    words: list[str] = []
    first = True
    while len(words) < n:
        left = n - len(words)
        pool = [c for c in (OPENERS if first else CHUNKS) if len(c) <= left] or [c for c in CHUNKS if len(c) <= left]
        chunk = pool[int(rng.integers(len(pool)))]
        words.extend(WORDS[pos][int(rng.integers(len(WORDS[pos])))] for pos in chunk)
        first = False
    return tuple(words)
