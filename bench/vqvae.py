"""VQ-VAE benchmarks (official config, random weights, CPU).

    python -m bench.vqvae                 # 30 s: encode/decode speed + peak RSS, ours vs transformers, fp32/bf16
    python -m bench.vqvae --memory-10min  # peak RSS of encode + level-0 decode of 10 min with default chunking

Each variant runs in its own subprocess so that its peak RSS (resource.getrusage) is its own.
Results: bench/results/vqvae.json, bench/results/vqvae_memory.json, and the "VQ-VAE" section of
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SAMPLE_RATE = 44100
VARIANTS = ("ours-fp32", "ours-bf16-weights", "ours-bf16-autocast", "hf-fp32", "hf-bf16-autocast")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def _audio(seconds: float) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    samples = int(seconds * SAMPLE_RATE)
    return (torch.rand(1, samples, 1, generator=gen) * 2 - 1) * 0.5  # (1, T, 1)


def _build(variant: str) -> tuple[Any, Any, Any]:
    """(encode(audio) -> codes list, decode(level-0 codes) -> audio, precision context) for a variant."""
    torch.manual_seed(0)
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16) if variant.endswith("bf16-autocast") else contextlib.nullcontext()
    )
    if variant.startswith("ours"):
        from model.vqvae import VQVAE, official_vqvae_config

        ours = VQVAE(official_vqvae_config()).eval()
        if variant == "ours-bf16-weights":
            ours = ours.to(torch.bfloat16)
        return (lambda a: ours.encode(a)), (lambda c: ours.decode(c, 0)), autocast
    from transformers import JukeboxVQVAEConfig
    from transformers.models.deprecated.jukebox.modeling_jukebox import JukeboxVQVAE

    # JukeboxVQVAEConfig's defaults are the released VQ-VAE (spec 8); set the ones that matter explicitly
    hf = JukeboxVQVAE(
        JukeboxVQVAEConfig(
            levels=3, embed_dim=64, nb_discrete_codes=2048, res_conv_width=32, res_conv_depth=4,
            res_dilation_growth_rate=3, multipliers=[2, 1, 1], res_downs_t=[3, 2, 2], res_strides_t=[2, 2, 2],
        )
    ).eval()
    return (lambda a: hf.encode(a)), (lambda c: hf.decode([c], start_level=0)), autocast


def _child_speed(variant: str, seconds: float, repeats: int, threads: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    encode, decode, precision = _build(variant)
    audio = _audio(seconds)
    timings: dict[str, list[float]] = {"encode_s": [], "decode_s": []}
    with torch.inference_mode(), precision:
        decode(encode(_audio(1.0))[0])  # warm-up: allocator and oneDNN kernel selection
        for _ in range(repeats):
            start = time.perf_counter()
            codes = encode(audio)
            timings["encode_s"].append(time.perf_counter() - start)
            start = time.perf_counter()
            out = decode(codes[0])
            timings["decode_s"].append(time.perf_counter() - start)
    best = {k: min(v) for k, v in timings.items()}
    return {
        "variant": variant,
        "seconds_of_audio": seconds,
        "threads": threads,
        "encode_s": round(best["encode_s"], 3),
        "decode_s": round(best["decode_s"], 3),
        "encode_rtf": round(best["encode_s"] / seconds, 4),
        "decode_rtf": round(best["decode_s"] / seconds, 4),
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "codes_shapes": [list(c.shape) for c in codes],
        "decoded_shape": list(out.shape),
    }


def _child_memory(seconds: float, threads: int) -> dict[str, Any]:
    from model.vqvae import VQVAE, official_vqvae_config
    from model.vqvae.chunked import DEFAULT_DECODE_CHUNK_SAMPLES, DEFAULT_ENCODE_CHUNK_SAMPLES

    torch.set_num_threads(threads)
    vq = VQVAE(official_vqvae_config()).eval()
    audio = _audio(seconds)
    baseline = _peak_rss_mib()
    start = time.perf_counter()
    with torch.inference_mode():
        codes = vq.encode(audio)
        encode_s = time.perf_counter() - start
        decoded = vq.decode(codes[0], 0)
    total_s = time.perf_counter() - start
    return {
        "seconds_of_audio": seconds,
        "threads": threads,
        "encode_chunk_samples": DEFAULT_ENCODE_CHUNK_SAMPLES,
        "decode_chunk_samples": DEFAULT_DECODE_CHUNK_SAMPLES,
        "peak_rss_mib": round(_peak_rss_mib(), 1),
        "rss_before_encode_mib": round(baseline, 1),
        "encode_s": round(encode_s, 1),
        "encode_plus_decode_s": round(total_s, 1),
        "codes_shapes": [list(c.shape) for c in codes],
        "decoded_shape": list(decoded.shape),
        "target_peak_mib": 3 * 1024,
    }


def _run_child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.vqvae", *args], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Fastest time of each stage over the repeats, largest peak RSS."""
    best = dict(runs[0])
    for key in ("encode_s", "decode_s", "encode_rtf", "decode_rtf"):
        best[key] = min(r[key] for r in runs)
    best["peak_rss_mib"] = max(r["peak_rss_mib"] for r in runs)
    best["repeats"] = len(runs)
    return best


