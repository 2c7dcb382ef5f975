from __future__ import annotations

import io
import math

import mido
import numpy as np
import pretty_midi
import pytest

from common.errors import InputError
from conditioning.midi import (
    DRUM_CLASSES,
    MAX_BYTES,
    MAX_FRAMES,
    MAX_NOTES,
    MidiClip,
    midi_features,
    read_midi,
    summary,
)

SR, HOP = 44100, 128  # level 2: 344.53 frames per second


def _smf(
    tracks: list[list[tuple[int, mido.Message | mido.MetaMessage]]], midi_type: int = 1, tpb: int = 480
) -> bytes:
    """A Standard MIDI File from events given at absolute ticks (per track, in order)."""
    midi = mido.MidiFile(type=midi_type, ticks_per_beat=tpb)
    for events in tracks:
        track = mido.MidiTrack()
        last = 0
        for tick, message in events:
            track.append(message.copy(time=tick - last))
            last = tick
        midi.tracks.append(track)
    buffer = io.BytesIO()
    midi.save(file=buffer)
    return buffer.getvalue()


def _on(note: int, velocity: int = 100, channel: int = 0) -> mido.Message:
    return mido.Message("note_on", note=note, velocity=velocity, channel=channel)


def _off(note: int, channel: int = 0) -> mido.Message:
    return mido.Message("note_off", note=note, velocity=0, channel=channel)


def _tempo(bpm: float) -> mido.MetaMessage:
    return mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(bpm))


def _frame(seconds: float) -> int:
    return math.floor(seconds * SR / HOP)


def _features(clip: MidiClip, n_frames: int = 1000, start_s: float = 0.0, clip_start_s: float = 0.0):
    return midi_features(
        clip, sample_rate=SR, hop=HOP, start_s=start_s, n_frames=n_frames, clip_start_s=clip_start_s
    )


# ---- reading ----------------------------------------------------------------------------------------------


def test_type_0_notes_are_read_in_seconds_sorted_by_start() -> None:
    data = _smf(
        [
            [
                (0, _on(64)),
                (0, _on(60, 80)),
                (480, _off(60)),
                (480, _off(64)),
                (960, _on(67, 90)),
                (1200, _off(67)),
            ]
        ],
        0,
    )
    clip = read_midi(data, "a.mid")
    assert clip.midi_type == 0 and clip.n_notes == 3
    assert clip.pitch.tolist() == [60, 64, 67]  # same start: by pitch
    np.testing.assert_allclose(clip.start_s, [0.0, 0.0, 1.0])
    np.testing.assert_allclose(clip.end_s, [0.5, 0.5, 1.25])
    assert clip.velocity.tolist() == [80, 100, 90] and not clip.is_drum.any()
    assert clip.length_s == pytest.approx(1.25) and clip.name == "a.mid"
    assert not clip.start_s.flags.writeable


def test_type_1_reads_every_track_with_its_programs() -> None:
    conductor = [(0, _tempo(120)), (0, mido.MetaMessage("time_signature", numerator=3, denominator=4))]
    piano = [(0, mido.Message("program_change", program=0)), (0, _on(60)), (960, _off(60))]
    bass = [
        (0, mido.Message("program_change", program=33, channel=1)),
        (480, _on(36, 70, 1)),
        (1920, _off(36, 1)),
    ]
    clip = read_midi(_smf([conductor, piano, bass]), "two.mid")
    assert clip.midi_type == 1 and clip.n_notes == 2
    assert clip.pitch.tolist() == [60, 36] and clip.program.tolist() == [0, 33]
    np.testing.assert_allclose(clip.start_s, [0.0, 0.5])
    np.testing.assert_allclose(clip.end_s, [1.0, 2.0])
    assert clip.time_signatures[0][1:] == (3, 4)


