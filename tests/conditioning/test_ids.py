from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import InputError
from conditioning.ids import IdTable, load_id_table, normalise_v2, parse_id_lines


def _table(reference_dir: Path, version: str, kind: str) -> IdTable:
    return load_id_table(reference_dir / "jukebox-ids" / f"{version}_{kind}_ids.txt", kind, version)  # type: ignore[arg-type]


def test_normalise_v2() -> None:
    assert normalise_v2("Zac Brown Band") == "zac_brown_band"
    assert normalise_v2("  AC/DC!! ") == "ac_dc"
    assert normalise_v2("André Schiff") == "andr_schiff"  # only ASCII letters and digits survive
    assert normalise_v2("Blues-Rock") == "blues_rock"


def test_official_lists_load_with_their_sizes(reference_dir: Path) -> None:
    sizes = {("v2", "artist"): 4111, ("v2", "genre"): 120, ("v3", "artist"): 7898, ("v3", "genre"): 604}
    for (version, kind), n_ids in sizes.items():
        assert _table(reference_dir, version, kind).n_ids in (n_ids, n_ids - 2)
    assert _table(reference_dir, "v2", "artist").n_ids == 4109  # 4111 lines, ids up to 4108 (spec §4.1)


def test_lookups_follow_jukebox(reference_dir: Path) -> None:
    v2a, v3a = _table(reference_dir, "v2", "artist"), _table(reference_dir, "v3", "artist")
    v2g, v3g = _table(reference_dir, "v2", "genre"), _table(reference_dir, "v3", "genre")
    assert v2a.lookup("Zac Brown Band").ids == (1069,)
    assert v2a.lookup("Alan Jackson").ids == (145,)
    assert v3a.lookup("Zac Brown Band").ids == (7169,)
    assert v3a.lookup("Alan Jackson").ids == (6785,)
    assert v2g.lookup("Blues Rock").ids == (2, 8)
    assert v2g.lookup("Country Rock").ids == (11, 8)  # HF's tokenizer gives one unknown word here
    assert v2g.lookup("R&B").ids == (17, 18)
    assert v3g.lookup("Country").ids == (507,)
    assert v3g.lookup("Country Rock").ids == (546,)
    for table in (v2a, v3a, v2g, v3g):
        assert table.lookup("Unknown").ids == (0,)


def test_invisible_direction_marks(reference_dir: Path) -> None:
    v3g = _table(reference_dir, "v3", "genre")
    assert v3g.lookup("jazz fusion").ids == (295,)  # exact plain name wins
    assert v3g.lookup("jazz fusion\u200e").ids == (107,)  # exact marked name (as Jukebox)
    assert v3g.lookup("Jazz Fusion\u200f").ids == (295,)  # unlisted mark: fall back to the plain name
    assert v3g.name_of(107) == "jazz fusion"


def test_strict_lookup_names_the_list_and_close_matches(reference_dir: Path) -> None:
    v3a = _table(reference_dir, "v3", "artist")
    with pytest.raises(InputError) as err:
        v3a.lookup("Zac Braun Band")
    message = str(err.value)
    assert "'Zac Braun Band'" in message and "v3_artist_ids.txt" in message
    assert "'zac brown band'" in message and "unknown" in message
    with pytest.raises(InputError, match="close matches: 'axé'"):  # accents folded for suggestions
        _table(reference_dir, "v3", "genre").lookup("Axe")


def test_lenient_lookup_maps_to_zero_with_a_warning(reference_dir: Path) -> None:
    v2g = _table(reference_dir, "v2", "genre")
    result = v2g.lookup("Country Zydecore", strict=False)
    assert result.ids == (11, 0) and result.keys == ("country", "zydecore")
    assert len(result.warnings) == 1 and "zydecore" in result.warnings[0] and "id 0" in result.warnings[0]
    assert v2g.lookup("Country Rock", strict=False).warnings == ()


def test_parse_rejects_malformed_lists(tmp_path: Path) -> None:
    table = parse_id_lines(["Foo;1", "bar;2", "foo;3", ""], "artist", "v3")
    assert table.names == {"foo": 3, "bar": 2}  # lower-cased, later lines win
    with pytest.raises(InputError, match="line 2"):
        parse_id_lines(["a;1", "b;two"], "genre", "v3", source="g.txt")
    with pytest.raises(InputError, match="not found"):
        load_id_table(tmp_path / "missing.txt", "artist", "v2")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(InputError, match="no 'name;id' lines"):
        load_id_table(empty, "artist", "v2")
