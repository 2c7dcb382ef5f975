"""Typed inputs and results of ``JukeboxPrior``: the per-window conditioning and the loss/logits output."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class PriorConditioning:
    """Everything a prior needs besides the music codes, for one window (see ``JukeboxPrior.conditioning``).

    ``x_cond``: (N, seq_len, W) added to every input position (and again after the transformer when
    ``merged_decoder`` is False) -- the upsampler conditioner's output, or the time signal of a top prior;
    for the merged lyrics model (1b_lyrics) its first ``n_tokens`` rows are zeros (the lyric prefix). ``None``
    for a prior without either (a zero vector is used).
    ``y_cond``: (N, 1, W) the artist/genre start embedding fed at position 0; ``None`` for an unlabelled prior
    (it then uses its learned start token).
    ``encoder_kv``: (N, n_tokens, W) lyrics-encoder states read by the cross-attention layers (5b_lyrics
    only), else ``None``.
    ``lyric_tokens``: (N, n_tokens) int64 lyric window of this window (lyrics priors only), else ``None``.
    """

    x_cond: Tensor | None
    y_cond: Tensor | None
    encoder_kv: Tensor | None = None
    lyric_tokens: Tensor | None = None

    @property
    def batch(self) -> int:
        for t in (self.x_cond, self.y_cond, self.encoder_kv, self.lyric_tokens):
            if t is not None:
                return int(t.shape[0])
        return 0


@dataclass(frozen=True)
class PriorOutput:
    """Losses in bits per token (cross-entropy / ln 2), each a scalar tensor.

    ``gen_loss``: next-code loss over the n_ctx music positions. ``prime_loss``: next-character loss of the
    lyrics (0 for priors without lyrics). ``loss``: the training objective,
    ``prime_loss_fraction * prime_loss * n_tokens / (n_tokens + n_ctx) + gen_loss * n_ctx / (n_tokens + n_ctx)``
    (equal to ``gen_loss`` without lyrics). ``logits``: (N, seq_len, vocab_size) raw transformer logits over
    the whole sequence (lyric prefix and merged vocabulary included for 1b_lyrics), only when asked for.
    """

    loss: Tensor
    gen_loss: Tensor
    prime_loss: Tensor
    logits: Tensor | None = None
