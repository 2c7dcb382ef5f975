"""Convolutional building blocks of the Jukebox VQ-VAE (spec 1.2), with Jukebox's state-dict layout.

Reused by the upsampler conditioner: build ``Resnet1D(..., layout="blocks", res_scale=0.25)`` and
``DecoderConvBock(..., layout="blocks", res_scale=...)`` to get the ``.blocks.`` key segment of
Jukebox's checkpoint_res modules. ``res_scale`` is always an explicit float here; Jukebox's boolean
flag becomes ``residual_scale(flag, depth)``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal, TypedDict

import torch
from torch import nn

if TYPE_CHECKING:
    from model.vqvae.config import VQVAEConfig

Layout = Literal["model", "blocks"]


def residual_scale(flag: bool, depth: int) -> float:
    """Jukebox's ``res_scale`` flag: 1/sqrt(depth) when set, else 1."""
    return 1.0 / math.sqrt(depth) if flag else 1.0


class LevelBlockOptions(TypedDict):
    """Keyword arguments shared by the encoder and decoder conv blocks of one level."""

    width: int
    depth: int
    m_conv: float
    dilation_growth_rate: int
    dilation_cycle: int | None
    zero_out: bool
    res_scale: float


def level_block_options(config: VQVAEConfig, level: int) -> LevelBlockOptions:
    """Options of every conv block of level ``level``'s encoder and decoder: all blocks use the
    width/depth multiplier of ``level`` (not of the block's own index)."""
    width, depth = config.level_width(level), config.level_depth(level)
    return LevelBlockOptions(
        width=width,
        depth=depth,
        m_conv=config.m_conv,
        dilation_growth_rate=config.dilation_growth_rate,
        dilation_cycle=config.dilation_cycle,
        zero_out=config.zero_out,
        res_scale=residual_scale(config.res_scale, depth),
    )


class UpsampleConv1d(nn.ConvTranspose1d):
    """ConvTranspose1d (kernel 2*stride, padding stride//2, Jukebox's upsampler) run as one ordinary conv.

    Same parameters and state-dict keys as nn.ConvTranspose1d. The transposed conv is split into
    ``stride`` output phases, each a kernel-3 conv over the input; the phases are interleaved. This
    is the same sum of products as the transposed conv, and CPU convolution kernels run it faster.
    """

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        stride, kernel, pad = self.stride[0], self.kernel_size[0], self.padding
        if output_size is not None or kernel != 2 * stride or pad != (stride // 2,) or stride % 2 or self.groups != 1:
            return super().forward(x, output_size)
        n, _, t = x.shape
        out = self.out_channels
        phases = self._phase_weight()  # (stride * C_out, C_in, 3)
        bias = None if self.bias is None else self.bias.repeat(stride)  # (stride * C_out,)
        y = nn.functional.conv1d(x, phases, bias, padding=1)  # (N, stride * C_out, T)
        return y.view(n, stride, out, t).permute(0, 2, 3, 1).reshape(n, out, t * stride)  # (N, C_out, T * stride)

    def _phase_weight(self) -> torch.Tensor:
        """Output sample o = m*stride + r takes input m + j through tap k with k = r + pad - j*stride."""
        stride, kernel, pad = self.stride[0], self.kernel_size[0], int(self.padding[0])
        weight = self.weight  # (C_in, C_out, kernel)
        zero = weight.new_zeros(self.out_channels, self.in_channels)
        rows = []
        for r in range(stride):
            taps = []
            for j in (-1, 0, 1):
                k = r + pad - j * stride
                taps.append(weight[:, :, k].t() if 0 <= k < kernel else zero)  # (C_out, C_in)
            rows.append(torch.stack(taps, dim=2))  # (C_out, C_in, 3)
        return torch.cat(rows, dim=0)  # (stride * C_out, C_in, 3)


class ResConv1DBlock(nn.Module):
    """x + res_scale * conv1x1(relu(dilated_conv3(relu(x)))). Keys ``model.1`` / ``model.3``."""

    def __init__(self, width: int, hidden: int, dilation: int, *, zero_out: bool = False, res_scale: float = 1.0):
        super().__init__()
        self.dilation = dilation
        self.res_scale = res_scale
        project = nn.Conv1d(hidden, width, 1, 1, 0)
        if zero_out:
            nn.init.zeros_(project.weight)
            nn.init.zeros_(project.bias)  # type: ignore[arg-type]
        self.model = nn.Sequential(
            nn.ReLU(),
            nn.Conv1d(width, hidden, 3, 1, padding=dilation, dilation=dilation),
            nn.ReLU(inplace=True),  # acts on the first conv's fresh output
            project,
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, T) -> (N, C, T)
        branch = self.model(x)  # (N, C, T), a fresh tensor: updated in place to save memory traffic
        if self.res_scale != 1.0:
            branch = branch.mul_(self.res_scale)
        return branch.add_(x)


class Resnet1D(nn.Module):
    """``depth`` residual blocks with dilation growth**(d or d % cycle), optionally in reverse order.

    ``layout="model"`` stores the blocks as ``self.model`` (nn.Sequential, key ``.model.``);
    ``layout="blocks"`` stores them as ``self.blocks`` (nn.ModuleList, key ``.blocks.``), which is how
    Jukebox's checkpoint_res modules (upsampler conditioners) are saved. Both compute the same thing.
    """

    def __init__(
        self,
        width: int,
        depth: int,
        *,
        m_conv: float = 1.0,
        dilation_growth_rate: int = 1,
        dilation_cycle: int | None = None,
        zero_out: bool = False,
        res_scale: float = 1.0,
        reverse_dilation: bool = False,
        layout: Layout = "model",
    ):
        super().__init__()
        hidden = int(m_conv * width)
        blocks = [
            ResConv1DBlock(
                width,
                hidden,
                dilation_growth_rate ** (d if dilation_cycle is None else d % dilation_cycle),
                zero_out=zero_out,
                res_scale=res_scale,
            )
            for d in range(depth)
        ]
        if reverse_dilation:
            blocks = blocks[::-1]
        self.layout = layout
        if layout == "blocks":
            self.blocks = nn.ModuleList(blocks)
        else:
            self.model = nn.Sequential(*blocks)

    @property
    def res_blocks(self) -> list[ResConv1DBlock]:
        return list(self.blocks if self.layout == "blocks" else self.model)  # type: ignore[arg-type]

    @property
    def dilations(self) -> list[int]:
        return [b.dilation for b in self.res_blocks]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, T) -> (N, C, T)
        if self.layout == "blocks":
            for block in self.blocks:
                x = block(x)
            return x
        return self.model(x)


