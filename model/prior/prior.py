"""``JukeboxPrior``: one complete Jukebox prior (spec 3), mounted under the official checkpoint prefixes.

Submodules (state-dict prefixes exactly as in the released ``prior_level_*.pth.tar``):
``prior.*`` the autoregressive transformer over music codes (1b_lyrics: over lyrics + music);
``y_emb.*`` the label conditioner (artist, genre, timing); ``conditioner_blocks.0.*`` the upsampler
conditioner (levels 0 and 1); ``prime_prior.*``, ``prime_state_proj.*``, ``prime_state_ln.*``,
``prime_x_out.*`` the separate lyrics encoder of 5b_lyrics.

Use: ``cond = prior.conditioning(labels, upper_codes)`` once per window, then either ``prior(codes, cond)``
for losses / eval NLL, or ``cache = prior.new_cache(...)`` and ``prior.logits_step(codes, cond, cache)`` to
decode token by token (next-code logits (N, step_vocab) after every call). The 1b_lyrics lyric prefix and merged vocabulary never leave this class.
"""

from __future__ import annotations

from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from common.errors import InputError
from model.prior.autoregressive import ConditionalAutoregressive, bits_per_token
from model.prior.cache import KVCache
from model.prior.config import AutoregressiveConfig, TransformerConfig
from model.prior.conv1d import Conv1D, LayerNorm
from model.prior.fast_step import FastStep
from model.prior.label_conditioner import LabelConditioner, label_conditioner_config
from model.prior.lyric_attention import capture_block_input, lyric_attention
from model.prior.prior_config import PriorConfig
from model.prior.prior_types import PriorConditioning, PriorOutput
from model.prior.transformer import ResAttnBlock
from model.prior.upsampler_conditioner import UpsamplerConditioner


def autoregressive_config(c: PriorConfig) -> AutoregressiveConfig:
    """The music transformer ``prior.*`` of ``c``."""
    s = c.transformer
    t = TransformerConfig(
        n_ctx=c.seq_len, width=s.width, depth=s.depth, heads=s.heads, attn_order=s.attn_order, blocks=s.blocks,
        m_attn=s.m_attn, m_mlp=s.m_mlp, init_scale=s.init_scale,
        encoder_dims=c.lyrics.n_tokens if c.lyrics.kind == "separate" else 0, prime_len=c.prime_len,
    )  # fmt: skip
    return AutoregressiveConfig(
        transformer=t, bins=c.vocab_size, merged_decoder=c.merged_decoder, start_token=not c.labels.enabled
    )


def lyrics_encoder_config(c: PriorConfig) -> AutoregressiveConfig:
    """The 5b_lyrics lyrics encoder ``prime_prior.*``: causal over the lyric window, learned start token."""
    e = c.lyrics.encoder
    t = TransformerConfig(
        n_ctx=c.lyrics.n_tokens, width=e.width, depth=e.depth, heads=e.heads, attn_order=e.attn_order,
        blocks=e.blocks, m_attn=e.m_attn, m_mlp=e.m_mlp, init_scale=e.init_scale,
    )  # fmt: skip
    return AutoregressiveConfig(transformer=t, bins=c.lyrics.n_vocab, start_token=True, only_encode=True)


