"""Step strategies and precisions through the engine's level adapter: tokens/s, eager vs compiled, fp32 vs bf16.

A small upsampler-shaped ``JukeboxPrior`` with random weights (speed does not depend on them): n_ctx 1024,
width 64, depth 6, 2 heads, 16 blocks, 2048 codes, a 64-wide 2-deep upsampler conditioner. For each batch:
what ``precision="auto"`` picks there (the measurement ``place_prior`` runs at load), then, for every
(precision, step), new tokens per second of one window of ``--tokens`` codes from an empty window through
``JukeboxLevel`` and ``sample_window`` (the engine's path). Process CPU time on one thread, fastest of
``--repeat`` windows after a first one (which compiles, for the compiled step: its wall time is reported).
Writes ``bench/results/sampling_steps.json``:

    PYTHONPATH=. nice python bench/sampling_steps.py [--tokens 256] [--repeat 3] [--batches 1,16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from model.prior import presets
from model.prior.prior import JukeboxPrior
from model.sampling.jukebox import JukeboxLevel
from model.sampling.logits import draw_uniforms, make_generators
from model.sampling.precision import measure_precision
from model.sampling.session import Draw, sample_window

CONFIG = dict(
    n_ctx=1024, n_bins=2048, transformer=dict(width=64, depth=6, heads=2, blocks=16), upsampler=dict(width=64, depth=2)
)


def make_prior() -> JukeboxPrior:
    torch.manual_seed(0)
    return JukeboxPrior(presets.with_changes(presets.tiny_upsampler(0), **CONFIG)).eval()


def window_rate(level: JukeboxLevel, batch: int, tokens: int, repeat: int) -> tuple[float, float]:
    """(new tokens/s of the fastest timed window, wall seconds of the first window)."""
    c = level.prior.config
    y = torch.tensor([[44100 * 10, 0, c.n_ctx * c.hop_length, 1, 1, -1]]).expand(batch, -1)
    upper = torch.randint(0, c.n_bins, (batch, c.n_ctx // 4))
    u = draw_uniforms(make_generators(list(range(batch))), tokens)
    empty = torch.zeros(batch, 0, dtype=torch.long)
    with torch.inference_mode():
        t0 = time.perf_counter()
        sample_window(level.open_window(y, upper, batch), empty, u[:, :8], Draw(chunk_size=32))
        first = time.perf_counter() - t0
        best = float("inf")
        for _ in range(repeat):
            t0 = time.process_time()
            sample_window(level.open_window(y, upper, batch), empty, u, Draw(chunk_size=32))
            best = min(best, time.process_time() - t0)
    return batch * tokens / best, first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--out", type=Path, default=Path("bench/results/sampling_steps.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("TQDM_DISABLE", "1")
    result: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} at start",
        "config": CONFIG, "new_tokens_per_sequence": args.tokens, "rows": [],
    }  # fmt: skip
    for batch in (int(b) for b in args.batches.split(",")):
        auto = measure_precision(make_prior(), batch)
        for precision in ("fp32", "bf16"):
            for step in ("eager", "compiled"):
                torch._dynamo.reset()
                level = JukeboxLevel(make_prior(), step=step)
                level.use_precision(precision)
                rate, first = window_rate(level, batch, args.tokens, args.repeat)
                row = {"batch": batch, "precision": precision, "step": step, "tokens_per_s": round(rate, 1),
                       "first_window_wall_s": round(first, 2), "auto_picks": auto}  # fmt: skip
                if level._fast is not None and level._fast.error:
                    row["compile_error"] = level._fast.error
                result["rows"].append(row)
                print(json.dumps(row), flush=True)
    result["load_average_at_end"] = round(os.getloadavg()[0], 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
