"""Beat alignment of generated audio to the host grid, with and without the grid conditioner (issue 9).

For each tempo of ``--bpm`` and each seed, the model generates a take twice from the same seed: once
with the job's tempo map as the grid condition, once without any condition. librosa's beat tracker
finds the beats of each take and ``conditioning.beats.grid_beat_f`` scores them against the host's
beats (mir_eval's beat F-measure, ±70 ms). The model must have a ``grid`` conditioner; the numbers say
something only once it is trained (the training issue trains segue-mini's). Writes
``bench/results/grid_alignment.json`` and prints a table. Needs librosa (``pip install librosa``: it is
a bench tool, not a run-time dependency).

    OMP_NUM_THREADS=2 PYTHONPATH=. python bench/grid_alignment.py --model models/segue-mini [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from conditioning.beats import grid_beat_f  # noqa: E402
from conditioning.tempo import TempoMap  # noqa: E402


def tracked_beats(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    import librosa

    _, beats = librosa.beat.beat_track(y=audio.astype(np.float32), sr=sample_rate, units="time")
    return np.asarray(beats, dtype=np.float64)


def run(model_dir: Path, bpms: list[float], seeds: list[int], length_s: float, lowest_level: int | None) -> dict:
    from model import tasks
    from model.sampling.loading import load_sampling_model
    from model.sampling.params import SamplingParams
    from model.tasks.conditions import JobConditions
    from model.tasks.song import Labelling, Song

    model = load_sampling_model(model_dir)
    if not any(c.name == "grid" for configs in model.conditioner_configs().values() for c in configs):
        raise SystemExit(f"{model_dir}: the model has no grid conditioner; nothing to compare")
    rate = model.geometry.sample_rate
    length = int(length_s * rate)
    ids = Labelling(model_dir / "ids", strict=False)
    rows: list[dict] = []
    for bpm in bpms:
        tempo = TempoMap([(0.0, bpm)], (4, 4))
        for seed in seeds:
            params = SamplingParams(n_candidates=1, seeds=(seed,))
            for name, conditions in (("grid", JobConditions(tempo=tempo)), ("none", JobConditions())):
                t0 = time.perf_counter()
                take = tasks.generate(model, length, Song(), params, ids, lowest_level=lowest_level,
                                      conditions=conditions).audio[0, :, 0]  # fmt: skip
                score = grid_beat_f(tracked_beats(take, rate), tempo, 0.0, length / rate)
                rows.append({"bpm": bpm, "seed": seed, "condition": name, **score.to_dict(),
                             "seconds": round(time.perf_counter() - t0, 2)})  # fmt: skip
                print(rows[-1], flush=True)
    summary = {}
    for name in ("grid", "none"):
        values = [float(r["beat_f_measure"]) for r in rows if r["condition"] == name and r["beat_f_measure"] is not None]
        summary[name] = {"mean_beat_f": round(statistics.fmean(values), 4) if values else None, "takes": len(values)}
    return {"rows": rows, "summary": summary}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="a model directory with a grid conditioner")
    ap.add_argument("--bpm", type=float, nargs="+", default=[90.0, 120.0, 140.0])
    ap.add_argument("--seeds", type=int, default=4, help="takes per tempo and condition")
    ap.add_argument("--length", type=float, default=8.0, help="seconds per take")
    ap.add_argument("--lowest-level", type=int, default=None)
    ap.add_argument("--quick", action="store_true", help="one tempo, one seed, 4 s")
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/grid_alignment.json")
    args = ap.parse_args()
    try:
        import librosa  # noqa: F401
    except ImportError:
        print("this bench tracks beats with librosa: pip install librosa", file=sys.stderr)
        return 2
    bpms, seeds, length = ([120.0], [0], 4.0) if args.quick else (args.bpm, list(range(args.seeds)), args.length)
    report = run(args.model, bpms, seeds, length, args.lowest_level)
    report["model"] = str(args.model)
    report["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, {platform.python_version()}"
    report["command"] = " ".join(["python", *sys.argv])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print("| condition | takes | mean beat F (±70 ms) |\n|---|---|---|")
    for name, s in report["summary"].items():
        print(f"| {name} | {s['takes']} | {s['mean_beat_f']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
