from __future__ import annotations

import pytest

from common.errors import InputError
from conditioning.lyrics import (
    V2_VOCAB,
    V3_VOCAB,
    clean_lyrics,
    detokenize,
    relevant_lyric_tokens,
    tokenize,
    vocab_for,
)

from .ozymandias import OZYMANDIAS


def test_vocab_ids_follow_the_spec() -> None:
    assert V2_VOCAB.size == 80 and V3_VOCAB.size == 79
    v3 = V3_VOCAB.token_of
    assert (v3["A"], v3["a"], v3["0"], v3["-"], v3["'"], v3['"']) == (1, 27, 53, 69, 70, 71)
    assert (v3["("], v3[")"], v3["["], v3["]"], v3[" "], v3["\t"], v3["\n"]) == (72, 73, 74, 75, 76, 77, 78)
    v2 = V2_VOCAB.token_of
    assert (v2["-"], v2["+"], v2["'"], v2["\n"]) == (69, 70, 71, 79)
    assert "+" not in v3
    assert vocab_for("v2") is V2_VOCAB and vocab_for("v3") is V3_VOCAB


def test_clean_transliterates_maps_backslash_and_drops_the_rest() -> None:
    assert clean_lyrics("Café façade\\naïve ☃ 50%", V3_VOCAB) == "Cafe facade\nnaive  50"
    # Jukebox drops "+" from v3 lyrics but keeps it in v2 ones.
    assert clean_lyrics("1+1", V3_VOCAB) == "11"
    assert clean_lyrics("1+1", V2_VOCAB) == "1+1"
    # unidecode, not accent stripping: ß and æ become letters, not nothing.
    assert clean_lyrics("Straße æther", V3_VOCAB) == "Strasse aether"


def test_tokenize_round_trips_and_rejects_raw_text() -> None:
    text = clean_lyrics(OZYMANDIAS, V3_VOCAB)
    tokens = tokenize(text, V3_VOCAB)
    assert len(tokens) == len(text) and min(tokens) >= 1
    assert detokenize(tokens, V3_VOCAB) == text
    assert detokenize([0, 27, 0], V3_VOCAB) == "a"
    with pytest.raises(InputError, match="outside the v3 lyrics vocabulary"):
        tokenize("a+b", V3_VOCAB)
    with pytest.raises(InputError, match="0..78"):
        detokenize([79], V3_VOCAB)


def test_short_lyrics_are_left_padded() -> None:
    window = relevant_lyric_tokens([5, 6, 7], 5, total_length=100, offset=0, duration=10)
    assert window.tokens == [0, 0, 5, 6, 7]
    assert window.indices == [-1, -1, 0, 1, 2]
    assert relevant_lyric_tokens([], 0, 100, 0, 10).tokens == []


def test_ozymandias_window_matches_the_hf_golden_values() -> None:
    assert len(OZYMANDIAS) == 685
    full = tokenize(clean_lyrics(OZYMANDIAS, V3_VOCAB), V3_VOCAB)
    window = relevant_lyric_tokens(full, 384, total_length=1058304, offset=0, duration=786432)
    # mid = int(685 · 393216 / 1058304) = 254 → window [62, 446)
    assert window.indices[0] == 254 - 192 and window.indices[-1] == 254 + 191
    assert detokenize(window.tokens[:30], V3_VOCAB) == " and trunkless legs of stone\n "
    assert window.tokens[:5] == [76, 27, 40, 30, 76]


def test_window_follows_the_song_and_stays_inside_the_lyrics() -> None:
    full = list(range(1, 101))  # 100 tokens
    first = relevant_lyric_tokens(full, 20, total_length=1000, offset=0, duration=100)
    assert first.indices[0] == 0  # clamped at the start
    middle = relevant_lyric_tokens(full, 20, total_length=1000, offset=450, duration=100)
    assert middle.indices[0] == 40  # mid = 50
    last = relevant_lyric_tokens(full, 20, total_length=1000, offset=990, duration=100)
    assert last.indices[-1] == 99 and len(last.tokens) == 20
    assert all(t == full[i] for t, i in zip(middle.tokens, middle.indices))
    with pytest.raises(InputError, match="outside the song"):
        relevant_lyric_tokens(full, 20, total_length=1000, offset=1000, duration=100)
