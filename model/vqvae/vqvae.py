"""The hierarchical VQ-VAE: per-level encoders, codebooks and decoders (Jukebox layout, spec 1)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from common.errors import InputError
from common.progress import Progress, ProgressFn, report
from model.vqvae.bottleneck import Bottleneck, BottleneckBlock, QuantisedLevel
from model.vqvae.chunked import (
    DEFAULT_DECODE_CHUNK_SAMPLES,
    DEFAULT_ENCODE_CHUNK_SAMPLES,
    decode_in_chunks,
    decoder_context_tokens,
    encode_in_chunks,
    encoder_context_samples,
)
from model.vqvae.config import VQVAEConfig
from model.vqvae.decoder import Decoder
from model.vqvae.encoder import Encoder


@dataclass(frozen=True)
class VQVAEOutput:
    """Training forward result; losses are weighted and summed by ``model.vqvae.losses``."""

    recons: list[torch.Tensor]  # per level (N, T, 1): each level's decoder reconstructs the input alone
    levels: list[QuantisedLevel]  # per level: codes, commit loss, fit, prenorm, codebook metrics


class VQVAE(nn.Module):
    """Jukebox VQ-VAE. State dict keys: ``encoders.*``, ``decoders.*``, ``bottleneck.level_blocks.{l}.k``."""

    def __init__(self, config: VQVAEConfig):
        super().__init__()
        self.config = config
        self.encoders = nn.ModuleList(Encoder(config, level) for level in range(config.levels))
        self.decoders = nn.ModuleList(Decoder(config, level) for level in range(config.levels))
        self.bottleneck = Bottleneck(config)

    # --- inference ---------------------------------------------------------------------------------
    @torch.no_grad()
    def encode(
        self,
        audio: torch.Tensor,
        *,
        levels: Sequence[int] | None = None,
        chunk_samples: int | None = None,
        progress: ProgressFn | None = None,
    ) -> list[torch.Tensor]:
        """audio (N, T, 1) -> codes of ``levels`` (default all), ascending; level l: int64 (N, T // hop_l).

        ``chunk_samples``: None chunks inputs longer than ``DEFAULT_ENCODE_CHUNK_SAMPLES``; 0 runs the
        whole input at once; otherwise it is rounded up to a multiple of the top hop.
        """
        wanted = self._check_levels(levels)
        hops = [self.config.hop_lengths[lv] for lv in wanted]
        self._check_audio(audio, max(hops))
        x = audio.permute(0, 2, 1).to(self._dtype())  # (N, 1, T)
        top_hop = self.config.hop_lengths[-1]
        chunk = self._chunk_size(chunk_samples, DEFAULT_ENCODE_CHUNK_SAMPLES, "chunk_samples")
        chunk = -(-chunk // top_hop) * top_hop if chunk else 0

        def encode_levels(piece: torch.Tensor) -> list[torch.Tensor]:  # (N, 1, t) -> per level (N, t // hop)
            return [self._codebook(lv).quantise(self.encoders[lv](piece))[0] for lv in wanted]

        if chunk == 0 or x.shape[-1] <= chunk:
            codes = encode_levels(x)
            report(progress, Progress("encode", x.shape[-1], x.shape[-1]))
            return codes
        context = max(encoder_context_samples(self.encoders[lv], top_hop) for lv in wanted)
        return encode_in_chunks(encode_levels, x, hops, chunk, context, progress)

    @torch.no_grad()
    def decode(
        self,
        codes: torch.Tensor,
        level: int,
        *,
        chunk_tokens: int | None = None,
        progress: ProgressFn | None = None,
    ) -> torch.Tensor:
        """codes (N, L) int64 of ``level`` -> audio (N, L * hop_level, 1) float32.

        ``chunk_tokens``: None chunks beyond ``DEFAULT_DECODE_CHUNK_SAMPLES // hop`` tokens; 0 decodes
        everything at once.
        """
        self._check_levels([level])
        self._check_codes(codes)
        hop = self.config.hop_lengths[level]
        chunk = self._chunk_size(chunk_tokens, DEFAULT_DECODE_CHUNK_SAMPLES // hop, "chunk_tokens")
        decoder = self.decoders[level]

        def decode_level(piece: torch.Tensor) -> torch.Tensor:  # (N, l) -> (N, 1, l * hop)
            return decoder(self._codebook(level).dequantise(piece).to(self._dtype()))

        if chunk == 0 or codes.shape[1] <= chunk:
            audio = decode_level(codes)
            report(progress, Progress("decode", codes.shape[1], codes.shape[1], level=level))
        else:
            context = decoder_context_tokens(decoder, hop)
            audio = decode_in_chunks(decode_level, codes, level, hop, chunk, context, progress)
        return audio.permute(0, 2, 1).float()  # (N, L * hop, 1)

    # --- training ----------------------------------------------------------------------------------
    def forward(self, audio: torch.Tensor, *, ema: nn.ModuleList | None = None) -> VQVAEOutput:
        """Training pass on audio (N, T, 1), T a multiple of the top hop. ``ema``: one
        ``CodebookEMA`` per level (``make_codebook_emas``) to learn the codebooks in training mode."""
        top_hop = self.config.hop_lengths[-1]
        self._check_audio(audio, top_hop)
        if audio.shape[1] % top_hop:
            raise InputError(f"training audio length {audio.shape[1]} must be a multiple of the top hop {top_hop}")
        x = audio.permute(0, 2, 1)  # (N, 1, T)
        levels: list[QuantisedLevel] = []
        recons: list[torch.Tensor] = []
        for lv in range(self.config.levels):
            latent = self.encoders[lv](x)  # (N, emb, T // hop)
            quantised = self.bottleneck.level_blocks[lv](latent, None if ema is None else ema[lv])
            levels.append(quantised)
            recons.append(self.decoders[lv](quantised.quantised).permute(0, 2, 1))  # (N, T, 1)
        return VQVAEOutput(recons, levels)

    # --- checks ------------------------------------------------------------------------------------
    def _dtype(self) -> torch.dtype:
        return next(self.decoders.parameters()).dtype

    def _codebook(self, level: int) -> BottleneckBlock:
        block = self.bottleneck.level_blocks[level]
        assert isinstance(block, BottleneckBlock)
        return block

    def _check_levels(self, levels: Sequence[int] | None) -> list[int]:
        n = self.config.levels
        if levels is None:
            return list(range(n))
        wanted = sorted(set(int(lv) for lv in levels))
        if not wanted or wanted[0] < 0 or wanted[-1] >= n:
            raise InputError(f"VQ-VAE levels {list(levels)} out of range: allowed 0..{n - 1}")
        return wanted

    def _check_audio(self, audio: torch.Tensor, min_samples: int) -> None:
        if audio.dim() != 3 or audio.shape[2] != 1 or not audio.is_floating_point():
            raise InputError(
                f"audio must be a float tensor (batch, samples, 1), got {tuple(audio.shape)} {audio.dtype}"
            )
        if audio.shape[1] < min_samples:
            raise InputError(f"audio has {audio.shape[1]} samples; at least {min_samples} needed (one token)")

    def _check_codes(self, codes: torch.Tensor) -> None:
        if codes.dim() != 2 or codes.dtype != torch.int64 or codes.shape[1] < 1:
            raise InputError(f"codes must be int64 (batch, tokens >= 1), got {tuple(codes.shape)} {codes.dtype}")
        k = self.config.codebook_size
        if codes.numel() and (int(codes.min()) < 0 or int(codes.max()) >= k):
            raise InputError(f"codes must lie in 0..{k - 1}, got {int(codes.min())}..{int(codes.max())}")

    @staticmethod
    def _chunk_size(value: int | None, default: int, name: str) -> int:
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(f"{name} must be an integer >= 0 (0 = no chunking), got {value!r}")
        return value
