"""Sampling speed: new tokens per second of segue's engine vs transformers' Jukebox sampler.

Same transformer config and the same number of tokens for both; random weights (speed does not depend
on them). segue: ``sample_window`` over the cached ``ConditionalAutoregressive`` (fp32 and bf16).
transformers: ``JukeboxConditionalAutoregressive.sample`` (its own cache) in fp32 and bf16.
Writes ``bench/results/sampling.json``; run with ``nice``, it is CPU-heavy:

    OMP_NUM_THREADS=2 PYTHONPATH=. nice python bench/sampling.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from model.prior.autoregressive import ConditionalAutoregressive
from model.prior.config import AutoregressiveConfig, TransformerConfig
from model.sampling.ar_session import CachedSession
from model.sampling.logits import draw_uniforms, make_generators
from model.sampling.session import Draw, sample_window

CONFIGS = {
    # a small upsampler-shaped prior: 1,2,3 attention cycle, 2048 codes
    "small": dict(n_ctx=2048, width=256, depth=12, heads=2, blocks=32, bins=2048),
    "quick": dict(n_ctx=256, width=64, depth=3, heads=1, blocks=8, bins=256),
}
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}


def ours(cfg: dict, batch: int, tokens: int, dtype: torch.dtype) -> float:
    tc = TransformerConfig(n_ctx=cfg["n_ctx"], width=cfg["width"], depth=cfg["depth"], heads=cfg["heads"],
                           attn_order=2, blocks=cfg["blocks"])  # fmt: skip
    model = ConditionalAutoregressive(AutoregressiveConfig(transformer=tc, bins=cfg["bins"])).eval().to(dtype)
    y = torch.randn(batch, 1, cfg["width"], dtype=dtype)
    cache = model.new_cache(batch, dtype)
    u = draw_uniforms(make_generators(list(range(batch))), tokens)
    with torch.inference_mode():
        empty = torch.zeros(batch, 0, dtype=torch.long)
        sample_window(CachedSession(lambda t: model.step(t, cache, y_cond=y)[:, -1], cache), empty, u[:, :4], Draw(chunk_size=32))
        t0 = time.perf_counter()
        sample_window(CachedSession(lambda t: model.step(t, cache, y_cond=y)[:, -1], cache), empty, u, Draw(chunk_size=32))
        return time.perf_counter() - t0


def engine_level(cfg: dict, level: int, batch: int, tokens: int, precision: str) -> float:
    """One window of ``tokens`` new codes through the whole engine path of a ``JukeboxPrior`` of ``level``
    (per-window conditioning: labels + time signal at the top, the upsampler conditioner below)."""
    from model.prior import presets
    from model.prior.prior import JukeboxPrior
    from model.sampling.jukebox import JukeboxLevel

    base = presets.tiny_upsampler(level) if level < 2 else presets.tiny_prior()
    config = presets.with_changes(
        base, n_ctx=cfg["n_ctx"], n_bins=cfg["bins"],
        transformer=dict(width=cfg["width"], depth=cfg["depth"], heads=cfg["heads"], blocks=cfg["blocks"]),
        **({"upsampler": dict(width=64, depth=4)} if level < 2 else {}),
    )  # fmt: skip
    lv = JukeboxLevel(JukeboxPrior(config).eval(), step="eager")
    lv.use_precision(precision)  # fp32 as built, or cast down to bf16
    y = torch.tensor([[44100 * 10, 0, cfg["n_ctx"] * config.hop_length, 1, 1, -1]]).expand(batch, -1)
    upper = torch.randint(0, cfg["bins"], (batch, cfg["n_ctx"] // 4)) if level < 2 else None
    u = draw_uniforms(make_generators(list(range(batch))), tokens)
    empty = torch.zeros(batch, 0, dtype=torch.long)
    with torch.inference_mode():
        sample_window(lv.open_window(y, upper, batch), empty, u[:, :4], Draw(chunk_size=32))
        t0 = time.perf_counter()
        sample_window(lv.open_window(y, upper, batch), empty, u, Draw(chunk_size=32))
        return time.perf_counter() - t0


def theirs(cfg: dict, batch: int, tokens: int, dtype: torch.dtype) -> float:
    os.environ["TQDM_DISABLE"] = "1"  # their per-token progress bar
    import transformers
    from transformers.models.deprecated.jukebox.modeling_jukebox import JukeboxConditionalAutoregressive

    transformers.logging.set_verbosity_error()
    config = transformers.JukeboxPriorConfig(
        hidden_size=cfg["width"], num_layers=cfg["depth"], n_heads=cfg["heads"], blocks=cfg["blocks"],
        n_ctx=cfg["n_ctx"], music_vocab_size=cfg["bins"], attention_pattern="raw_column_previous_row_attention",
        mask=True, is_encoder_decoder=False, merged_decoder=True, nb_relevant_lyric_tokens=0,
    )  # fmt: skip
    model = JukeboxConditionalAutoregressive(
        config, n_ctx=cfg["n_ctx"], embed_dim=cfg["bins"], audio_conditioning=False, metadata_conditioning=True
    ).eval()  # fmt: skip
    with torch.no_grad():  # built outside a PreTrainedModel its weights are left uninitialised
        for p in model.parameters():
            p.normal_(std=0.02)
    model.to(dtype)
    model.fc_proj_out.device = torch.device("cpu")  # their sample() reads Linear.device, which torch lacks
    y = torch.randn(batch, 1, cfg["width"], dtype=dtype)
    with torch.inference_mode():
        model.sample(batch, metadata_conditioning=y, sample_tokens=4)
        t0 = time.perf_counter()
        model.sample(batch, metadata_conditioning=y, sample_tokens=tokens)
        return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="small")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the fastest is kept (busy machines)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/sampling.json"))
    args = parser.parse_args()
    cfg = CONFIGS[args.config]
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        for precision, dtype in DTYPES.items():
            for name, fn in (("segue", ours), ("transformers", theirs)):
                torch.manual_seed(0)
                try:
                    seconds = min(fn(cfg, batch, args.tokens, dtype) for _ in range(args.repeat))
                    row = {"impl": name, "batch": batch, "precision": precision, "seconds": round(seconds, 3),
                           "tokens_per_s": round(batch * args.tokens / seconds, 1)}  # fmt: skip
                except Exception as exc:  # a failing implementation is reported, not hidden
                    row = {"impl": name, "batch": batch, "precision": precision, "error": f"{type(exc).__name__}: {exc}"[:200]}
                rows.append(row)
                print(json.dumps(row), flush=True)
            for level in (2, 1, 0):
                torch.manual_seed(0)
                seconds = min(engine_level(cfg, level, batch, args.tokens, precision) for _ in range(args.repeat))
                row = {"impl": "segue engine (JukeboxPrior)", "level": level, "batch": batch, "precision": precision,
                       "seconds": round(seconds, 3), "tokens_per_s": round(batch * args.tokens / seconds, 1)}  # fmt: skip
                rows.append(row)
                print(json.dumps(row), flush=True)
    result = {
        "config": {**cfg, "attn_order": 2, "name": args.config},
        "new_tokens_per_sequence": args.tokens,
        "repeats_fastest_kept": args.repeat,
        "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, threads {torch.get_num_threads()}",
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