def test_a_note_after_a_tempo_change_lands_on_the_frame_computed_by_hand() -> None:
    # 120 bpm for 960 ticks (= 1.0 s), then 60 bpm: tick 1440 is 1.0 + 480/480 * 1.0 = 2.0 s,
    # tick 1200 is 1.5 s. Frames at 44100/128: floor(2.0 * 344.53125) = 689, floor(1.5 * 344.53125) = 516.
    conductor = [
        (0, _tempo(120)),
        (960, _tempo(60)),
        (960, mido.MetaMessage("time_signature", numerator=6, denominator=8)),
    ]
    notes = [(1200, _on(62)), (1300, _off(62)), (1440, _on(60)), (1920, _off(60))]
    clip = read_midi(_smf([conductor, notes]), "tempo.mid")
    assert [round(t.qpm, 6) for t in clip.tempo_changes] == [120.0, 60.0]
    assert clip.tempo_changes[1].time_s == pytest.approx(1.0)
    assert clip.time_signatures == ((1.0, 6, 8),)
    np.testing.assert_allclose(clip.start_s, [1.5, 2.0])
    onset = _features(clip).onset
    assert np.argwhere(onset).tolist() == [[516, 62], [689, 60]]


def test_running_status_written_by_hand() -> None:
    # 96 ticks per beat, default tempo 120 bpm: 96 ticks = 0.5 s. After the first 0x90 the status byte is
    # omitted: note-on C4, note-on C4 velocity 0 (off), note-on D4, its off.
    events = bytes([0x00, 0x90, 60, 100, 0x60, 60, 0, 0x00, 62, 90, 0x60, 62, 0] + [0x00, 0xFF, 0x2F, 0x00])
    data = (
        b"MThd"
        + (6).to_bytes(4, "big")
        + bytes([0, 0, 0, 1, 0, 96])
        + b"MTrk"
        + len(events).to_bytes(4, "big")
        + events
    )
    clip = read_midi(data, "running.mid")
    assert clip.pitch.tolist() == [60, 62] and clip.velocity.tolist() == [100, 90]
    np.testing.assert_allclose(clip.start_s, [0.0, 0.5])
    np.testing.assert_allclose(clip.end_s, [0.5, 1.0])


def test_overlapping_notes_of_one_pitch_close_together_and_keep_the_loudest_velocity() -> None:
    # C4 at 0 (vel 40), C4 again at 480 (vel 120), note-offs at 960 and 1440: as a synthesiser plays it,
    # the first note-off stops both (pretty_midi's rule); the second is a stray.
    data = _smf([[(0, _on(60, 40)), (480, _on(60, 120)), (960, _off(60)), (1440, _off(60))]], 0)
    clip = read_midi(data, "overlap.mid")
    np.testing.assert_allclose(clip.start_s, [0.0, 0.5])
    np.testing.assert_allclose(clip.end_s, [1.0, 1.0])
    features = _features(clip)
    assert np.flatnonzero(features.onset[:, 60]).tolist() == [0, _frame(0.5)]
    assert np.flatnonzero(features.sustain[:, 60]).tolist() == list(
        range(_frame(1.0) + 1)
    )  # 1.0 s is inside frame 344
    assert features.velocity[_frame(0.25), 60] == pytest.approx(40 / 127)
    assert features.velocity[_frame(0.75), 60] == pytest.approx(120 / 127)


def test_a_zero_length_note_is_kept_as_an_onset_of_one_frame() -> None:
    data = _smf([[(0, _on(60)), (480, _on(72, 64)), (480, _off(72)), (960, _off(60))]], 0)
    clip = read_midi(data, "zero.mid")  # pretty_midi alone drops note 72
    assert clip.pitch.tolist() == [60, 72]
    assert clip.start_s[1] == clip.end_s[1] == pytest.approx(0.5)
    features = _features(clip)
    assert np.flatnonzero(features.onset[:, 72]).tolist() == [_frame(0.5)]
    assert np.flatnonzero(features.sustain[:, 72]).tolist() == [_frame(0.5)]
    assert features.velocity[_frame(0.5), 72] == pytest.approx(64 / 127)


def test_a_retrigger_on_the_note_off_tick_keeps_the_new_note() -> None:
    data = _smf([[(0, _on(60)), (480, _on(60, 90)), (480, _off(60)), (960, _off(60))]], 0)
    clip = read_midi(data, "retrigger.mid")
    np.testing.assert_allclose(clip.start_s, [0.0, 0.5])
    np.testing.assert_allclose(clip.end_s, [0.5, 1.0])


