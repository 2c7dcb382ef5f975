"""Sampling speed of segue's fast single-token step (``FastStep``, torch.compile) vs transformers' sampler.

CPU (default): the small config of ``bench/sampling.py``, the same number of new tokens for every row, the
same sampler loop (``sample_window``: seeded inverse-CDF draws) for segue's eager and compiled steps, and
transformers' ``JukeboxConditionalAutoregressive.sample`` in the same run. Batch 1 and the largest batch whose
KV cache + activations fit ``--memory-gib`` (capped by ``--max-batch`` to keep the run short); fp32, bf16 and
``auto`` (what ``model.sampling.precision.step_seconds`` + ``pick_precision`` choose for that batch: a short
measurement of eager steps). Process CPU time, the fastest of ``--repeat``.

CUDA (``--device cuda``): the official 1b_lyrics / 5b_lyrics / upsampler transformer shapes with random weights,
tokens/s at batch 1 against the memory-bandwidth bound (weight bytes per token / measured copy bandwidth).
Without a GPU the JSON says so; nothing is estimated in its place.

    OMP_NUM_THREADS=1 PYTHONPATH=. nice python bench/sampling_fast.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import types
from collections.abc import Callable
from pathlib import Path

import torch

import bench.sampling as port_bench
from bench.sampling import CONFIGS, theirs
from model.prior.autoregressive import ConditionalAutoregressive
from model.prior.config import AutoregressiveConfig, TransformerConfig
from model.prior.fast_step import FastStep
from model.sampling.ar_session import CachedSession
from model.sampling.logits import draw_uniforms, make_generators
from model.sampling.precision import pick_precision, step_seconds
from model.sampling.session import Draw, sample_window
from segue.runtime import keep_freed_memory

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def small_model(cfg: dict, dtype: torch.dtype, device: str = "cpu") -> ConditionalAutoregressive:
    tc = TransformerConfig(n_ctx=cfg["n_ctx"], width=cfg["width"], depth=cfg["depth"], heads=cfg["heads"],
                           attn_order=2, blocks=cfg["blocks"])  # fmt: skip
    return ConditionalAutoregressive(AutoregressiveConfig(tc, bins=cfg["bins"])).eval().to(device, dtype)


def largest_batch(model: ConditionalAutoregressive, dtype: torch.dtype, budget_bytes: int, chunk: int = 32) -> int:
    """Rows whose KV cache plus the activations of one refill chunk fit ``budget_bytes`` (weights excluded)."""
    tc, size = model.config.transformer, torch.finfo(dtype).bits // 8
    cache = model.new_cache(1, dtype, "meta").nbytes
    # one chunk: a handful of (chunk, width) / (chunk, mlp) activations, fp32 scores over the gathered keys
    acts = chunk * (8 * tc.width + 2 * tc.mlp_width) * size + 4 * tc.heads * chunk * (2 * tc.block_ctx + int(tc.blocks or 1))
    acts += chunk * model.bins * 4  # float32 logits of the chunk
    return max(1, budget_bytes // (cache + acts))


def run_segue(model: ConditionalAutoregressive, batch: int, tokens: int, fast: bool) -> tuple[float, float]:
    """(seconds for ``tokens`` new tokens per row, seconds of the first (compiling) window)."""
    dtype = model.x_emb.weight.dtype
    y = torch.randn(batch, 1, model.width, dtype=dtype)
    cache = model.new_cache(batch, dtype)
    step = FastStep(model, cache, compile=True) if fast else None
    u = draw_uniforms(make_generators(list(range(batch))), tokens)
    empty = torch.zeros(batch, 0, dtype=torch.long)

    def feed(t: torch.Tensor) -> torch.Tensor:  # as JukeboxPrior.logits_step routes single codes
        if step is not None and cache.length > 0 and t.shape[1] == 1:
            return step(t, None)
        return model.step(t, cache, y_cond=y)[:, -1]

    def window(n: int) -> float:
        t0 = time.process_time()
        sample_window(CachedSession(feed, cache), empty, u[:, :n], Draw(chunk_size=32))
        return time.process_time() - t0

    with torch.inference_mode():
        t0 = time.perf_counter()
        window(4)
        first = time.perf_counter() - t0
        seconds = min(window(tokens) for _ in range(ARGS.repeat))
    if step is not None and step.error:
        raise RuntimeError(f"compiled step fell back to eager: {step.error}")
    return seconds, first


def cpu_rows(cfg: dict, tokens: int, budget_gib: float, max_batch: int) -> tuple[list[dict], dict]:
    probe = {p: largest_batch(small_model(cfg, d, "meta"), d, int(budget_gib * 2**30)) for p, d in DTYPES.items()}
    batches = sorted({1, min(max_batch, probe["fp32"])})
    rows: list[dict] = []
    for batch in batches:
        port: dict[str, float] = {}
        for precision in ("fp32", "bf16", "auto"):
            dtype = DTYPES[auto_choice(cfg, batch) if precision == "auto" else precision]
            port_run = lambda b=batch, d=dtype: (_time_port(cfg, b, tokens, d), 0.0)  # noqa: E731
            eager_run = lambda b=batch, d=dtype: run_segue(small_model(cfg, d), b, tokens, False)  # noqa: E731
            fast_run = lambda b=batch, d=dtype: run_segue(small_model(cfg, d), b, tokens, True)  # noqa: E731
            impls: list[tuple[str, Callable[[], tuple[float, float]]]] = [("segue compiled", fast_run)]
            if precision != "auto":
                impls = [("transformers", port_run), ("segue eager", eager_run), *impls]
            for name, fn in impls:
                torch.manual_seed(0)
                row: dict = {"impl": name, "batch": batch, "precision": precision, "dtype": str(dtype)[6:]}
                try:
                    seconds, first = fn()
                    row |= {"seconds": round(seconds, 3), "tokens_per_s": round(batch * tokens / seconds, 1)}
                    if name == "segue compiled":
                        row["first_window_wall_s"] = round(first, 1)  # includes compiling unless inductor's cache hit
                except Exception as exc:  # a failing implementation is reported, not hidden
                    row["error"] = f"{type(exc).__name__}: {exc}"[:200]
                if name == "transformers" and "tokens_per_s" in row:
                    port[precision] = row["tokens_per_s"]
                if name != "transformers" and port and "tokens_per_s" in row:
                    best = max(port.values()) if precision == "auto" else port.get(precision)
                    row["x_port"] = round(row["tokens_per_s"] / best, 2) if best else None
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows, {"budget_gib": budget_gib, "largest_batch": probe, "measured_batches": batches}


def auto_choice(cfg: dict, batch: int) -> str:
    """What ``precision="auto"`` picks for this config and batch (the measurement ``place_prior`` runs)."""
    with torch.inference_mode():
        seconds = {p: step_seconds(small_model(cfg, d), batch) for p, d in DTYPES.items()}
    return pick_precision(seconds["fp32"], seconds["bf16"])


def _time_port(cfg: dict, batch: int, tokens: int, dtype: torch.dtype) -> float:
    """transformers' sampler, timed like ours (process CPU time; ``theirs`` reads its clock off ``time``)."""
    port_bench.time = types.SimpleNamespace(perf_counter=time.process_time)  # type: ignore[assignment]
    try:
        return min(theirs(cfg, batch, tokens, dtype) for _ in range(ARGS.repeat))
    finally:
        port_bench.time = time


