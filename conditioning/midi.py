"""MIDI clips → frame features at a prior level's token rate (issue 9).

Two pure steps, no file I/O: :func:`read_midi` turns the bytes of a Standard MIDI File into a
:class:`MidiClip` (plain numpy arrays of notes), and :func:`midi_features` turns a clip placed at
``clip_start_s`` on the model's audio time line into per-frame rolls for one window of tokens.

Who computes what: mido parses the bytes (chunks, running status, meta events); pretty_midi supplies the
tempo map (tick → seconds, tempo and time signatures from the first track) and the time signatures.
Notes are paired here, on mido's messages, because pretty_midi drops zero-length notes and notes that
never get a note-off; the pairing otherwise follows pretty_midi's rule (a note-off closes every earlier
note-on of its channel and key in its track, as a synthesiser would). Features are numpy.

Frame rule: frame ``i`` of a window covers ``[start_s + i·hop/sr, start_s + (i+1)·hop/sr)``; a note
sounds in every frame its ``[start, end)`` overlaps, and always in the frame holding its start
(zero-length notes sound in exactly that frame).
"""

from __future__ import annotations

import heapq
import io
import math
import warnings
from dataclasses import dataclass
from typing import NamedTuple, TypedDict

import mido
import numpy as np
import pretty_midi

from common.errors import InputError

MAX_BYTES = 4 * 1024 * 1024  # 20,000 notes take ~150 kB; mido parses ~0.5 MB/s, so junk costs seconds at most
MAX_NOTES = 20_000
MAX_CLIP_S = 1200.0
MAX_TIME_S = 1e6  # |start_s|, |clip_start_s|: keeps frame numbers far inside int64
MAX_FRAMES = 2**21  # three (n_frames, 128) float32 rolls = 3 GiB at the limit
MAX_TICK = int(pretty_midi.pretty_midi.MAX_TICK)  # pretty_midi allocates one float per tick
DRUM_CHANNEL = 9  # General MIDI channel 10, 0-based as mido counts
_NEVER = 2**62  # a position after every note
_EPS = 1e-6  # in frames: a time within a millionth of a frame of a boundary counts as on it

DRUM_CLASSES = ("kick", "snare", "hihat", "toms", "cymbals", "other")
N_FEATURES = 3 * 128 + 12 + len(DRUM_CLASSES)  # the columns of MidiFeatures.as_matrix
GM_DRUM_KEYS: dict[str, tuple[int, ...]] = {
    "kick": (35, 36),  # acoustic bass drum, bass drum 1
    "snare": (37, 38, 39, 40),  # side stick, acoustic snare, hand clap, electric snare
    "hihat": (42, 44, 46),  # closed, pedal, open hi-hat
    "toms": (41, 43, 45, 47, 48, 50),  # low floor ... high tom
    "cymbals": (49, 51, 52, 53, 55, 57, 59),  # crash 1, ride 1, chinese, ride bell, splash, crash 2, ride 2
}  # every other key (including those outside GM's 35..81) is "other"
_DRUM_CLASS_OF_KEY = np.full(128, DRUM_CLASSES.index("other"), dtype=np.int64)
for _cls, _keys in GM_DRUM_KEYS.items():
    _DRUM_CLASS_OF_KEY[list(_keys)] = DRUM_CLASSES.index(_cls)
_CHROMA_FOLD = (np.arange(128)[:, None] % 12 == np.arange(12)[None, :]).astype(np.float32)  # (128, 12)


class TempoChange(NamedTuple):
    time_s: float
    qpm: float  # quarter notes per minute


class TimeSignature(NamedTuple):
    time_s: float
    numerator: int
    denominator: int