class JukeboxPrior(nn.Module):
    """A Jukebox prior of any released family; see the module docstring and docs/priors.md "Priors"."""

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        c = self.config = config
        if c.labels.enabled:
            self.y_emb = LabelConditioner(label_conditioner_config(c))
        if c.is_upsampler:
            self.conditioner_blocks = nn.ModuleList([UpsamplerConditioner(c)])
        if c.lyrics.kind == "separate":
            self.prime_prior = ConditionalAutoregressive(lyrics_encoder_config(c))
            encoder = c.lyrics.encoder
            self.prime_state_proj = Conv1D(encoder.width, c.transformer.width, init_scale=encoder.init_scale)
            self.prime_state_ln = LayerNorm(c.transformer.width)
            self.prime_x_out = nn.Linear(c.transformer.width, c.lyrics.n_vocab, bias=False)
            nn.init.normal_(self.prime_x_out.weight, std=0.02 * c.transformer.init_scale)
        self.prior = ConditionalAutoregressive(autoregressive_config(c))
        if c.fp16_params:  # storage format of the released 5B checkpoints; Conv1D casts weights per call
            for m in self.modules():
                if isinstance(m, Conv1D):
                    m.w = nn.Parameter(m.w.detach().to(torch.float16))

    # ---- conditioning ----------------------------------------------------------------------------
    def conditioning(
        self, labels: Tensor | None = None, upper_codes: Tensor | None = None, extra: Tensor | None = None,
        label_weights: Tensor | None = None,
    ) -> PriorConditioning:  # fmt: skip
        """Per-window conditioning.

        labels: (N, 4 + max_bow_genre_size + n_tokens) int64 window label vector (spec 4.4: total_length,
        offset, sample_length, artist, genres, lyric window) -- required when ``config.labels.enabled``.
        upper_codes: (N, n_ctx // 4) int64 codes of the level above -- required for upsamplers, else None.
        extra: (N, n_ctx, W) added to ``x_cond`` at the music positions: the output of the MIDI, stem and
        grid conditioners (``model.conditioners``); zeros leave every output unchanged.
        label_weights: (K,) weights summing to 1 of a style blend; ``labels`` is then (N, K, n_y), the rows
        differing in artist and genre only, and the label embeddings (which add artist, genre and time
        embeddings) are mixed by these weights: a weighted artist and genre embedding.
        """
        c = self.config
        y_cond = x_cond = encoder_kv = lyric_tokens = None
        if label_weights is not None and labels is not None:
            return self._blended(labels, upper_codes, extra, label_weights)
        if c.labels.enabled:
            if labels is None or labels.dim() != 2 or labels.shape[1] != c.n_labels + c.lyrics.n_tokens:
                got = None if labels is None else tuple(labels.shape)
                want = c.n_labels + c.lyrics.n_tokens
                raise InputError(f"labels must have shape (batch, {want}) for this prior, got {got}")
            emb = self.y_emb(labels[:, : c.n_labels])
            y_cond, x_cond = emb.start, emb.positions  # (N, 1, W), (N, n_ctx, W) or None
            if c.lyrics.n_tokens:
                lyric_tokens = labels[:, c.n_labels :]  # (N, n_tokens)
                if not bool(((lyric_tokens >= 0) & (lyric_tokens < c.lyrics.n_vocab)).all()):
                    raise InputError(f"lyric tokens must lie in [0, {c.lyrics.n_vocab - 1}] for this prior")
        elif labels is not None:
            raise InputError("this prior was built without labels (labels.enabled=false): pass labels=None")
        if c.is_upsampler:
            if upper_codes is None:
                raise InputError(f"the level-{c.level} upsampler needs the codes of level {c.level + 1}")
            x_cond = self.conditioner_blocks[0](upper_codes)  # (N, n_ctx, W)
        elif upper_codes is not None:
            raise InputError("the top-level prior takes no upper-level codes: pass upper_codes=None")
        if extra is not None:
            if extra.dim() != 3 or tuple(extra.shape[1:]) != (c.n_ctx, c.transformer.width):
                raise InputError(
                    f"extra conditioning must be (batch, {c.n_ctx}, {c.transformer.width}), got {tuple(extra.shape)}"
                )
            x_cond = extra if x_cond is None else x_cond + extra.to(x_cond.dtype)
        if c.lyrics.kind == "merged" and x_cond is not None and lyric_tokens is not None:
            prefix = x_cond.new_zeros(x_cond.shape[0], c.lyrics.n_tokens, c.transformer.width)  # (N, n_tokens, W)
            x_cond = torch.cat([prefix, x_cond], dim=1)  # (N, n_tokens + n_ctx, W)
        if c.lyrics.kind == "separate" and lyric_tokens is not None:
            encoder_kv = self.encode_lyrics(lyric_tokens)  # (N, n_tokens, W)
        return PriorConditioning(x_cond=x_cond, y_cond=y_cond, encoder_kv=encoder_kv, lyric_tokens=lyric_tokens)

    def _blended(self, labels: Tensor, upper: Tensor | None, extra: Tensor | None, weights: Tensor) -> PriorConditioning:
        if labels.dim() != 3 or weights.shape != (labels.shape[1],):
            raise InputError(
                f"a style blend needs labels (batch, K, n_y) and K weights, got {tuple(labels.shape)} and {tuple(weights.shape)}"
            )
        n, k = labels.shape[:2]

        def rep(t: Tensor | None) -> Tensor | None:  # each row k times: (N, ...) -> (N K, ...)
            return None if t is None else t.repeat_interleave(k, 0)

        rows = self.conditioning(labels.reshape(n * k, -1), rep(upper), rep(extra))  # weights sum to 1: extra once

        def mix(t: Tensor | None) -> Tensor | None:  # (N K, ..., W) -> (N, ..., W), weighted over K
            if t is None:
                return None
            w = weights.to(t.device, t.dtype).view(1, k, *([1] * (t.dim() - 1)))
            return (t.view(n, k, *t.shape[1:]) * w).sum(1)

        x_cond, y_cond = mix(rows.x_cond), mix(rows.y_cond)
        first = slice(0, n * k, k)  # lyrics are the same in every row
        return PriorConditioning(
            x_cond=x_cond, y_cond=y_cond,
            encoder_kv=None if rows.encoder_kv is None else rows.encoder_kv[first],
            lyric_tokens=None if rows.lyric_tokens is None else rows.lyric_tokens[first],
        )  # fmt: skip

    def encode_lyrics(self, lyric_tokens: Tensor) -> Tensor:
        """5b_lyrics: lyric tokens (N, n_tokens) -> encoder states (N, n_tokens, width) for cross-attention."""
        h = self.prime_prior.hidden(lyric_tokens)  # (N, n_tokens, prime_width)
        return self.prime_state_ln(self.prime_state_proj(h))  # (N, n_tokens, W)

    # ---- full forward: losses ----------------------------------------------------------------------
    def forward(self, codes: Tensor, cond: PriorConditioning, return_logits: bool = False) -> PriorOutput:
        """Teacher-forced losses of music codes (N, L), L <= n_ctx (a whole window for training/eval NLL).

        ``return_logits`` adds the raw logits (N, prime_len + L, vocab_size) (merged vocabulary and lyric
        prefix included for 1b_lyrics) to the output.
        """
        c = self.config
        self._check_codes(codes, c.n_ctx)
        if c.lyrics.kind == "merged":
            lyrics = self._lyrics(cond)
            tokens = torch.cat([lyrics, codes + c.lyrics.n_vocab], dim=1)  # (N, n_tokens + L)
            logits = self.prior(tokens, cond.x_cond, cond.y_cond)  # (N, n_tokens + L, n_vocab + n_bins)
            prime_loss, gen_loss = bits_per_token(logits, tokens, c.lyrics.n_tokens)
        else:
            logits = self.prior(codes, cond.x_cond, cond.y_cond, cond.encoder_kv)  # (N, L, n_bins)
            gen_loss = bits_per_token(logits, codes).gen_bits
            if c.lyrics.kind == "separate":
                if cond.encoder_kv is None:
                    raise InputError("5b_lyrics-style priors need cond.encoder_kv (from prior.conditioning)")
                enc = cond.encoder_kv.float()  # (N, n_tokens, W)
                lyric_logits = F.linear(enc, self.prime_x_out.weight.float())  # (N, n_tokens, n_vocab)
                prime_loss = bits_per_token(lyric_logits, self._lyrics(cond)).gen_bits
            else:
                prime_loss = gen_loss.new_zeros(())
        total = c.lyrics.n_tokens + c.n_ctx
        loss = c.lyrics.loss_fraction * prime_loss * c.lyrics.n_tokens / total + gen_loss * c.n_ctx / total
        return PriorOutput(loss=loss, gen_loss=gen_loss, prime_loss=prime_loss, logits=logits if return_logits else None)

    # ---- lyric alignment ---------------------------------------------------------------------------
    def alignment_attention(self, codes: Tensor, cond: PriorConditioning) -> Tensor:
        """Attention (N, L, n_tokens) float32 of ``config.alignment_layer``/``alignment_head`` from each music
        position of codes (N, L) onto the window's lyric tokens (one full pass; rows sum to <= 1, = 1 for
        5b_lyrics; 1b_lyrics rows also attend to the first music block, which is dropped here)."""
        c = self.config
        if c.lyrics.kind == "none" or c.lyrics.alignment_layer is None or c.lyrics.alignment_head is None:
            raise InputError("this prior has no lyrics alignment layer (alignment_layer/alignment_head unset)")
        block = cast(ResAttnBlock, self.prior.transformer._attn_mods[c.lyrics.alignment_layer])
        x = capture_block_input(block, lambda: self(codes, cond))  # (N, prime_len + L, W)
        return lyric_attention(block, x, c.lyrics.alignment_head, c.lyrics.n_tokens, c.prime_len, cond.encoder_kv)

    # ---- incremental decoding (for the sampler) -------------------------------------------------------
    def new_cache(self, batch: int, dtype: torch.dtype, device: torch.device | str | None = None) -> KVCache:
        """A preallocated key/value cache for ``batch`` sequences of one window (reusable via ``reset()``)."""
        return self.prior.new_cache(batch, dtype, device)

    def music_position(self, cache: KVCache) -> int:
        """Music codes already consumed by ``cache`` (0 before the first ``logits_step``)."""
        return max(0, cache.length - self.config.prime_len - 1)

    @property
    def step_vocab(self) -> int:
        """Width of ``logits_step``'s logits: n_bins, or n_vocab + n_bins merged ids for 1b_lyrics."""
        return self.config.vocab_size

    @property
    def step_fold(self) -> int:
        """Ids in front of the music codes in ``logits_step``'s logits (n_vocab for 1b_lyrics, else 0): they
        fold into code 0 (``fold_merged_logits``, or ``sample_from_logits(..., fold=step_fold)``)."""
        return self.config.lyrics.n_vocab if self.config.lyrics.kind == "merged" else 0

    def logits_step(self, codes: Tensor, cond: PriorConditioning, cache: KVCache, fast: FastStep | None = None) -> Tensor:
        """Feed newly known music codes (N, T); return float32 logits (N, step_vocab) for the next code.

        On a fresh cache ``codes`` are the window's first T codes (T may be 0: unprimed start), later the next
        T codes; the result always predicts the code after the last one fed. For 1b_lyrics the lyric prefix
        is fed on the first call and the logits cover all ``n_vocab + n_bins`` merged ids (merged id
        ``n_vocab + c`` is code c): Jukebox samples every id and maps the lyric ids to code 0, so samplers
        apply temperature and filters to all ids first and then fold (``step_fold``); ``fold_merged_logits``
        folds them by logsumexp (the same distribution at temperature 1). ``fast``: a ``FastStep`` over this
        ``cache`` that computes single codes after the first call (the compiled step, model/prior/fast_step.py).
        """
        c = self.config
        fresh = cache.length == 0
        self._check_codes(codes, c.n_ctx - 1 - self.music_position(cache), allow_empty=fresh, check_values=fresh)
        tokens = codes + c.lyrics.n_vocab if c.lyrics.kind == "merged" else codes  # (N, T) ids of the transformer
        if fast is not None and not fresh and tokens.shape[1] == 1:
            return fast(tokens, cond.x_cond)  # (N, V)
        if c.lyrics.kind != "merged":
            return self.prior.step(tokens, cache, cond.x_cond, cond.y_cond, cond.encoder_kv)[:, -1]  # (N, V)
        if fresh:
            tokens = torch.cat([self._lyrics(cond), tokens], dim=1)  # (N, n_tokens + T)
        return self.prior.step(tokens, cache, cond.x_cond, cond.y_cond)[:, -1]  # (N, n_vocab + n_bins)

    # ---- helpers ----------------------------------------------------------------------------------
    def _lyrics(self, cond: PriorConditioning) -> Tensor:
        if cond.lyric_tokens is None:
            raise InputError("this lyrics prior needs cond.lyric_tokens (build cond with prior.conditioning)")
        return cond.lyric_tokens

    def _check_codes(self, codes: Tensor, max_len: int, allow_empty: bool = False, check_values: bool = True) -> None:
        """Shape always; values only when asked (a value check syncs with the GPU: once per window, not per token)."""
        c = self.config
        lo = 0 if allow_empty else 1
        if codes.dim() != 2 or not lo <= codes.shape[1] <= max_len:
            raise InputError(f"music codes must have shape (batch, {lo}..{max_len}), got {tuple(codes.shape)}")
        if check_values and codes.numel() and not bool(((codes >= 0) & (codes < c.n_bins)).all()):
            raise InputError(f"music codes must lie in [0, {c.n_bins - 1}]")


def fold_merged_logits(logits: Tensor, n_vocab: int) -> Tensor:
    """(…, n_vocab + n_bins) merged logits -> (…, n_bins) music logits; ids 0..n_vocab fold into code 0."""
    music = logits[..., n_vocab:].float().clone()  # (…, n_bins)
    music[..., 0] = torch.logsumexp(logits[..., : n_vocab + 1].float(), dim=-1)
    return music