def gpu_rows(names: list[str], tokens: int) -> dict:
    """Official shapes on CUDA: tokens/s at batch 1 vs weight bytes per token / measured copy bandwidth."""
    from model.prior import presets
    from model.prior.prior import autoregressive_config

    shapes: dict[str, dict[str, float]] = {}
    for name in names:
        ar = autoregressive_config(presets.official(name))
        with torch.device("meta"):
            n_params = sum(p.numel() for n, p in ConditionalAutoregressive(ar).named_parameters() if "pos_emb" not in n)
        shapes[name] = {"params_read_per_token": n_params, "weight_bytes_per_token_bf16": 2 * n_params}
    if not torch.cuda.is_available():
        return {"status": "not measured: no GPU available in this session", "shapes": shapes}
    buf = torch.empty(2**28, dtype=torch.uint8, device="cuda")
    out = torch.empty_like(buf)
    out.copy_(buf)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(20):
        out.copy_(buf)
    torch.cuda.synchronize()
    bandwidth = 2 * 20 * buf.numel() / (time.perf_counter() - t0)  # read + write bytes/s
    del buf, out
    for name in names:
        with torch.device("cuda"):
            model = ConditionalAutoregressive(autoregressive_config(presets.official(name))).eval().to(torch.bfloat16)
        cache = model.new_cache(1, torch.bfloat16, "cuda")
        step = FastStep(model, cache, compile=True)
        tc = model.config.transformer
        enc = torch.randn(1, tc.encoder_dims, tc.width, device="cuda", dtype=torch.bfloat16) if tc.encoder_dims else None
        y = torch.randn(1, 1, tc.width, device="cuda", dtype=torch.bfloat16)
        with torch.inference_mode():
            tok = model.step(torch.zeros(1, 0, dtype=torch.long, device="cuda"), cache, y_cond=y, encoder_kv=enc)
            tok = tok[:, -1]  # (1, bins)
            for _ in range(8):  # compile + warm-up
                tok = step(tok.argmax(-1, keepdim=True), None)
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            for _ in range(tokens):
                tok = step(tok.argmax(-1, keepdim=True), None)
            torch.cuda.synchronize()
        rate = tokens / (time.perf_counter() - t0)
        bound = bandwidth / shapes[name]["weight_bytes_per_token_bf16"]
        shapes[name] |= {"tokens_per_s": round(rate, 1), "bandwidth_bound_tokens_per_s": round(bound, 1)}
        del model, cache
    return {"device": torch.cuda.get_device_name(), "copy_bandwidth_gb_s": round(bandwidth / 1e9, 1), "shapes": shapes}


def main() -> None:
    global ARGS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny config, few tokens (a smoke run)")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--memory-gib", type=float, default=2.0, help="KV cache + activation budget for the largest batch")
    parser.add_argument("--max-batch", type=int, default=64, help="cap on the measured largest batch (run time)")
    parser.add_argument("--default-malloc", action="store_true", help="leave glibc's malloc thresholds as they are")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--official", default="prior_1b_lyrics,prior_5b_lyrics,upsampler_level_0")
    parser.add_argument("--out", type=Path, default=Path("bench/results/sampling_fast.json"))
    ARGS = args = parser.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    malloc = "glibc defaults" if args.default_malloc else f"freed memory kept: {keep_freed_memory()}"
    cfg = CONFIGS["quick" if args.quick else "small"]
    tokens = 16 if args.quick else args.tokens
    result: dict = {"machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                               f"threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} at start",
                     "malloc": malloc}  # fmt: skip
    if args.device == "cpu":
        rows, probe = cpu_rows(cfg, tokens, args.memory_gib, args.max_batch)
        result |= {"config": {**cfg, "attn_order": 2}, "new_tokens_per_sequence": tokens, "batch_probe": probe,
                   "rows": rows}  # fmt: skip
    result["gpu_official_shapes"] = gpu_rows(args.official.split(","), 64 if args.quick else 256)
    result["load_average_at_end"] = round(os.getloadavg()[0], 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


ARGS = argparse.Namespace(repeat=3)

if __name__ == "__main__":
    main()
