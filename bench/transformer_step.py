"""Single-token decoding speed of the transformer core: ``ConditionalAutoregressive.step`` tokens/s.

Random weights (speed does not depend on them), batch 1 unless told, greedy next token (no sampler cost).
Timed in process CPU time (one thread), so a busy shared machine does not inflate the figure.
Config: width 256, depth 12, n_ctx 1024, blocks 16, heads 2, attn_order 2 (the 1,2,3 cycle), 2048 bins.

    OMP_NUM_THREADS=1 PYTHONPATH=. nice python bench/transformer_step.py [--tokens 1023] [--batch 1]
"""

from __future__ import annotations

import argparse
import time

import torch

from model.prior.autoregressive import ConditionalAutoregressive
from model.prior.config import AutoregressiveConfig, TransformerConfig


def tokens_per_second(dtype: torch.dtype, n_tokens: int, batch: int, threads: int) -> float:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tc = TransformerConfig(n_ctx=1024, width=256, depth=12, heads=2, attn_order=2, blocks=16)
    model = ConditionalAutoregressive(AutoregressiveConfig(transformer=tc, bins=2048)).eval().to(dtype)
    y = torch.randn(batch, 1, 256, dtype=dtype)
    cache = model.new_cache(batch, dtype)
    with torch.inference_mode():
        for _ in range(2):  # second pass is the timed one (warm caches, allocator)
            cache.reset()
            start = time.process_time()
            logits = model.step(torch.zeros(batch, 0, dtype=torch.long), cache, y_cond=y)
            for _ in range(n_tokens):
                logits = model.step(logits[:, -1].argmax(-1, keepdim=True), cache)
            elapsed = time.process_time() - start
    return batch * (n_tokens + 1) / elapsed


def refill_tokens_per_second(dtype: torch.dtype, chunk: int, threads: int) -> float:
    """Feeding a 1023-token context in chunks (what every new window does before sampling)."""
    torch.set_num_threads(threads)
    tc = TransformerConfig(n_ctx=1024, width=256, depth=12, heads=2, attn_order=2, blocks=16)
    model = ConditionalAutoregressive(AutoregressiveConfig(transformer=tc, bins=2048)).eval().to(dtype)
    y = torch.randn(1, 1, 256, dtype=dtype)
    x = torch.randint(0, 2048, (1, 1023))
    cache = model.new_cache(1, dtype)
    with torch.inference_mode():
        for _ in range(2):
            cache.reset()
            start = time.process_time()
            model.step(x[:, :chunk], cache, y_cond=y)
            for s in range(chunk, 1023, chunk):
                model.step(x[:, s : s + chunk], cache)
            elapsed = time.process_time() - start
    return 1024 / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=1023)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        tps = tokens_per_second(dtype, args.tokens, args.batch, args.threads)
        print(f"{name}: {tps:.1f} tokens/s (batch {args.batch}, {args.tokens + 1} positions, {args.threads} thread)")
        for chunk in (32, 1023):
            rps = refill_tokens_per_second(dtype, chunk, args.threads)
            print(f"{name}: context refill in chunks of {chunk}: {rps:.0f} tokens/s")


if __name__ == "__main__":
    main()