def test_a_note_without_note_off_ends_with_its_track_and_says_so() -> None:
    data = _smf(
        [[(0, _on(60)), (480, _on(64)), (960, _off(64)), (1920, mido.MetaMessage("end_of_track"))]], 0
    )
    clip = read_midi(data, "hanging.mid")
    np.testing.assert_allclose(clip.end_s, [2.0, 1.0])
    assert clip.remarks == ("1 notes have no note-off; they end at the end of their track",)


def test_pairing_matches_pretty_midi_where_pretty_midi_keeps_every_note() -> None:
    rng = np.random.default_rng(1)
    events = []
    for _ in range(300):
        start = int(rng.integers(0, 20_000))
        pitch, channel = int(rng.integers(30, 90)), int(rng.choice([0, 1, 9]))
        events += [
            (start, 1, _on(pitch, int(rng.integers(1, 128)), channel)),
            (start + int(rng.integers(1, 900)), 0, _off(pitch, channel)),
        ]
    events.sort(key=lambda event: (event[0], event[1]))
    data = _smf([[(0, _tempo(97))], [(tick, message) for tick, _, message in events]])
    clip = read_midi(data, "random.mid")
    score = pretty_midi.PrettyMIDI(io.BytesIO(data))
    reference = sorted(
        (n.start, n.pitch, n.end, n.velocity, i.is_drum) for i in score.instruments for n in i.notes
    )
    ours = sorted(zip(clip.start_s, clip.pitch, clip.end_s, clip.velocity, clip.is_drum))
    assert len(ours) == len(reference)
    for mine, theirs in zip(ours, reference):
        assert mine[1:2] + mine[3:] == theirs[1:2] + theirs[3:]
        assert mine[0] == pytest.approx(theirs[0]) and mine[2] == pytest.approx(theirs[2])


def test_a_midi_without_notes_is_an_empty_clip() -> None:
    clip = read_midi(_smf([[(0, _tempo(100)), (1920, mido.MetaMessage("end_of_track"))]]), "silence.mid")
    assert clip.n_notes == 0 and clip.length_s == pytest.approx(2 * 60 / 100 * 2)
    features = _features(clip, n_frames=100)
    assert not features.sustain.any() and features.coverage.all()
    assert "clip has no notes" in features.notes


# ---- bad input --------------------------------------------------------------------------------------------


def _song() -> bytes:
    conductor = [(0, _tempo(120)), (0, mido.MetaMessage("time_signature", numerator=4, denominator=4))]
    notes = [
        (tick, message)
        for k in range(32)
        for tick, message in ((k * 240, _on(60 + k % 12)), (k * 240 + 200, _off(60 + k % 12)))
    ]
    return _smf([conductor, notes])


@pytest.mark.parametrize("cut", [4, 13, 14, 21, 30, 60, 150, -5, -1])
def test_a_truncated_file_is_named_in_one_clear_error(cut: int) -> None:
    data = _song()
    read_midi(data, "whole.mid")
    with pytest.raises(InputError, match=r"^MIDI file 'cut\.mid': is truncated"):
        read_midi(data[:cut], "cut.mid")


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"", "is empty"),
        (b"this is a text file, not a song\n", "is not a Standard MIDI File"),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", "is not a Standard MIDI File"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\x90\xff\xff", "is corrupt"),
        (b"MThd\x00\x00\x00\x06\x00\x02\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xff\x2f\x00", "is type 2"),
        (b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\xe7\x28MTrk\x00\x00\x00\x04\x00\xff\x2f\x00", "uses SMPTE"),
        (b"MThd\x00\x00\x00\x06\x00\x01\x00\x00\x01\xe0", "has no tracks"),
    ],
)
def test_garbage_is_named_in_one_clear_error(data: bytes, problem: str) -> None:
    with pytest.raises(InputError, match=f"^MIDI file 'junk.mid': {problem}"):
        read_midi(data, "junk.mid")


def test_random_bytes_after_a_valid_header_never_escape_as_a_library_error() -> None:
    rng = np.random.default_rng(7)
    head = _song()[:22]
    for _ in range(200):
        data = head + rng.integers(0, 256, int(rng.integers(1, 64)), dtype=np.uint8).tobytes()
        try:
            read_midi(data, "fuzz.mid")
        except InputError as error:
            assert str(error).startswith("MIDI file 'fuzz.mid': ")