@dataclass(frozen=True)
class MidiClip:
    """Notes of a MIDI file, sorted by start (then pitch); times in seconds from the clip's start.

    ``end_s == start_s`` for a zero-length note (note-on and note-off on the same tick): it is kept as an
    onset. ``remarks`` say what reading changed or ignored. Arrays are read-only.
    """

    name: str
    start_s: np.ndarray  # (n,) float64
    end_s: np.ndarray  # (n,) float64
    pitch: np.ndarray  # (n,) int16, MIDI key 0..127 (the drum sound for drum notes)
    velocity: np.ndarray  # (n,) int16, 1..127
    is_drum: np.ndarray  # (n,) bool, channel 10
    program: np.ndarray  # (n,) int16, GM program 0..127 in force at the note-on
    length_s: float  # to the last event of any track (end of track), at least the last note-off
    tempo_changes: tuple[TempoChange, ...]
    time_signatures: tuple[TimeSignature, ...]
    midi_type: int
    ticks_per_beat: int
    remarks: tuple[str, ...] = ()

    @property
    def n_notes(self) -> int:
        return int(self.start_s.shape[0])


@dataclass(frozen=True)
class MidiFeatures:
    """Per-frame MIDI features of one window; every array is float32 with first dimension n_frames."""

    onset: np.ndarray  # (n_frames, 128) 1.0 where a pitched note starts
    sustain: np.ndarray  # (n_frames, 128) 1.0 where a pitched note sounds
    velocity: np.ndarray  # (n_frames, 128) velocity/127 where sounding, max of overlapping notes
    chroma: np.ndarray  # (n_frames, 12) sounding notes per pitch class, each frame scaled to max 1
    drums: np.ndarray  # (n_frames, len(DRUM_CLASSES)) velocity/127 of drum hits at their onset frame
    coverage: np.ndarray  # (n_frames,) 1.0 inside [clip start, clip end)
    notes: tuple[str, ...]

    def as_matrix(self) -> np.ndarray:
        """(n_frames, N_FEATURES) float32 for a network: onset, sustain and velocity rolls (128 each), then
        chroma (12) and drum classes (6), in that order."""
        return np.concatenate([self.onset, self.sustain, self.velocity, self.chroma, self.drums], axis=1)


class _Note(NamedTuple):
    start_tick: int
    end_tick: int
    pitch: int
    velocity: int
    channel: int
    program: int


def _not_midi(name: str, problem: str) -> InputError:
    return InputError(f"MIDI file {name!r}: {problem}")


def _parse(data: bytes, name: str) -> mido.MidiFile:
    if not data:
        raise _not_midi(name, "is empty")
    if len(data) > MAX_BYTES:
        raise _not_midi(name, f"is {len(data):,} bytes; the limit is {MAX_BYTES:,}")
    try:
        midi = mido.MidiFile(file=io.BytesIO(data))
    except EOFError:
        raise _not_midi(name, "is truncated (it ends inside a chunk)") from None
    except OSError as error:
        if "MThd" in str(error):
            raise _not_midi(name, "is not a Standard MIDI File (no MThd header)") from None
        raise _not_midi(name, f"is corrupt ({error})") from None
    except Exception as error:  # mido raises KeyError, IndexError, ValueError, TypeError... on bad bytes
        raise _not_midi(name, f"is corrupt ({type(error).__name__}: {error})") from None
    if midi.type == 2:
        raise _not_midi(name, "is type 2 (independent sequences); only types 0 and 1 are supported")
    if midi.ticks_per_beat <= 0 or midi.ticks_per_beat & 0x8000:
        raise _not_midi(name, "uses SMPTE or zero time division; only ticks per beat are supported")
    if not midi.tracks:
        raise _not_midi(name, "has no tracks")
    return midi


