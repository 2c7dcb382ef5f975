"""``segue labels``: how a model reads a song's labels and a job's conditions, as JSON, from its configs alone."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conditioning.ids import IdTable
    from model.prior.prior_config import PriorConfig
    from model.sampling.windows import Window
    from model.tasks.conditions import JobConditions

NAME = "labels"
HELP = "show how a model reads a song's labels and conditions: ids, lyric windows, label vectors, MIDI and stem features"
DESCRIPTION = """\
Print, as JSON, what one prior level of a model is told about a song and a job's conditions, so you can
see why a label or a condition does nothing: the artist and genre ids (unknown names with the closest
listed ones), the cleaned lyrics, the conditioners the model has and which given conditions none reads,
and per sampling window its label vector, the lyrics it sees as text, and a summary of the MIDI, stem
and beat-grid features its conditioners get (notes, drum hits, loudness, onsets, beats).

  segue labels --model models/mine --level 2 --artist "alan jackson" --genre country \\
      --lyrics-file song.txt --total-length 180 --offset 30 --length 20 \\
      --midi chorus.mid --midi-bar 17 --bpm 120 --stem drums=drums.wav@30 --plot features.png

Only configs are read (no prior weights), so it is quick on the official models. The windows are those a
'generate' from --offset lays at the level (--hop-fraction, default 0.125 at the top, 0.5 below) over
--length seconds (default: to the song's end); --region-start is the project time of the audio at
--offset. --plot writes the feature rolls over that audio as a PNG (panels listed in the JSON's plot).
"""
MAX_PLOT_COLUMNS = 2000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from segue.commands._conditions import add_condition_arguments
    from segue.commands._model import add_song_arguments

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    a = parser.add_argument
    a("--model", type=Path, required=True, metavar="DIR", help="segue model directory")
    a("--level", type=int, metavar="L", help="the prior level to describe (default: the top level)")
    add_song_arguments(parser, start="the described audio starts", end="required")
    a("--length", type=float, metavar="S", help="seconds of audio to describe from --offset (default: to the song's end)")
    a("--hop-fraction", type=float, metavar="H", help="new share of each window (default 0.125 at the top level, 0.5 below)")
    a("--plot", type=Path, metavar="OUT.png", help="also draw the MIDI, drum, stem and grid features as a PNG")
    add_condition_arguments(parser, region="the audio at --offset", guidance=False)


def run(args: argparse.Namespace) -> int:
    report = describe(args)
    print(json.dumps(report, indent=1))
    return 0


def describe(args: argparse.Namespace) -> dict[str, Any]:
    """The report ``segue labels`` prints (and, with ``--plot``, the PNG written)."""
    from common.errors import InputError
    from model.checkpoint.priors import available_levels, read_prior_config, read_vqvae_config
    from model.sampling.lengths import label_samples
    from model.sampling.params import DEFAULT_HOP_FRACTION_LOWER, DEFAULT_HOP_FRACTION_TOP
    from model.sampling.setup import geometry_for
    from model.sampling.windows import plan_windows
    from model.tasks.capabilities import feature_conditioners
    from segue.commands._conditions import check_condition_flags, conditioner_configs, conditions_of
    from segue.commands._model import check_output_file, lyrics_of

    lyrics = lyrics_of(args)
    if args.total_length is None:
        raise InputError("segue labels needs --total-length S (the song's length label, in seconds)")
    for flag, value in (("--total-length", args.total_length), ("--offset", args.offset), ("--length", args.length)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise InputError(f"{flag} {value} s is not a number of seconds of 0 or more")
    if args.hop_fraction is not None and not 0 < args.hop_fraction <= 1:
        raise InputError(f"--hop-fraction {args.hop_fraction} is out of range: use a value above 0 and at most 1")
    if args.plot is not None:
        check_output_file("--plot", args.plot)
    check_condition_flags(args)

    vq = read_vqvae_config(args.model)
    n_levels = len(vq.hop_lengths)
    levels = available_levels(args.model)
    level = n_levels - 1 if args.level is None else args.level
    if level not in levels:
        have = ", ".join(map(str, levels)) or "none"
        raise InputError(f"--level {level}: {args.model} has no prior for level {level} (its priors: levels {have})")
    priors = {lv: read_prior_config(args.model, lv) for lv in levels}
    config = priors[level]
    geo = geometry_for(tuple(vq.hop_lengths), vq.sample_rate, priors)
    rate, hop, n_ctx = vq.sample_rate, geo.hops[level], config.n_ctx
    total = label_samples(args.total_length, geo, "--total-length")
    offset = label_samples(args.offset, geo, "--offset")
    if not 0 <= offset < total:
        raise InputError(f"--offset {args.offset} s must lie inside the song (--total-length {args.total_length} s)")
    length = total - offset if args.length is None else label_samples(args.length, geo, "--length")
    tokens = length // hop
    if tokens < 1:
        raise InputError(f"--length {length / rate:g} s is shorter than one level-{level} token ({hop / rate:.4f} s)")
    hop_fraction = args.hop_fraction or (DEFAULT_HOP_FRACTION_TOP if level == n_levels - 1 else DEFAULT_HOP_FRACTION_LOWER)
    windows = plan_windows(tokens, n_ctx, hop_fraction)

    names = feature_conditioners(args.model)
    configs = conditioner_configs(args.model)
    conditions = conditions_of(args, take_start_s=float(args.region_start))
    labelled = _labels(args, config, lyrics, total, offset)

    report: dict[str, Any] = {
        "model": str(args.model),
        "level": level,
        "levels": list(levels),
        "sample_rate": rate,
        "hop": hop,
        "n_ctx": n_ctx,
        "window_seconds": n_ctx * hop / rate,
        "hop_fraction": hop_fraction,
        "song": {"total_length_s": total / rate, "offset_s": offset / rate, "length_s": tokens * hop / rate,
                 "project_start_s": float(args.region_start)},  # fmt: skip
        **labelled["song"],
        "conditioners": {str(lv): [{"name": c.name, "kind": c.kind, "n_features": c.n_features} for c in cs]
                         for lv, cs in configs.items()},  # fmt: skip
        "conditions": _conditions_read(conditions, names, level),
        "windows": [],
    }
    for i, window in enumerate(windows):
        report["windows"].append(_window(i, window, args, conditions, labelled.get("labels"), rate, hop, offset))
    if args.plot is not None:
        report["plot"] = _plot(args, conditions, windows, rate, hop, tokens, float(args.region_start))
    return report


# ---- labels -----------------------------------------------------------------------------------------
def _labels(args: argparse.Namespace, config: PriorConfig, lyrics: str, total: int, offset: int) -> dict[str, Any]:
    """The artist and genre lookups, the cleaned lyrics and the level's ``SongLabels`` (None: unlabelled)."""
    from conditioning import labels as labels_module
    from conditioning.ids import load_id_table
    from conditioning.labels import Metadata, song_labels
    from conditioning.lyrics import vocab_for
    from model.sampling.setup import label_set_for

    if not config.labels.enabled:
        return {"song": {"labels": None, "artist": None, "genre": None, "lyrics": None, "warnings": []}}
    ls = label_set_for(config)
    ids_dir = args.ids or args.model / "ids"
    tables = {kind: load_id_table(Path(ids_dir) / f"{ls.version}_{kind}_ids.txt", kind, ls.version)  # type: ignore[arg-type]
              for kind in ("artist", "genre")}  # fmt: skip
    song = song_labels(Metadata(args.artist, args.genre, lyrics, total_length=total, offset=offset), ls,
                       tables["artist"], tables["genre"], strict=False)  # fmt: skip
    blend = getattr(labels_module, "parse_blend", None)  # weighted names, where segue reads them
    vocab = vocab_for(ls.version)
    out = {
        "labels": {"version": ls.version, "width": ls.width, "genre_slots": ls.max_bow_genre_size,
                   "lyric_tokens": ls.n_tokens, "timed": ls.min_duration is not None,
                   "layout": "[total_length, offset, sample_length, artist_id, genre_id x genre_slots, lyric_token x lyric_tokens]"},  # fmt: skip
        "artist": _lookup(tables["artist"], args.artist, blend),
        "genre": _lookup(tables["genre"], args.genre, blend),
        "lyrics": None if ls.n_tokens == 0 else {"clean": song.lyrics, "tokens": len(song.full_tokens),
                                                 "vocabulary": vocab.version},  # fmt: skip
        "warnings": list(song.warnings),
    }
    return {"song": out, "labels": song}


def _lookup(table: IdTable, text: str, blend: Any) -> dict[str, Any]:
    from conditioning.ids import UNKNOWN, UNKNOWN_ID

    items = blend(text, table.kind) if blend is not None else ((text, 1.0),)
    names = []
    for name, weight in items:
        keys = table.keys_for(name)
        found = []
        for key in keys:
            idx = table.id_of_key(key)
            if idx is None and key == UNKNOWN:
                idx = UNKNOWN_ID
            found.append({"key": key, "id": idx, "known": idx is not None,
                          "closest": [] if idx is not None else table.close_matches(key)})  # fmt: skip
        names.append({"name": name, "weight": weight, "keys": found,
                      "ids": [f["id"] if f["known"] else UNKNOWN_ID for f in found]})  # fmt: skip
    return {"given": text, "list": table.source, "names": names}


# ---- conditions -------------------------------------------------------------------------------------
def _conditions_read(conditions: JobConditions, names: dict[int, tuple[str, ...]], level: int) -> dict[str, Any]:
    given = list(conditions.names)
    read_by = {name: [lv for lv, ns in names.items() if name in ns] for name in given}
    unread = [n for n in given if not read_by[n]]
    notes = []
    for name in unread:
        have = ", ".join(sorted({n for ns in names.values() for n in ns})) or "none"
        if name == "grid":
            notes.append(f"no conditioner reads the beat grid (--bpm/--tempo-map): it is ignored (conditioners: {have})")
        else:
            notes.append(f"no conditioner reads {name}: 'segue sample' refuses it (conditioners: {have})")
    for name in given:
        if read_by[name] and level not in read_by[name]:
            notes.append(f"{name} is read at level(s) {', '.join(map(str, read_by[name]))}, not at level {level}")
    return {"given": given, "read_by_levels": read_by, "read_at_this_level": [n for n in given if level in read_by[n]],
            "unread": unread, "notes": notes}  # fmt: skip


def _window(
    index: int, window: Window, args: argparse.Namespace, conditions: JobConditions, song: Any, rate: int, hop: int,
    offset: int,
) -> dict[str, Any]:  # fmt: skip
    import numpy as np

    from conditioning import midi, stems
    from conditioning.grid import grid_features
    from conditioning.lyrics import detokenize, vocab_for

    start_s = float(args.region_start) + window.start * hop / rate  # project time of the window's first token
    n = window.length
    out: dict[str, Any] = {
        "index": index, "start_token": window.start, "tokens": n,
        "song_start_s": (offset + window.start * hop) / rate,
        "project_start_s": start_s, "project_end_s": start_s + n * hop / rate,
    }  # fmt: skip
    if song is not None:
        labels = song.for_window(window.start)
        out["y"] = [int(v) for v in labels.y.tolist()]
        if getattr(labels, "variants", None) is not None:
            out["y_blend"] = {"rows": labels.variants.tolist(), "weights": [round(float(w), 6) for w in labels.weights]}
        if song.label_set.n_tokens:
            tokens = out["y"][4 + song.label_set.max_bow_genre_size :]
            shown = [i for i in labels.lyric_indices if i >= 0]
            out["lyrics"] = {"text": detokenize(tokens, vocab_for(song.label_set.version)),
                             "characters": [shown[0], shown[-1] + 1] if shown else None}  # fmt: skip
    if conditions.midi is not None:
        m = midi.midi_features(conditions.midi, sample_rate=rate, hop=hop, start_s=start_s, n_frames=n,
                               clip_start_s=conditions.midi_start_s)  # fmt: skip
        out["midi"] = midi.summary(m)
    if conditions.stems:
        out["stems"] = {}
        for stem in conditions.stems:
            analysis = _analysis(args, conditions, stem.name, rate, hop)
            s = stems.stem_window(analysis, start_s=start_s, n_frames=n, stem_start_s=stem.start_s)
            out["stems"][stem.name] = stems.summary(s)
    if conditions.tempo is not None:
        g = grid_features(conditions.tempo, sample_rate=rate, hop=hop, start_s=start_s, n_frames=n)
        bpm = conditions.tempo.bpm_at(np.array([start_s, start_s + n * hop / rate]))
        out["grid"] = {"beats": int(g.beat.sum()), "bar_lines": int(g.downbeat.sum()),
                       "bpm": [float(b) for b in bpm], "time_signature": list(conditions.tempo.time_signature),
                       "notes": list(g.notes)}  # fmt: skip
    return out


def _analysis(args: argparse.Namespace, conditions: JobConditions, name: str, rate: int, hop: int) -> Any:
    """The stem analysed at ``hop``; its problem (NaN samples, an odd rate...) names the file."""
    from common.errors import InputError

    try:
        return conditions.analysis(name, rate, hop)
    except InputError as exc:
        path = next(f.path for f in args.stem if f.name == name)
        raise InputError(f"--stem {name}={path}: {exc}") from None


# ---- the picture ------------------------------------------------------------------------------------
def _plot(
    args: argparse.Namespace, conditions: JobConditions, windows: list[Window], rate: int, hop: int, tokens: int, start_s: float
) -> dict[str, Any]:
    """The features over the described audio at one column per ``plot_hop`` samples (at most
    ``MAX_PLOT_COLUMNS`` columns), window starts on top; returns where each panel lies."""
    import numpy as np

    from conditioning import midi, stems
    from conditioning.grid import grid_features
    from segue.commands._plot import Panel, curve, heat, marks, stack, with_coverage, write_png

    path: Path = args.plot
    per_column = max(1, math.ceil(tokens / MAX_PLOT_COLUMNS))
    plot_hop = hop * per_column
    width = max(1, tokens // per_column)
    panels = [Panel("window starts", marks(np.array([w.start // per_column for w in windows]), width, (230, 230, 230), 8))]
    if conditions.midi is not None:
        m = midi.midi_features(conditions.midi, sample_rate=rate, hop=plot_hop, start_s=start_s, n_frames=width,
                               clip_start_s=conditions.midi_start_s)  # fmt: skip
        sounding = np.flatnonzero(m.sustain.any(axis=0) | m.onset.any(axis=0))
        lo, hi = (int(sounding[0]), int(sounding[-1])) if sounding.size else (48, 72)
        lo, hi = max(0, lo - 2), min(127, hi + 2)
        roll = np.maximum(m.velocity[:, lo : hi + 1].T * 0.7, m.onset[:, lo : hi + 1].T)  # (pitches, columns)
        row = max(1, min(4, 256 // (hi - lo + 1)))
        panels.append(Panel(f"midi piano roll: keys {lo}..{hi}, low keys at the bottom (velocity; onsets bright)",
                            with_coverage(heat(roll, (120, 200, 255), row), m.coverage)))  # fmt: skip
        panels.append(Panel(f"midi drum hits: {', '.join(reversed(midi.DRUM_CLASSES))} from the top",
                            with_coverage(heat(m.drums.T, (255, 170, 60), 6), m.coverage)))  # fmt: skip
    for stem in conditions.stems:
        s = stems.stem_window(_analysis(args, conditions, stem.name, rate, plot_hop), start_s=start_s, n_frames=width,
                              stem_start_s=stem.start_s)  # fmt: skip
        panels.append(Panel(f"stem {stem.name}: loudness (-80..0 dB)", with_coverage(curve(s.loudness, (120, 230, 140), 40), s.coverage)))
        panels.append(Panel(f"stem {stem.name}: onset strength (0..1)", with_coverage(curve(s.onset, (230, 120, 200), 24), s.coverage)))
    if conditions.tempo is not None:
        g = grid_features(conditions.tempo, sample_rate=rate, hop=plot_hop, start_s=start_s, n_frames=width)
        beats = marks(np.flatnonzero(g.beat), width, (150, 150, 150), 10)
        beats[:, np.flatnonzero(g.downbeat)] = (255, 255, 255)
        panels.append(Panel("grid: beats (grey), bar lines (white)", beats))
    picture, rows = stack(panels)
    try:
        write_png(path, picture)
    except OSError as exc:
        from common.errors import InputError

        raise InputError(f"--plot {path}: cannot be written ({exc.strerror})") from exc
    print(f"segue labels: wrote {path} ({picture.shape[1]} x {picture.shape[0]} px)", file=sys.stderr)
    return {"file": str(path), "width": int(picture.shape[1]), "height": int(picture.shape[0]),
            "seconds_per_column": plot_hop / rate, "panels": rows}  # fmt: skip
