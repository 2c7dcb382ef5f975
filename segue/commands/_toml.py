"""The TOML config files of ``segue train``: read, known keys only, required keys present, tables typed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def load_toml(path: Path, known: Sequence[str], required: Sequence[str], tables: Sequence[str]) -> dict[str, Any]:
    """``path`` as a dict: unreadable or invalid TOML, a top-level key not in ``known``, a missing
    ``required`` key, or one of ``tables`` that is not a table is a one-line error naming the file."""
    import tomllib

    from common.errors import ConfigError, InputError

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the config ({exc})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {', '.join(unknown)} (known: {', '.join(known)})")
    for key in required:
        if key not in data:
            raise ConfigError(f"{path}: the key {key!r} is missing")
    for key in tables:
        if not isinstance(data.get(key, {}), dict):
            raise ConfigError(f"{path}: [{key}] must be a table")
    return data


def check_val_fraction(path: Path, data: dict[str, Any]) -> None:
    """``val_fraction`` (default 0.1) must be a number in [0, 1)."""
    from common.errors import ConfigError

    fraction = data.get("val_fraction", 0.1)
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0.0 <= fraction < 1.0:
        raise ConfigError(f"{path}: val_fraction = {fraction!r} must lie in [0, 1)")