def _machine() -> dict[str, Any]:
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
        "torch": torch.__version__,
        "python": sys.version.split()[0],
        "load_average_at_end": os.getloadavg()[0],
    }


def _markdown(results: list[dict[str, Any]], memory: dict[str, Any] | None, machine: dict[str, Any]) -> str:
    lines = [
        "## VQ-VAE",
        "",
        "Official VQ-VAE config (random weights), CPU, `python -m bench.vqvae` "
        f"({results[0]['seconds_of_audio']:.0f} s of audio, {results[0]['threads']} thread(s), best of the repeats; "
        "encode = all three levels, decode = level 0). RTF = compute time / audio duration (lower is faster).",
        f"Machine: {machine.get('machine')}, torch {machine.get('torch')}, load average "
        f"{machine.get('load_average_at_end', 0):.1f} at the end: other jobs shared the cores, so absolute "
        "times are inflated; variants ran round-robin in separate processes, so the comparison is fair.",
        "",
        "| variant | encode s | encode RTF | decode s | decode RTF | peak RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['variant']} | {r['encode_s']} | {r['encode_rtf']} | {r['decode_s']} | {r['decode_rtf']} | {r['peak_rss_mib']} |"
        for r in results
    ]
    if memory is not None:
        lines += [
            "",
            f"10 minutes of 44.1 kHz audio, encode (all levels) + level-0 decode with default chunking "
            f"(`python -m bench.vqvae --memory-10min`): peak RSS {memory['peak_rss_mib']} MiB "
            f"(target < 3072), {memory['encode_plus_decode_s']} s on {memory['threads']} thread(s).",
        ]
    return "\n".join(lines) + "\n"


def _write_docs_section(section: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n\n"
    start = text.find("## VQ-VAE")
    if start >= 0:
        end = text.find("\n## ", start + 1)
        text = text[:start] + section + ("" if end < 0 else text[end + 1 :])
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--memory-10min", action="store_true", help="peak RSS for 10 minutes of audio")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3, help="child processes per variant (round-robin)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child == "memory":
        print(json.dumps(_child_memory(args.seconds, args.threads)))
        return
    if args.child:
        print(json.dumps(_child_speed(args.child, args.seconds, args.repeats, args.threads)))
        return

    RESULTS.mkdir(parents=True, exist_ok=True)
    common = ["--threads", str(args.threads)]
    if args.memory_10min:
        memory = _run_child(["--child", "memory", "--seconds", "600", *common]) | _machine()
        (RESULTS / "vqvae_memory.json").write_text(json.dumps(memory, indent=2) + "\n")
        print(json.dumps(memory, indent=2))
        speed_path = RESULTS / "vqvae.json"
        if speed_path.exists():
            speed = json.loads(speed_path.read_text())
            _write_docs_section(_markdown(speed["results"], memory, speed))
        return
    # round-robin over variants so that load from other processes hits every variant alike
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in args.variants.split(",")}
    for _ in range(args.repeats):
        for variant, done in runs.items():
            done.append(
                _run_child(["--child", variant, "--seconds", str(args.seconds), "--repeats", "1", *common])
            )
    results = [_best_of(done) for done in runs.values()]
    machine = _machine()
    (RESULTS / "vqvae.json").write_text(json.dumps({"results": results} | machine, indent=2) + "\n")
    memory_path = RESULTS / "vqvae_memory.json"
    saved_memory = json.loads(memory_path.read_text()) if memory_path.exists() else None
    _write_docs_section(_markdown(results, saved_memory, machine))
    for r in results:
        print(json.dumps(r))


if __name__ == "__main__":
    main()
