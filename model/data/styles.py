"""The composer's styles: what each generator style ("artist") plays, in which genre.

A style fixes the musical vocabulary (modes, tempo range, meter, chord progressions, song forms) and the
band (parts with their General MIDI programs, registers and patterns); ``model.data.compose`` draws the
rest from the seed. Patterns are strings over one bar in sixteenth notes (16 steps in 4/4, 12 in 3/4 and
6/8). Drums: ``x`` accent, ``o`` normal, ``g`` ghost, ``.`` rest, one string per GM drum key. Bass: ``R`` the
chord's bass note, ``3``/``5`` its third/fifth, ``8`` the root an octave up, ``x`` any chord tone, ``w`` a scale
step towards the next chord, ``a`` a scale neighbour of the next chord's root. Comping: ``x`` the whole
voicing, a digit one voice of it (0 lowest; arpeggios). In both, ``.`` and ``-`` let the note ring on to
the next onset and ``_`` stops it (a rest).
Pattern tuples go from the quiet variant to the loud one; sections pick by their energy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

Groove = dict[int, str]

MODES: dict[str, tuple[int, ...]] = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "lydian": (0, 2, 4, 6, 7, 9, 11),
}

# how loud a section is (0..1); also decides which parts play in it (see compose._plays)
SECTION_ENERGY = {"intro": 0.55, "verse": 0.7, "chorus": 1.0, "bridge": 0.75, "solo": 0.9,
                  "breakdown": 0.45, "outro": 0.6}  # fmt: skip


@dataclass(frozen=True)
class Part:
    """One instrument of a style's band. ``role``: drums, bass, comp, arp, pad, lead or vocal."""

    role: str
    group: str
    programs: tuple[int, ...]  # GM programs (drum kits for drums), one drawn per piece
    register: tuple[int, int] = (48, 72)  # lowest and highest MIDI pitch
    velocity: int = 90  # base velocity at full energy
    level: tuple[int, int] = (90, 110)  # CC7 volume range, one drawn per piece
    voicing: str = "close"  # close, rootless, power, open
    strum_ms: float = 0.0  # spread of a chord's notes (guitar strums)
    always: bool = False  # a pad that plays in every section


@dataclass(frozen=True)
class Style:
    name: str
    genre: str
    modes: tuple[str, ...]
    tempo: tuple[float, float]  # quarter notes per minute
    meter: tuple[int, int]
    progressions: tuple[tuple[int, ...], ...]  # scale degrees, 0 = tonic
    forms: tuple[tuple[tuple[str, int], ...], ...]  # (section, bars); the last section closes the piece
    parts: tuple[Part, ...]
    grooves: tuple[Groove, ...] = ()
    bass: tuple[str, ...] = ("R...............",)
    comp: tuple[str, ...] = ("x---------------",)
    arp: str = "0.1.2.3.0.1.2.3."
    chord_sizes: tuple[int, ...] = (3,)  # 3 triad, 4 seventh, 5 ninth
    bars_per_chord: float = 1.0
    inversions: float = 0.0  # chance of a chord over its third or fifth
    swing: float = 0.0  # fraction of a swing unit the off-beats are late by
    swing_unit: float = 0.5  # quarter notes (0.5 eighths, 0.25 sixteenths)
    tempo_change: float = 1.0  # tempo factor from the last section on (1.0: one tempo)
    timing_ms: float = 8.0  # humanised micro-timing (standard deviation)
    lead_grid: int = 2  # lead melody grid in sixteenths
    lead_density: float = 0.6
    fillers: tuple[tuple[str, int], ...] = (("verse", 8), ("chorus", 8))  # repeated for long pieces
    vocals: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "vocals", any(p.role == "vocal" for p in self.parts))


POP_FORM = (("intro", 4), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("bridge", 4),
            ("chorus", 8), ("outro", 4))  # fmt: skip
DRUMS = Part("drums", "drums", (0, 8, 16), velocity=100)
VOCAL = Part("vocal", "vocals", (52, 53, 54), (55, 74), velocity=96, level=(100, 118))
VOCAL_LOW = Part("vocal", "vocals", (52, 53, 54), (48, 67), velocity=96, level=(100, 118))