def _pair_notes(midi: mido.MidiFile, name: str) -> tuple[list[_Note], int, list[str]]:
    """Notes of every track by absolute tick, the last tick of any track, and remarks."""
    notes: list[_Note] = []
    last_tick = 0
    n_unterminated = n_meta_elsewhere = 0
    n_note_ons = 0
    for track_index, track in enumerate(midi.tracks):
        tick = 0
        program = [0] * 16
        open_notes: dict[tuple[int, int], list[tuple[int, int, int]]] = {}  # (ch, key) -> [(tick, vel, prog)]
        for message in track:
            tick += message.time
            kind = message.type
            if kind == "note_on" and message.velocity > 0:
                n_note_ons += 1
                if n_note_ons > MAX_NOTES:
                    raise _not_midi(name, f"has more than {MAX_NOTES:,} notes, the limit")
                key = (message.channel, message.note)
                open_notes.setdefault(key, []).append((tick, message.velocity, program[message.channel]))
            elif kind == "note_off" or kind == "note_on":
                key = (message.channel, message.note)
                pending = open_notes.pop(key, None)
                if not pending:
                    continue  # a note-off without a note-on: nothing sounds, nothing to do
                earlier = [entry for entry in pending if entry[0] < tick]
                if earlier:  # a note-on on this very tick is a retrigger written before its note-off: keep it
                    same_tick = [entry for entry in pending if entry[0] == tick]
                    if same_tick:
                        open_notes[key] = same_tick
                    pending = earlier
                for start, velocity, prog in pending:  # zero-length when all started on this tick
                    notes.append(_Note(start, tick, message.note, velocity, message.channel, prog))
            elif kind == "program_change":
                program[message.channel] = message.program
            elif track_index > 0 and kind in ("set_tempo", "time_signature"):
                n_meta_elsewhere += 1
        for (channel, note), pending in open_notes.items():
            n_unterminated += len(pending)
            notes.extend(
                _Note(start, tick, note, velocity, channel, prog) for start, velocity, prog in pending
            )
        last_tick = max(last_tick, tick)
    remarks = []
    if n_unterminated:
        remarks.append(f"{n_unterminated} notes have no note-off; they end at the end of their track")
    if n_meta_elsewhere:
        remarks.append(f"{n_meta_elsewhere} tempo/time-signature events outside the first track are ignored")
    return notes, last_tick, remarks


def read_midi(data: bytes, name: str) -> MidiClip:
    """Parse a Standard MIDI File (type 0 or 1) from bytes; ``name`` names it in errors.

    Raises :class:`InputError` for empty, non-MIDI, corrupt or truncated data, more than ``MAX_NOTES``
    notes, or a clip longer than ``MAX_CLIP_S`` seconds. A file without notes is a valid, empty clip.
    """
    midi = _parse(data, name)
    try:
        notes, last_tick, remarks = _pair_notes(midi, name)
    except InputError:
        raise
    except Exception as error:  # a message mido accepted but that makes no sense
        raise _not_midi(name, f"is corrupt ({type(error).__name__}: {error})") from None
    if last_tick >= MAX_TICK:
        raise _not_midi(
            name, f"reaches tick {last_tick:,}; it is corrupt or far longer than {MAX_CLIP_S:g} s"
        )
    for track in midi.tracks:
        if not track:  # pretty_midi cannot take an empty track
            track.append(mido.MetaMessage("end_of_track", time=0))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # tempo outside track 0: reported in remarks
            score = pretty_midi.PrettyMIDI(mido_object=midi)
            ticks = np.unique(np.array([last_tick] + [t for n in notes for t in n[:2]], dtype=np.int64))
            seconds = np.array([score.tick_to_time(int(t)) for t in ticks], dtype=np.float64)
            tempo_times, tempi = score.get_tempo_changes()
    except Exception as error:  # pretty_midi on odd content: a zero tempo, a bad key signature...
        raise _not_midi(name, f"is corrupt ({type(error).__name__}: {error})") from None
    length_s = float(seconds[-1])
    if length_s > MAX_CLIP_S:
        raise _not_midi(name, f"is {length_s:.1f} s long; the limit is {MAX_CLIP_S:g} s")

    table = np.array(notes, dtype=np.int64).reshape(len(notes), 6)  # columns as _Note
    start_s = seconds[np.searchsorted(ticks, table[:, 0])]
    end_s = seconds[np.searchsorted(ticks, table[:, 1])]
    order = np.lexsort((table[:, 2], start_s))

    def frozen(values: np.ndarray) -> np.ndarray:
        values = np.ascontiguousarray(values[order])
        values.flags.writeable = False
        return values

    return MidiClip(
        name=name,
        start_s=frozen(start_s),
        end_s=frozen(end_s),
        pitch=frozen(table[:, 2].astype(np.int16)),
        velocity=frozen(table[:, 3].astype(np.int16)),
        is_drum=frozen(table[:, 4] == DRUM_CHANNEL),
        program=frozen(table[:, 5].astype(np.int16)),
        length_s=length_s,
        tempo_changes=tuple(TempoChange(float(t), float(q)) for t, q in zip(tempo_times, tempi)),
        time_signatures=tuple(
            TimeSignature(float(ts.time), int(ts.numerator), int(ts.denominator))
            for ts in score.time_signature_changes
        ),
        midi_type=int(midi.type),
        ticks_per_beat=int(midi.ticks_per_beat),
        remarks=tuple(remarks),
    )