def _repeated_notes(count: int) -> bytes:
    """A type 0 file of ``count`` 32nd notes on C4, in running status (built as bytes: mido is slow here)."""
    events = bytes([0x00, 0x90, 60, 100, 24, 60, 0]) + bytes([0x00, 60, 100, 24, 60, 0]) * (count - 1)
    events += bytes([0x00, 0xFF, 0x2F, 0x00])
    return (
        b"MThd"
        + (6).to_bytes(4, "big")
        + bytes([0, 0, 0, 1, 0x01, 0xE0])
        + b"MTrk"
        + len(events).to_bytes(4, "big")
        + events
    )


def test_too_many_notes_is_refused() -> None:
    with pytest.raises(InputError, match=r"'many\.mid': has more than 20,000 notes"):
        read_midi(_repeated_notes(MAX_NOTES + 1), "many.mid")
    assert read_midi(_repeated_notes(MAX_NOTES), "enough.mid").n_notes == MAX_NOTES


def test_a_file_too_big_is_refused_before_parsing() -> None:
    with pytest.raises(InputError, match=r"'huge\.mid': is 4,194,305 bytes; the limit is 4,194,304"):
        read_midi(b"MThd" + bytes(MAX_BYTES - 3), "huge.mid")


def test_too_long_is_refused() -> None:
    # 30 bpm, 480 ticks per beat: 2 s a beat; 601 beats = 1202 s, over the 1200 s limit
    data = _smf([[(0, _tempo(30)), (0, _on(60)), (601 * 480, _off(60))]], 0)
    with pytest.raises(InputError, match=r"'long\.mid': is 1202\.0 s long; the limit is 1200 s"):
        read_midi(data, "long.mid")
    with pytest.raises(InputError, match=r"'far\.mid': reaches tick 12,000,000"):
        read_midi(_smf([[(0, _on(60)), (12_000_000, _off(60))]], 0), "far.mid")


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"n_frames": MAX_FRAMES + 1}, "n_frames is 2,097,153"),
        ({"n_frames": 0}, "n_frames must be a positive integer"),
        ({"hop": 0}, "hop must be a positive integer"),
        ({"sample_rate": 44100.0}, "sample_rate must be a positive integer"),
        ({"start_s": float("nan")}, "start_s must be a number of seconds"),
        ({"clip_start_s": float("inf")}, "clip_start_s must be a number of seconds"),
        ({"clip_start_s": 1e30}, "clip_start_s must be a number of seconds within ±1e\\+06, got 1e\\+30"),
    ],
)
def test_window_arguments_are_checked(kwargs: dict[str, float], problem: str) -> None:
    clip = read_midi(_song(), "song.mid")
    arguments = {"sample_rate": SR, "hop": HOP, "start_s": 0.0, "n_frames": 100, "clip_start_s": 0.0} | kwargs
    with pytest.raises(InputError, match=problem):
        midi_features(clip, **arguments)  # type: ignore[arg-type]


# ---- features ---------------------------------------------------------------------------------------------


def test_drums_on_channel_10_go_to_their_classes_not_to_the_pitch_rolls() -> None:
    keys = {
        36: "kick",
        38: "snare",
        39: "snare",
        42: "hihat",
        46: "hihat",
        45: "toms",
        49: "cymbals",
        51: "cymbals",
        56: "other",
        81: "other",
    }
    events = []
    for k, key in enumerate(keys):
        events += [(k * 240, _on(key, 10 + k, 9)), (k * 240 + 60, _off(key, 9))]
    clip = read_midi(_smf([[(tick, message) for tick, message in events]], 0), "drums.mid")
    assert clip.is_drum.all()
    features = _features(clip)
    assert not features.onset.any() and not features.sustain.any() and not features.chroma.any()
    for k, (key, cls) in enumerate(keys.items()):
        frame = _frame(k * 0.25)
        assert features.drums[frame, DRUM_CLASSES.index(cls)] == pytest.approx((10 + k) / 127), key
    assert np.count_nonzero(features.drums) == len(keys)
    assert summary(features)["drum_hits"] == {
        "kick": 1,
        "snare": 2,
        "hihat": 2,
        "toms": 1,
        "cymbals": 2,
        "other": 2,
    }


