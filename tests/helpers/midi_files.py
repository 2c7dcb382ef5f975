"""Standard MIDI Files made in tests: notes and kick drum hits at given times."""

from __future__ import annotations

import io
from collections.abc import Sequence

import mido


def midi_bytes(notes: Sequence[tuple[float, float, int]], drums: Sequence[float] = ()) -> bytes:
    """A type-0 file at 120 bpm (480 ticks a beat: 960 ticks a second) of (start_s, end_s, pitch) notes and
    kick drum hits (channel 10, key 36) at ``drums`` seconds."""
    events: list[tuple[int, mido.Message]] = []
    for start, end, pitch in notes:
        events += [(round(start * 960), mido.Message("note_on", note=pitch, velocity=100)),
                   (round(end * 960), mido.Message("note_off", note=pitch, velocity=0))]  # fmt: skip
    for t in drums:
        events += [(round(t * 960), mido.Message("note_on", channel=9, note=36, velocity=110)),
                   (round(t * 960) + 10, mido.Message("note_off", channel=9, note=36, velocity=0))]  # fmt: skip
    track = mido.MidiTrack()
    now = 0
    for tick, msg in sorted(events, key=lambda e: e[0]):
        track.append(msg.copy(time=tick - now))
        now = tick
    f = mido.MidiFile(type=0, ticks_per_beat=480)
    f.tracks.append(track)
    out = io.BytesIO()
    f.save(file=out)
    return out.getvalue()
