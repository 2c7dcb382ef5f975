"""Timed lyrics: LRC line and word tags, and a training window's lyrics taken by time."""

from __future__ import annotations

import pytest

from common.errors import InputError
from conditioning.lrc import parse_lrc
from conditioning.lyrics import PAD_TOKEN, V2_VOCAB, detokenize, timed_lyric_window

LINES = """[ar:someone]
[ti:a song]
[00:01.00]hello there
[00:03.50][00:10.00]la la la
[00:05.00]world
"""


def test_line_tags_spread_each_line_over_its_span() -> None:
    lyrics = parse_lrc(LINES, "song.lrc", end_s=12.0)
    assert not lyrics.word_timed
    assert [(w.text, round(w.start_s, 3), round(w.end_s, 3)) for w in lyrics.words[:5]] == [
        ("hello", 1.0, 2.25), ("there", 2.25, 3.5), ("la", 3.5, 4.0), ("la", 4.0, 4.5), ("la", 4.5, 5.0),
    ]  # fmt: skip
    assert [t for t, _ in lyrics.lines] == [1.0, 3.5, 5.0, 10.0]  # the repeated line sits at both times
    assert lyrics.words[-1].end_s == 12.0 and lyrics.text.startswith("hello there\nla la la")


def test_word_tags_and_the_offset_tag() -> None:
    text = "[offset:500]\n[00:02.00]<00:02.00>one <00:02.80>two <00:03.10>three\n[00:06.00]<00:06.20>four\n"
    lyrics = parse_lrc(text, "w.lrc", end_s=9.0)
    assert lyrics.word_timed
    assert [(w.text, round(w.start_s, 2), round(w.end_s, 2)) for w in lyrics.words] == [
        ("one", 1.5, 2.3), ("two", 2.3, 2.6), ("three", 2.6, 5.5), ("four", 5.7, 9.0),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "message"),
    [("just words\nno times\n", "no \\[mm:ss.xx\\] time tags"), ("[offset:soon]\n[00:01.00]a\n", "not a number"),
     ("[offset:-90000000]\n[00:01.00]late\n", "past 24 hours"), ("[00:01.00]x\n" * 20_001, "at most 20,000")],
)  # fmt: skip
def test_bad_lrc_is_named(text: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_lrc(text, "bad.lrc")


def test_a_window_sees_the_words_sung_in_it() -> None:
    words = [("Hello", 0.0, 1.0), ("big", 1.0, 2.0), ("world!", 2.0, 3.0), ("again", 10.0, 11.0)]
    window = timed_lyric_window(words, V2_VOCAB, 16, offset_s=0.8, duration_s=2.5)  # middles 1.5 and 2.5 inside
    assert detokenize(window.tokens, V2_VOCAB) == "big world!"
    assert window.tokens[:6] == [PAD_TOKEN] * 6 and window.indices[6:] == list(range(6, 16))
    late = timed_lyric_window(words, V2_VOCAB, 16, offset_s=9.0, duration_s=3.0)
    assert detokenize(late.tokens, V2_VOCAB) == "again"
    assert timed_lyric_window(words, V2_VOCAB, 8, offset_s=5.0, duration_s=2.0).indices == [-1] * 8  # nothing sung
    cut = timed_lyric_window(words, V2_VOCAB, 4, offset_s=0.0, duration_s=3.0)  # 16 characters for 4 tokens
    assert len(cut.tokens) == 4 and detokenize(cut.tokens, V2_VOCAB) in "Hello big world!"