def test_chroma_counts_sounding_notes_per_pitch_class_scaled_to_one() -> None:
    # C3 and C4 sound: C counts 2, E and G 1 each, whatever their velocities
    data = _smf(
        [
            [
                (0, _on(48, 30)),
                (0, _on(60, 100)),
                (0, _on(64, 50)),
                (0, _on(67, 127)),
                (480, _off(48)),
                (480, _off(60)),
                (480, _off(64)),
                (480, _off(67)),
            ]
        ],
        0,
    )
    features = _features(read_midi(data, "chord.mid"))
    np.testing.assert_allclose(features.chroma[0], [1, 0, 0, 0, 0.5, 0, 0, 0.5, 0, 0, 0, 0])
    assert not features.chroma[_frame(0.6)].any()


def test_a_clip_starting_before_the_window_keeps_held_notes_without_onset() -> None:
    data = _smf(
        [
            [
                (0, _on(60)),
                (960, _off(60)),
                (1440, _on(62)),
                (1680, _off(62)),
                (1920, mido.MetaMessage("end_of_track")),
            ]
        ],
        0,
    )
    clip = read_midi(data, "before.mid")  # C4 0..1 s, D4 1.5..1.75 s, clip 2 s long
    features = _features(
        clip, n_frames=689, start_s=10.0, clip_start_s=9.5
    )  # window 10..12 s, clip 9.5..11.5 s
    assert not features.onset[:, 60].any() and features.sustain[0, 60] == 1.0
    assert np.flatnonzero(features.onset).tolist() == [_frame(1.0) * 128 + 62]
    assert features.coverage[: _frame(1.5)].all() and not features.coverage[_frame(1.5) + 1 :].any()
    assert features.notes == (
        "clip starts 0.500 s before the window",
        "clip ends 0.500 s before the window ends",
        "1 notes started before the window (their sustain is kept, no onset)",
    )


def test_a_clip_starting_inside_the_window_is_shifted_and_masked() -> None:
    clip = read_midi(_smf([[(0, _on(60)), (480, _off(60))]], 0), "later.mid")
    features = _features(clip, n_frames=1000, start_s=1.0, clip_start_s=2.0)
    assert np.flatnonzero(features.onset[:, 60]).tolist() == [_frame(1.0)]
    assert not features.coverage[: _frame(1.0)].any() and features.coverage[_frame(1.0)] == 1.0
    assert "clip starts 1.000 s into the window" in features.notes


def test_a_clip_starting_after_the_window_gives_an_empty_masked_window() -> None:
    clip = read_midi(_smf([[(0, _on(60)), (480, _off(60))]], 0), "after.mid")
    features = _features(clip, n_frames=689, start_s=0.0, clip_start_s=3.0)  # window 0..2 s
    assert not features.onset.any() and not features.sustain.any() and not features.coverage.any()
    assert features.notes == ("clip starts 1.000 s after the window ends", "clip is empty in this window")


def test_a_window_without_notes_says_the_clip_is_empty_there() -> None:
    clip = read_midi(
        _smf([[(0, _on(60)), (480, _off(60)), (4800, mido.MetaMessage("end_of_track"))]], 0), "sparse.mid"
    )
    features = _features(clip, n_frames=100, start_s=2.0)
    assert not features.sustain.any() and features.coverage.all()
    assert features.notes == ("clip starts 2.000 s before the window", "clip is empty in this window")
    assert summary(features)["pitched_onsets"] == 0 and summary(features)["pitch_range"] is None


