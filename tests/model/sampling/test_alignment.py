import json

import numpy as np

from model.sampling.alignment import (
    WindowAttention,
    alignment_record,
    character_timings,
    scatter_alignment,
    word_timings,
)


def test_scatter_drops_padding_and_earlier_windows_win() -> None:
    a = WindowAttention(0, np.full((4, 3), 1.0), [-1, 0, 1])
    b = WindowAttention(2, np.full((4, 3), 2.0), [1, 2, 3])
    out = scatter_alignment(5, 4, [a, b])  # b's last row is past the end (zero padding)
    assert out.shape == (5, 4)
    assert out[0].tolist() == [1, 1, 0, 0]
    assert out[2].tolist() == [1, 1, 2, 2]  # overlap row: window a wins where both write (column 1)
    assert out[4].tolist() == [0, 2, 2, 2]


def test_diagonal_attention_gives_ordered_timings() -> None:
    lyrics = "la di"
    total = 10
    att = np.zeros((total, len(lyrics)))
    for t in range(total):
        att[t, min(t // 2, len(lyrics) - 1)] = 1.0
    chars = character_timings(att, lyrics, hop=128, sample_rate=1280)  # 0.1 s per token
    assert [c.char for c in chars] == list(lyrics)
    assert [round(c.start, 3) for c in chars] == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert all(c.end > c.start for c in chars)
    words = word_timings(chars)
    assert [(w.word, round(w.start, 2), round(w.end, 2)) for w in words] == [("la", 0.0, 0.4), ("di", 0.6, 1.0)]


def test_backward_jumps_are_made_monotonic() -> None:
    att = np.zeros((6, 3))
    for t, c in enumerate([0, 2, 1, 1, 2, 2]):
        att[t, c] = 1
    starts = [c.start for c in character_timings(att, "abc", 1, 1)]
    assert starts == sorted(starts)


def test_record_is_json() -> None:
    att = np.eye(4)
    rec = alignment_record(att, "ab c", 8, 16)
    text = json.dumps(rec)
    assert json.loads(text)["words"][0]["word"] == "ab"
    assert len(rec["characters"]) == 4


def test_align_lyrics_on_a_tiny_lyrics_prior() -> None:
    import torch

    from model.prior import presets
    from model.sampling.alignment import align_lyrics
    from model.sampling.jukebox import JukeboxLevel
    from tests.helpers.factories import build, tiny_labels

    for config in (presets.tiny_prior_merged(), presets.tiny_prior_separate()):
        level = JukeboxLevel(build(config))
        labels = tiny_labels({2: config}, lyrics="oh la la, sing along now")[2]
        codes = torch.randint(0, config.n_bins, (2, 70))  # 70 tokens: several top-level windows
        records = align_lyrics(level, codes, labels, 0.125, 44100)
        assert len(records) == 2
        chars = records[0]["characters"]
        assert "".join(c["char"] for c in chars) == labels.lyrics
        starts = [c["start"] for c in chars]
        assert starts == sorted(starts) and starts[-1] < 70 * 128 / 44100
        assert [w["word"] for w in records[1]["words"]] == ["oh", "la", "la,", "sing", "along", "now"]