_STYLES = (
    Style("synth_pop_a", "pop", ("major", "minor"), (100, 124), (4, 4),
          ((0, 4, 5, 3), (5, 3, 0, 4), (0, 5, 3, 4), (3, 4, 5, 0)), (POP_FORM,),
          (Part("drums", "drums", (24, 25, 0), velocity=104),
           Part("bass", "bass", (38, 39, 33), (28, 52), 96),
           Part("comp", "keys", (4, 5, 90), (52, 76), 80),
           Part("pad", "keys", (89, 90, 91), (48, 79), 70, (70, 95), "open"),
           Part("lead", "leads", (80, 81, 82), (62, 86), 92), VOCAL),
          ({36: "x.......x.......", 38: "....x.......x...", 42: "o.o.o.o.o.o.o.o."},
           {36: "x.....o.x.o.....", 39: "....x.......x...", 42: "o.o.o.o.o.o.o...", 46: "..............o."}),
          ("R.R.R.R.R.R.R.R.", "R.RRR.R.R.RRR.8."), ("x...............", "x-_x-_x-__x-_x-_"),
          chord_sizes=(3, 3, 4), timing_ms=4.0),
    Style("piano_ballad_b", "pop", ("major",), (66, 88), (4, 4),
          ((0, 4, 5, 3), (0, 5, 3, 4), (3, 0, 4, 5), (0, 2, 3, 4)), (POP_FORM,),
          (Part("drums", "drums", (0, 8, 40), velocity=84),
           Part("bass", "bass", (33, 32, 35), (28, 52), 88),
           Part("arp", "keys", (0, 1, 4), (48, 79), 78),
           Part("pad", "strings", (48, 49, 50), (48, 79), 66, (75, 100), "open"),
           Part("lead", "leads", (73, 68, 71), (62, 84), 80), VOCAL_LOW),
          ({36: "x.......x.......", 37: "....o.......o..."},
           {36: "x.......x.o.....", 38: "....x.......x...", 42: "o.o.o.o.o.o.o.o."}),
          ("R-------R-------", "R-------R...5..."), arp="0.1.2.3.2.1.2.1.", chord_sizes=(3, 4), inversions=0.3),
    Style("garage_rock_a", "rock", ("minor", "mixolydian", "major"), (118, 156), (4, 4),
          ((0, 6, 5, 6), (0, 6, 3, 0), (0, 3, 4, 3), (0, 5, 3, 4)),
          (POP_FORM, (("intro", 4), ("verse", 8), ("chorus", 8), ("solo", 8), ("verse", 8), ("chorus", 8),
                      ("outro", 4))),
          (DRUMS, Part("bass", "bass", (34, 33, 35), (28, 52), 100),
           Part("comp", "strings", (29, 30), (40, 67), 92, voicing="power", strum_ms=12.0),
           Part("pad", "keys", (16, 17, 18), (48, 76), 64, (65, 90), "open"),
           Part("lead", "leads", (29, 30, 27), (55, 84), 100), VOCAL),
          ({36: "x.....x.x.......", 38: "....x.......x...", 42: "x.x.x.x.x.x.x.x."},
           {36: "x.....x.x.x.....", 38: "....x.......x...", 51: "x.x.x.x.x.x.x.x."}),
          ("R.R.R.R.R.R.R.R.", "R.R.R.R.R.R.5.8."), ("x_x_x_x_x_x_x_x_", "x-----x-x-----x-"), timing_ms=9.0),
    Style("waltz_folk_a", "folk", ("major", "mixolydian"), (88, 126), (3, 4),
          ((0, 3, 4, 0), (0, 4, 5, 3), (0, 3, 0, 4), (0, 5, 3, 4)),
          ((("intro", 4), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("outro", 4)),),
          (Part("drums", "drums", (40, 8, 0), velocity=80),
           Part("bass", "bass", (32, 33), (28, 52), 90),
           Part("arp", "strings", (25, 24), (40, 71), 84),
           Part("comp", "keys", (21, 23, 20), (53, 76), 66, (70, 95)),
           Part("lead", "leads", (40, 73, 78), (62, 86), 88), VOCAL),
          ({36: "x...........", 37: "....o...o..."},
           {36: "x.......o...", 38: "....o...o...", 42: "o.o.o.o.o.o."}),
          ("R.......5...", "R...5...8..."), ("____x-__x-__",), arp="0.2.1.3.2.3.", inversions=0.2, timing_ms=10.0),
    Style("jig_folk_b", "folk", ("major", "dorian", "mixolydian"), (144, 176), (6, 8),
          ((0, 6, 0, 4), (0, 3, 0, 4), (0, 0, 6, 6), (0, 4, 3, 4)),
          ((("intro", 2), ("verse", 8), ("chorus", 8), ("verse", 8), ("chorus", 8), ("outro", 8)),),
          (Part("drums", "drums", (48, 0, 8), velocity=86),
           Part("bass", "bass", (32, 33), (28, 52), 86),
           Part("comp", "strings", (25, 24), (45, 69), 82, strum_ms=10.0),
           Part("pad", "keys", (21, 22), (50, 74), 62, (60, 85), "open"),
           Part("lead", "leads", (40, 73, 110, 75), (62, 88), 94)),
          ({36: "x.....x.....", 41: "..o.o...o.o."},
           {36: "x.....x.....", 38: "..o.o...o.o.", 42: "o.o.o.o.o.o."}),
          ("R.....5.....", "R...5.R...5."), ("x...x.x...x.",), tempo_change=1.12, lead_density=0.95,
          fillers=(("verse", 8), ("chorus", 8))),
    Style("swing_jazz_a", "jazz", ("major", "minor"), (120, 184), (4, 4),
          ((1, 4, 0, 0), (0, 5, 1, 4), (2, 5, 1, 4), (0, 3, 1, 4)),
          ((("intro", 4), ("verse", 8), ("chorus", 8), ("solo", 8), ("solo", 8), ("verse", 8), ("outro", 4)),),
          (Part("drums", "drums", (32, 40), velocity=82),
           Part("bass", "bass", (32, 33), (28, 52), 92),
           Part("comp", "keys", (0, 4, 1), (50, 74), 72, voicing="rootless"),
           Part("lead", "leads", (66, 65, 56, 11), (58, 84), 92)),
          ({51: "o...x.o.o...x.o.", 44: "....x.......x...", 36: "g...g...g...g..."},
           {51: "x...x.o.x...x.o.", 44: "....x.......x...", 36: "g...g...g...g...", 38: "......g.......g."}),
          ("R...x...w...a...",), ("x-____x-________", "__x-____x-______"),
          chord_sizes=(4, 4, 5), swing=0.33, timing_ms=12.0, lead_density=0.7, fillers=(("solo", 8),)),
    Style("jazz_waltz_b", "jazz", ("dorian", "minor"), (120, 168), (3, 4),
          ((0, 3, 0, 3), (0, 0, 3, 3), (1, 4, 0, 0), (0, 6, 5, 4)),
          ((("intro", 4), ("verse", 8), ("chorus", 8), ("solo", 8), ("verse", 8), ("outro", 4)),),
          (Part("drums", "drums", (32, 40), velocity=78),
           Part("bass", "bass", (32, 33), (28, 52), 90),
           Part("comp", "keys", (0, 4, 11), (50, 74), 70, voicing="rootless"),
           Part("lead", "leads", (73, 64, 11, 71), (60, 86), 88)),
          ({51: "o...o.o.o...", 44: "....x...x...", 36: "g..........."},
           {51: "x...o.o.o.o.", 44: "....x...x...", 36: "g.......g...", 38: "..........g."}),
          ("R.......x...", "R...w...a..."), ("____x-__x-__", "x-____x-____"),
          chord_sizes=(4, 5), swing=0.3, timing_ms=12.0, fillers=(("solo", 8),)),
    Style("funk_groove_a", "funk", ("dorian", "mixolydian", "minor"), (92, 112), (4, 4),
          ((0, 3), (0, 0, 3, 3), (0, 6, 3, 0), (0, 3, 4, 3)), (POP_FORM,),
          (DRUMS, Part("bass", "bass", (36, 37, 33), (28, 55), 100),
           Part("comp", "keys", (7, 4), (55, 77), 84),
           Part("arp", "strings", (28, 27), (52, 76), 76),
           Part("lead", "leads", (61, 56, 62), (58, 82), 98), VOCAL),
          ({36: "x.....x...x..x..", 38: "....x..g.g..x..g", 42: "oooooooooooooooo"},
           {36: "x.....x...x..x..", 38: "....x..g.g..x..g", 42: "oooooooooooooo..", 46: "..............o."}),
          ("R-_8-_R_R-5_8_R_", "R_8R-_R_R_58-_R8"), ("__x_x__x__x_x__x",), arp="0.2.1..20.2.1..2",
          chord_sizes=(4, 5), swing=0.12, swing_unit=0.25, timing_ms=6.0, lead_grid=1, lead_density=0.45),
    Style("ambient_drift_a", "ambient", ("major", "lydian", "dorian"), (60, 80), (4, 4),
          ((0, 3), (0, 5, 3, 0), (0, 4, 5, 3), (0, 1)),
          ((("intro", 4), ("verse", 8), ("chorus", 8), ("breakdown", 4), ("chorus", 8), ("outro", 4)),),
          (Part("bass", "bass", (35, 38, 32), (28, 50), 70, (70, 90)),
           Part("pad", "keys", (88, 89, 91, 94, 95), (48, 79), 72, (80, 105), "open", always=True),
           Part("arp", "keys", (8, 10, 11, 4), (60, 88), 62, (60, 85)),
           Part("pad", "strings", (48, 49, 44), (45, 76), 60, (60, 90), "open"),
           Part("lead", "leads", (73, 75, 79), (62, 86), 70)),
          bass=("R---------------",), arp="0...2...1...3...", chord_sizes=(4, 5), bars_per_chord=2.0,
          timing_ms=14.0, lead_grid=4, lead_density=0.35, fillers=(("verse", 8), ("breakdown", 4))),
    Style("deep_house_a", "electronic", ("minor", "dorian"), (118, 126), (4, 4),
          ((0, 5, 2, 6), (0, 3), (0, 6, 5, 6), (0, 5, 3, 6)),
          ((("intro", 8), ("verse", 8), ("chorus", 8), ("breakdown", 8), ("chorus", 8), ("outro", 8)),),
          (Part("drums", "drums", (25, 24), velocity=104),
           Part("bass", "bass", (38, 39, 87), (28, 52), 100),
           Part("comp", "keys", (16, 4, 81), (55, 77), 80),
           Part("pad", "strings", (50, 51, 89), (48, 79), 64, (65, 90), "open"),
           Part("lead", "leads", (80, 81, 84), (62, 86), 86)),
          ({36: "x...x...x...x...", 42: "o.o.o.o.o.o.o.o."},
           {36: "x...x...x...x...", 39: "....x.......x...", 46: "..o...o...o...o.", 42: "o...o...o...o..."}),
          ("__R-__R-__R-__R-", "__R-_R-_R-__R-8-"), ("__x___x___x___x_", "__x__x__x___x___"),
          chord_sizes=(4, 5), timing_ms=2.0, lead_grid=1, lead_density=0.4,
          fillers=(("verse", 8), ("chorus", 8), ("breakdown", 8))),
    Style("chamber_classical_a", "classical", ("major", "minor"), (72, 100), (4, 4),
          ((0, 3, 4, 0), (0, 5, 1, 4), (0, 1, 4, 0), (0, 3, 1, 4)),
          ((("intro", 2), ("verse", 8), ("chorus", 8), ("verse", 8), ("bridge", 8), ("outro", 4)),),
          (Part("bass", "bass", (43, 42), (28, 55), 80),
           Part("arp", "keys", (0, 6), (48, 76), 70),
           Part("pad", "strings", (48, 49), (48, 79), 62, (70, 95), "open", always=True),
           Part("lead", "leads", (40, 73, 68, 71), (62, 88), 84)),
          bass=("R.......5.......", "R...5...R...5..."), arp="0212021202120212", chord_sizes=(3, 3, 4),
          inversions=0.4, tempo_change=0.78, timing_ms=15.0, lead_density=0.65, fillers=(("verse", 8), ("bridge", 8))),
)

STYLES: dict[str, Style] = {s.name: s for s in _STYLES}