def _reference_rolls(
    clip: MidiClip, n_frames: int, start_s: float, clip_start_s: float
) -> tuple[np.ndarray, ...]:
    """One note at a time, the frame rule written out plainly."""
    per_s = SR / HOP
    onset, sustain, velocity = (np.zeros((n_frames, 128)) for _ in range(3))
    drums = np.zeros((n_frames, len(DRUM_CLASSES)))
    classes = {
        35: 0,
        36: 0,
        37: 1,
        38: 1,
        39: 1,
        40: 1,
        42: 2,
        44: 2,
        46: 2,
        41: 3,
        43: 3,
        45: 3,
        47: 3,
        48: 3,
        50: 3,
    }
    classes |= dict.fromkeys((49, 51, 52, 53, 55, 57, 59), 4)
    for start, end, pitch, vel, drum in zip(
        clip.start_s, clip.end_s, clip.pitch, clip.velocity, clip.is_drum
    ):
        first = math.floor((clip_start_s + start - start_s) * per_s + 1e-6)
        stop = max(first + 1, math.ceil((clip_start_s + end - start_s) * per_s - 1e-6))
        if drum:
            if 0 <= first < n_frames:
                k = classes.get(int(pitch), 5)
                drums[first, k] = max(drums[first, k], vel / 127)
            continue
        if 0 <= first < n_frames:
            onset[first, pitch] = 1
        for frame in range(max(first, 0), min(stop, n_frames)):
            sustain[frame, pitch] = 1
            velocity[frame, pitch] = max(velocity[frame, pitch], vel / 127)
    return onset, sustain, velocity, drums


def test_vectorised_rolls_match_a_note_by_note_reference() -> None:
    rng = np.random.default_rng(3)
    events = []
    for _ in range(400):
        start = int(rng.integers(0, 9600))
        pitch, channel = (
            int(rng.integers(34, 50)),
            int(rng.choice([0, 0, 3, 9])),
        )  # few pitches: many overlaps
        length = int(rng.choice([0, 1, 5, 100, 700, 3000]))
        events += [
            (start, 0, _on(pitch, int(rng.integers(1, 128)), channel)),
            (start + length, 1, _off(pitch, channel)),
        ]
    events.sort(key=lambda event: (event[0], event[1]))  # note-ons first on a tick: zero-length notes too
    clip = read_midi(
        _smf([[(0, _tempo(133))], [(tick, message) for tick, _, message in events]]), "dense.mid"
    )
    for start_s, clip_start_s in ((0.0, 0.0), (3.0, 1.3), (0.5, 2.0)):
        features = _features(clip, n_frames=1500, start_s=start_s, clip_start_s=clip_start_s)
        onset, sustain, velocity, drums = _reference_rolls(clip, 1500, start_s, clip_start_s)
        np.testing.assert_array_equal(features.onset, onset)
        np.testing.assert_array_equal(features.sustain, sustain)
        np.testing.assert_allclose(features.velocity, velocity, rtol=1e-6)
        np.testing.assert_allclose(features.drums, drums, rtol=1e-6)
        assert all(
            a.dtype == np.float32 and a.shape[0] == 1500
            for a in (features.onset, features.chroma, features.coverage)
        )


def test_summary_is_plain_numbers() -> None:
    data = _smf(
        [
            [
                (0, _on(36, 100, 9)),
                (0, _on(60, 64)),
                (0, _on(72, 127)),
                (10, _off(36, 9)),
                (480, _off(60)),
                (480, _off(72)),
            ]
        ],
        0,
    )
    result = summary(_features(read_midi(data, "sum.mid"), n_frames=500))
    assert result["pitched_onsets"] == 2 and result["pitch_range"] == [60, 72]
    assert result["mean_onset_velocity"] == pytest.approx((64 + 127) / 2, abs=0.01)
    assert result["drum_hits"]["kick"] == 1 and result["coverage"] == pytest.approx(
        _frame(0.5) / 500, abs=2 / 500
    )


def test_times_on_a_frame_boundary_are_not_moved_by_rounding_error() -> None:
    # 120 bpm, 480 ticks per beat, 100 frames per second: tick 1104 is 1.15 s = frame 115 (114.99999999999999 in
    # floating point) and tick 2112 is 2.2 s = frame 220 (220.00000000000003): the note sounds in frames 115..219.
    clip = read_midi(_smf([[(1104, _on(60)), (2112, _off(60))]], 0), "grid.mid")
    features = midi_features(clip, sample_rate=44100, hop=441, start_s=0.0, n_frames=300)
    assert np.flatnonzero(features.onset[:, 60]).tolist() == [115]
    assert np.flatnonzero(features.sustain[:, 60]).tolist() == list(range(115, 220))
    assert np.flatnonzero(features.coverage).tolist() == list(range(220))
