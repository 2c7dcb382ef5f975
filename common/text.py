"""Text a user sends (names, lyrics, paths): the one rule on control characters, for the protocol and the CLI.

C0 control characters (U+0000..U+001F) and DEL (U+007F) are refused in every string: a NUL cuts a name
short in C code and in file names, and escape sequences rewrite a terminal or a log. Lyrics may hold
tab, newline and carriage return, their line breaks; no other string may.
"""

from __future__ import annotations

import re

_CONTROL = re.compile("[\x00-\x1f\x7f]")
_CONTROL_IN_LYRICS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # all but tab, newline, carriage return


def control_character_problem(what: str, text: str, *, lyrics: bool = False) -> str | None:
    """The message for the first control character in ``text`` (``what`` names the field), or None if
    there is none. ``lyrics``: tab, newline and carriage return are allowed."""
    found = (_CONTROL_IN_LYRICS if lyrics else _CONTROL).search(text)
    if found is None:
        return None
    allowed = (
        "only tab, newline and carriage return are allowed"
        if lyrics
        else "none are allowed here (tab, newline and carriage return only in lyrics)"
    )
    return (
        f"{what} contains control character U+{ord(found.group()):04X} at position {found.start()} "
        f"(counting from 0); {allowed}"
    )