def _check_grid(sample_rate: int, hop: int, start_s: float, n_frames: int, clip_start_s: float) -> None:
    for label, value in (("sample_rate", sample_rate), ("hop", hop), ("n_frames", n_frames)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
            raise InputError(f"{label} must be a positive integer, got {value!r}")
    if n_frames > MAX_FRAMES:
        raise InputError(
            f"n_frames is {n_frames:,}; at most {MAX_FRAMES:,} frames fit one MIDI feature window"
        )
    for label, number in (("start_s", start_s), ("clip_start_s", clip_start_s)):
        if (
            isinstance(number, bool)
            or not isinstance(number, int | float | np.number)
            or not abs(number) <= MAX_TIME_S
        ):
            raise InputError(f"{label} must be a number of seconds within ±{MAX_TIME_S:g}, got {number!r}")


def _velocity_envelope(
    first: np.ndarray, stop: np.ndarray, pitch: np.ndarray, velocity: np.ndarray, n_frames: int
) -> np.ndarray:
    """(n_frames, 128) int8: per pitch, the highest velocity of the notes sounding in each frame.

    Notes are frame intervals ``[first, stop)`` inside ``[0, n_frames]``. One sweep over all notes (in a
    key ``pitch·(n_frames+1) + frame`` so pitches never meet) turns overlapping intervals into the
    points where the maximum changes; a cumulative sum over frames paints them.
    """
    row = n_frames + 1
    starts = pitch.astype(np.int64) * row + first
    ends = pitch.astype(np.int64) * row + stop
    order = np.argsort(starts, kind="stable")
    starts_l, ends_l, velocity_l = starts[order].tolist(), ends[order].tolist(), velocity[order].tolist()
    change_at: list[int] = []
    change_by: list[int] = []
    sounding: list[tuple[int, int]] = []  # heap of (-velocity, end)
    current, i, count = 0, 0, len(starts_l)
    while i < count or sounding:
        position = starts_l[i] if i < count else _NEVER
        if sounding and sounding[0][1] < position:
            position = sounding[0][1]
        while i < count and starts_l[i] == position:
            heapq.heappush(sounding, (-velocity_l[i], ends_l[i]))
            i += 1
        while sounding and sounding[0][1] <= position:
            heapq.heappop(sounding)
        loudest = -sounding[0][0] if sounding else 0
        if loudest != current:
            change_at.append(position)
            change_by.append(loudest - current)
            current = loudest
    steps = np.zeros((row, 128), dtype=np.int8)
    at = np.array(change_at, dtype=np.int64)
    steps[at % row, at // row] = np.array(change_by, dtype=np.int8)
    np.cumsum(steps, axis=0, dtype=np.int8, out=steps)  # stays within 0..127
    return steps[:n_frames]


def midi_features(
    clip: MidiClip, *, sample_rate: int, hop: int, start_s: float, n_frames: int, clip_start_s: float = 0.0
) -> MidiFeatures:
    """Frame features of ``clip`` for the window of ``n_frames`` tokens (``hop`` samples each) at ``start_s``.

    The clip's time 0 sits at model-audio time ``clip_start_s`` (negative: it starts before the window).
    """
    _check_grid(sample_rate, hop, start_s, n_frames, clip_start_s)
    frames_per_s = sample_rate / hop
    window_s = n_frames / frames_per_s
    offset = (clip_start_s - start_s) * frames_per_s  # clip time 0, in frames of this window
    first = np.floor(clip.start_s * frames_per_s + offset + _EPS).astype(np.int64)
    stop = np.maximum(first + 1, np.ceil(clip.end_s * frames_per_s + offset - _EPS).astype(np.int64))
    inside = (stop > 0) & (first < n_frames)
    pitched = inside & ~clip.is_drum
    held_over = int(np.count_nonzero(pitched & (first < 0)))

    envelope = _velocity_envelope(
        np.clip(first[pitched], 0, n_frames),
        np.clip(stop[pitched], 0, n_frames),
        clip.pitch[pitched],
        clip.velocity[pitched],
        n_frames,
    )
    velocity = envelope.astype(np.float32)
    velocity /= 127.0
    sustain = (envelope > 0).astype(np.float32)
    del envelope
    onset = np.zeros((n_frames, 128), dtype=np.float32)
    starts_here = pitched & (first >= 0)
    onset[first[starts_here], clip.pitch[starts_here]] = 1.0

    chroma = sustain @ _CHROMA_FOLD  # (n_frames, 12) sounding notes per pitch class
    loudest = chroma.max(axis=1, keepdims=True)
    np.divide(chroma, loudest, out=chroma, where=loudest > 0)

    drums = np.zeros((n_frames, len(DRUM_CLASSES)), dtype=np.float32)
    hits = inside & clip.is_drum & (first >= 0)
    np.maximum.at(
        drums,
        (first[hits], _DRUM_CLASS_OF_KEY[clip.pitch[hits]]),
        clip.velocity[hits].astype(np.float32) / 127.0,
    )

    coverage = np.zeros(n_frames, dtype=np.float32)
    cover_first = max(0, math.floor(offset + _EPS))
    cover_stop = min(n_frames, math.ceil(clip.length_s * frames_per_s + offset - _EPS))
    coverage[cover_first:cover_stop] = 1.0

    notes = []
    clip_end_s = clip_start_s + clip.length_s
    if clip.n_notes == 0:
        notes.append("clip has no notes")
    if clip_start_s < start_s:
        notes.append(f"clip starts {start_s - clip_start_s:.3f} s before the window")
    elif clip_start_s >= start_s + window_s:
        notes.append(f"clip starts {clip_start_s - start_s - window_s:.3f} s after the window ends")
    elif clip_start_s > start_s:
        notes.append(f"clip starts {clip_start_s - start_s:.3f} s into the window")
    if clip_end_s < start_s + window_s:
        notes.append(f"clip ends {start_s + window_s - clip_end_s:.3f} s before the window ends")
    if clip.n_notes and not inside.any():
        notes.append("clip is empty in this window")
    if held_over:
        notes.append(f"{held_over} notes started before the window (their sustain is kept, no onset)")
    return MidiFeatures(onset, sustain, velocity, chroma, drums, coverage, tuple(notes))


class MidiSummary(TypedDict):
    """One window's MIDI features in plain numbers (JSON-ready); counts are of cells of the rolls."""

    frames: int
    coverage: float  # fraction of frames the clip covers
    pitched_onsets: int  # (frame, pitch) cells with an onset
    drum_hits: dict[str, int]  # per drum class, frames with a hit
    mean_onset_velocity: float | None  # MIDI units 0..127, over the onset cells (None: no onset)
    sounding_fraction: float  # fraction of frames where some pitched note sounds
    pitch_range: list[int] | None  # [lowest, highest] sounding MIDI key (None: nothing sounds)
    notes: list[str]


def summary(features: MidiFeatures) -> MidiSummary:
    """Plain numbers describing one window's MIDI features (for ``segue labels``)."""
    onset_cells = features.onset > 0
    sounding = np.flatnonzero(features.sustain.any(axis=0))
    n_onsets = int(np.count_nonzero(onset_cells))
    mean_velocity = round(float(features.velocity[onset_cells].mean()) * 127.0, 2) if n_onsets else None
    return {
        "frames": int(features.coverage.shape[0]),
        "coverage": float(features.coverage.mean()),
        "pitched_onsets": n_onsets,
        "drum_hits": {cls: int(np.count_nonzero(features.drums[:, k])) for k, cls in enumerate(DRUM_CLASSES)},
        "mean_onset_velocity": mean_velocity,
        "sounding_fraction": float(features.sustain.any(axis=1).mean()),
        "pitch_range": [int(sounding[0]), int(sounding[-1])] if sounding.size else None,
        "notes": list(features.notes),
    }