class EncoderConvBlock(nn.Module):
    """``down_t`` x (strided conv, Resnet1D), then a k=3 conv to ``out_width``. T -> T // stride**down_t."""

    def __init__(
        self,
        in_width: int,
        out_width: int,
        down_t: int,
        stride_t: int,
        *,
        width: int,
        depth: int,
        m_conv: float = 1.0,
        dilation_growth_rate: int = 1,
        dilation_cycle: int | None = None,
        zero_out: bool = False,
        res_scale: float = 1.0,
    ):
        super().__init__()
        kernel, pad = stride_t * 2, stride_t // 2
        stages: list[nn.Module] = [
            nn.Sequential(
                nn.Conv1d(in_width if i == 0 else width, width, kernel, stride_t, pad),
                Resnet1D(
                    width,
                    depth,
                    m_conv=m_conv,
                    dilation_growth_rate=dilation_growth_rate,
                    dilation_cycle=dilation_cycle,
                    zero_out=zero_out,
                    res_scale=res_scale,
                ),
            )
            for i in range(down_t)
        ]
        stages.append(nn.Conv1d(width, out_width, 3, 1, 1))
        self.model = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C_in, T) -> (N, C_out, T // stride**down_t)
        return self.model(x)


class DecoderConvBock(nn.Module):
    """(sic, Jukebox's name) k=3 conv to ``width``, then ``down_t`` x (Resnet1D, transposed conv).

    The last transposed conv maps to ``out_width``. T -> T * stride**down_t.
    """

    def __init__(
        self,
        in_width: int,
        out_width: int,
        down_t: int,
        stride_t: int,
        *,
        width: int,
        depth: int,
        m_conv: float = 1.0,
        dilation_growth_rate: int = 1,
        dilation_cycle: int | None = None,
        zero_out: bool = False,
        res_scale: float = 1.0,
        reverse_dilation: bool = False,
        layout: Layout = "model",
    ):
        super().__init__()
        kernel, pad = stride_t * 2, stride_t // 2
        stages: list[nn.Module] = [nn.Conv1d(in_width, width, 3, 1, 1)]
        for i in range(down_t):
            stages.append(
                nn.Sequential(
                    Resnet1D(
                        width,
                        depth,
                        m_conv=m_conv,
                        dilation_growth_rate=dilation_growth_rate,
                        dilation_cycle=dilation_cycle,
                        zero_out=zero_out,
                        res_scale=res_scale,
                        reverse_dilation=reverse_dilation,
                        layout=layout,
                    ),
                    UpsampleConv1d(width, out_width if i == down_t - 1 else width, kernel, stride_t, pad),
                )
            )
        self.model = nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C_in, T) -> (N, C_out, T * stride**down_t)
        return self.model(x)
