"""Artist and genre id tables of the Jukebox label sets (v2, v3).

The official id lists (``{v2,v3}_{artist,genre}_ids.txt``, one ``name;id`` per line, UTF-8) are not shipped
with segue: the user points at them. Parsing (:func:`parse_id_lines`) and lookup are pure; only
:func:`load_id_table` touches the file system.

Name normalisation follows Jukebox exactly:
- v2 artist: lower-case, every character outside ``[a-z0-9]`` becomes ``_``, runs of ``_`` collapsed, stripped;
- v3 artist: ``.lower()`` only;
- v2 genre: normalised like a v2 artist, then split on ``_`` into a bag of words (``"Blues Rock"`` → blues, rock);
- v3 genre: one whole lower-cased genre.

Unknown names: Jukebox silently maps them to id 0. :meth:`IdTable.lookup` is strict by default (raises
:class:`~common.errors.InputError` with close matches); ``strict=False`` gives Jukebox's behaviour and
returns the warning in the result instead of printing it. The name ``unknown`` is always accepted (id 0).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from unidecode import unidecode

from common.errors import InputError

LabelVersion = Literal["v2", "v3"]
IdKind = Literal["artist", "genre"]

UNKNOWN = "unknown"
UNKNOWN_ID = 0
# Invisible left-to-right / right-to-left marks that some v3 genre names carry (e.g. "jazz fusion\u200e").
_DIRECTION_MARKS = "\u200e\u200f"
_NOT_ASCII_ALNUM = re.compile(r"[^a-z0-9]")
_UNDERSCORE_RUNS = re.compile(r"_+")


def normalise_v2(name: str) -> str:
    """Jukebox's v2 name normalisation: ``"Zac Brown Band"`` → ``"zac_brown_band"``, ``"André"`` → ``"andr"``."""
    return _UNDERSCORE_RUNS.sub("_", _NOT_ASCII_ALNUM.sub("_", name.lower())).strip("_")


def _without_marks(name: str) -> str:
    return "".join(c for c in name if c not in _DIRECTION_MARKS)


@dataclass(frozen=True)
class IdLookup:
    """Result of a lookup: the ids (one for an artist, a bag of words for a v2 genre) and any warnings."""

    ids: tuple[int, ...]
    keys: tuple[str, ...]  # the normalised names that were looked up, one per id
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class IdTable:
    """One id list: ``names`` maps a lower-cased listed name to its id (later lines win, as in Jukebox)."""

    kind: IdKind
    version: LabelVersion
    names: Mapping[str, int]
    source: str = "<memory>"  # where the list came from, for error messages
    _plain: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Names with invisible direction marks removed, for users who type "psychedelic rock" when only
        # "psychedelic rock\u200e" exists. A plain listed name always wins over a marked one.
        plain: dict[str, int] = {}
        for name, idx in self.names.items():
            stripped = _without_marks(name)
            if stripped == name or stripped not in self.names:
                plain.setdefault(stripped, idx)
        for name, idx in self.names.items():
            if _without_marks(name) == name:
                plain[name] = idx
        object.__setattr__(self, "_plain", plain)

    @property
    def n_ids(self) -> int:
        """Number of embedding rows the table needs (max id + 1)."""
        return max(self.names.values(), default=0) + 1

    def keys_for(self, name: str) -> tuple[str, ...]:
        """The normalised key(s) Jukebox looks up for a user-given ``name``."""
        if self.version == "v3":
            return (name.lower(),)
        key = normalise_v2(name)
        if self.kind == "genre":
            return tuple(key.split("_")) if key else ("",)
        return (key,)

    def id_of_key(self, key: str) -> int | None:
        """Exact listed name first, then the name without invisible direction marks; ``None`` if absent."""
        if key in self.names:
            return self.names[key]
        return self._plain.get(_without_marks(key))

    def name_of(self, idx: int) -> str:
        """A readable listed name for ``idx`` (without direction marks), or ``"unknown"``."""
        found = sorted(_without_marks(n) for n, i in self.names.items() if i == idx and n)
        return found[0] if found else UNKNOWN

    def close_matches(self, key: str, n: int = 3) -> list[str]:
        """Up to ``n`` listed names that look like ``key`` (accents folded, direction marks dropped)."""
        candidates = {unidecode(_without_marks(name)): _without_marks(name) for name in self.names if name}
        folded = unidecode(_without_marks(key))
        return [candidates[m] for m in difflib.get_close_matches(folded, list(candidates), n=n, cutoff=0.6)]

    def lookup(self, name: str, *, strict: bool = True) -> IdLookup:
        """Ids for a user-given artist or genre name.

        strict: raise :class:`InputError` naming the list and close matches when a name is not listed;
        otherwise map it to 0 like Jukebox and report a warning in the result.
        """
        ids: list[int] = []
        warnings: list[str] = []
        keys = self.keys_for(name)
        for key in keys:
            idx = self.id_of_key(key)
            if idx is None and key == UNKNOWN:
                idx = UNKNOWN_ID
            if idx is None:
                message = self._unknown_message(name, key)
                if strict:
                    raise InputError(message)
                warnings.append(message + f"; using {self.kind} id 0 ({UNKNOWN})")
                idx = UNKNOWN_ID
            ids.append(idx)
        return IdLookup(ids=tuple(ids), keys=keys, warnings=tuple(warnings))

    def _unknown_message(self, name: str, key: str) -> str:
        what = f"{self.version} {self.kind}"
        shown = repr(name) if key == name else f"{name!r} (looked up as {key!r})"
        matches = self.close_matches(key)
        hint = f"; close matches: {', '.join(repr(m) for m in matches)}" if matches else ""
        return (
            f"{self.kind} {shown} is not in the {what} list {self.source}{hint}; "
            f"use '{UNKNOWN}' for no {self.kind}"
        )


def parse_id_lines(lines: Iterable[str], kind: IdKind, version: LabelVersion, source: str = "<memory>") -> IdTable:
    """Parse ``name;id`` lines like Jukebox (line stripped, split on ``;``, name lower-cased, later lines win)."""
    names: dict[str, int] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            continue
        parts = line.split(";")
        if len(parts) != 2 or not parts[1].strip().isdigit():
            raise InputError(f"{source} line {number}: expected 'name;id' with a whole-number id, got {raw!r}")
        names[parts[0].lower()] = int(parts[1])
    if not names:
        raise InputError(f"{source}: no 'name;id' lines found; is this a Jukebox {version} {kind} id list?")
    return IdTable(kind=kind, version=version, names=names, source=source)


def load_id_table(path: str | Path, kind: IdKind, version: LabelVersion) -> IdTable:
    """Read a Jukebox id list (e.g. ``v3_artist_ids.txt``) from ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{version} {kind} id list not found: {path}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {version} {kind} id list {path}: {err}") from None
    return parse_id_lines(text.splitlines(), kind, version, source=str(path))
