"""The upsampler conditioner (spec 3.4): codes of the level above -> per-position conditioning ``x_cond``.

``x_emb`` Embedding(n_bins, W) -> DecoderConvBock (k=3 conv to cond_width, then ``down_t`` x [Resnet1D
without dilation reversal, ConvTranspose1d stride 2], back to W) -> LayerNorm(W). Mounted as
``conditioner_blocks.0`` of an upsampler prior; keys ``x_emb.weight``, ``cond.model.*`` (with the ``.blocks.``
segment of Jukebox's checkpoint_res layout) and ``ln.weight|bias``.
"""

from __future__ import annotations

from torch import Tensor, nn

from common.errors import InputError
from model.prior.conv1d import LayerNorm
from model.prior.prior_config import PriorConfig
from model.vqvae.blocks import DecoderConvBock, residual_scale


class UpsamplerConditioner(nn.Module):
    """Upper-level codes (N, n_ctx // cond_downsample) -> x_cond (N, n_ctx, width)."""

    def __init__(self, config: PriorConfig) -> None:
        super().__init__()
        if not config.is_upsampler:
            raise InputError(f"level {config.level} is the top level: it has no upper codes to condition on")
        c = config
        self.n_bins, self.width = c.n_bins, c.transformer.width
        self.n_upper = c.n_ctx // c.cond_downsample
        self.x_emb = nn.Embedding(c.n_bins, c.transformer.width)
        nn.init.normal_(self.x_emb.weight, std=0.02 * c.transformer.init_scale)
        self.cond = DecoderConvBock(
            c.transformer.width,
            c.transformer.width,
            c.geometry.downs_t[c.level + 1],
            c.geometry.strides_t[c.level + 1],
            width=c.upsampler.width,
            depth=c.upsampler.depth,
            m_conv=c.upsampler.m_conv,
            dilation_growth_rate=c.upsampler.dilation_growth_rate,
            dilation_cycle=c.upsampler.dilation_cycle,
            res_scale=residual_scale(c.upsampler.res_scale, c.upsampler.depth),
            reverse_dilation=False,
            layout="blocks",
        )
        self.ln = LayerNorm(c.transformer.width)

    def forward(self, upper_codes: Tensor) -> Tensor:
        """upper_codes (N, n_ctx // cond_downsample) int64 in [0, n_bins) -> x_cond (N, n_ctx, width)."""
        if upper_codes.dim() != 2 or upper_codes.shape[1] != self.n_upper:
            raise InputError(
                f"upper-level codes must have shape (batch, {self.n_upper}), got {tuple(upper_codes.shape)}"
            )
        if upper_codes.numel() and not bool(((upper_codes >= 0) & (upper_codes < self.n_bins)).all()):
            raise InputError(f"upper-level codes must lie in [0, {self.n_bins - 1}]")
        h = self.x_emb(upper_codes.long())  # (N, T_up, W)
        h = self.cond(h.transpose(1, 2)).transpose(1, 2)  # (N, n_ctx, W)
        return self.ln(h)  # (N, n_ctx, W)
