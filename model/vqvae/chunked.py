"""Chunked encode/decode: bounded memory, output equal to the unchunked pass.

Each chunk is run with ``context`` extra samples (encode) or tokens (decode) on both sides, at least
the receptive-field reach of the network, measured from the built modules. Only the chunk's own
outputs are kept, so the stitched result equals the full pass up to float rounding. Encode chunk
boundaries sit on multiples of the top hop, so every level's token grid lines up.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import nn

from common.progress import Progress, ProgressFn, report

DEFAULT_ENCODE_CHUNK_SAMPLES = 2**19  # 11.9 s at 44.1 kHz; longer inputs are chunked by default
DEFAULT_DECODE_CHUNK_SAMPLES = 2**19  # decode chunk, as audio samples (tokens = this // hop)


def _int(padding: object) -> int:
    if isinstance(padding, tuple) and padding and isinstance(padding[0], int):
        return padding[0]
    raise ValueError(f"cannot compute the receptive field of a convolution with padding {padding!r}")


def _reach(layers: Iterable[nn.Module], samples_per_step: float, downsampling: bool) -> float:
    """Receptive-field reach (one side, in samples) of convolutions run in order.

    ``samples_per_step`` is how many audio samples one position of the first layer's input spans; it
    is multiplied (encoder) or divided (decoder) by each stride.
    """
    reach = 0.0
    step = samples_per_step
    for layer in layers:
        for m in layer.modules():
            if isinstance(m, nn.ConvTranspose1d):
                k, s, p = m.kernel_size[0], m.stride[0], _int(m.padding)
                reach += (max(p, k - 1 - p) + 1) * step / s + step
                step = step / s
            elif isinstance(m, nn.Conv1d):
                k, s, p, d = m.kernel_size[0], m.stride[0], _int(m.padding), m.dilation[0]
                reach += max(p, d * (k - 1) - p) * step
                if downsampling:
                    step = step * s
    return reach


def encoder_context_samples(encoder: nn.Module, top_hop: int) -> int:
    """Context (samples, a multiple of ``top_hop``) each side of an encode chunk for ``encoder``."""
    reach = _reach(encoder.level_blocks, 1.0, downsampling=True)  # type: ignore[arg-type]
    return (math.ceil(reach / top_hop) + 1) * top_hop


def decoder_context_tokens(decoder: nn.Module, hop: int) -> int:
    """Context (tokens) each side of a decode chunk for ``decoder`` of a level with ``hop``."""
    reach = _reach(decoder.execution_order(), float(hop), downsampling=False)  # type: ignore[operator]
    return math.ceil(reach / hop) + 1


def encode_in_chunks(
    encode_levels: Callable[[torch.Tensor], list[torch.Tensor]],
    audio: torch.Tensor,
    hops: Sequence[int],
    chunk_samples: int,
    context: int,
    progress: ProgressFn | None,
) -> list[torch.Tensor]:
    """audio (N, 1, T) -> codes per level (N, T // hop) using ``encode_levels`` on overlapping chunks.

    ``chunk_samples`` and ``context`` must be multiples of ``max(hops)``.
    """
    total = audio.shape[-1]
    pieces: list[list[torch.Tensor]] = [[] for _ in hops]
    for start in range(0, total, chunk_samples):
        end = min(total, start + chunk_samples)
        lo, hi = max(0, start - context), min(total, end + context)
        codes = encode_levels(audio[..., lo:hi])  # per level (N, (hi - lo) // hop)
        for i, hop in enumerate(hops):
            first = (start - lo) // hop
            count = end // hop - start // hop
            pieces[i].append(codes[i][:, first : first + count])  # (N, count)
        report(progress, Progress("encode", end, total))
    return [torch.cat(p, dim=1) for p in pieces]


def decode_in_chunks(
    decode_level: Callable[[torch.Tensor], torch.Tensor],
    codes: torch.Tensor,
    level: int,
    hop: int,
    chunk_tokens: int,
    context: int,
    progress: ProgressFn | None,
) -> torch.Tensor:
    """codes (N, L) -> audio (N, 1, L * hop) using ``decode_level`` on overlapping token chunks."""
    total = codes.shape[1]
    pieces: list[torch.Tensor] = []
    for start in range(0, total, chunk_tokens):
        end = min(total, start + chunk_tokens)
        lo, hi = max(0, start - context), min(total, end + context)
        audio = decode_level(codes[:, lo:hi])  # (N, 1, (hi - lo) * hop)
        pieces.append(audio[..., (start - lo) * hop : (end - lo) * hop])  # (N, 1, (end - start) * hop)
        report(progress, Progress("decode", end, total, level=level))
    return torch.cat(pieces, dim=-1)
