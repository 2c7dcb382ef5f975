import pytest
import torch
from torch import nn

from model.vqvae.blocks import DecoderConvBock, EncoderConvBlock, Resnet1D, UpsampleConv1d, residual_scale


@pytest.mark.parametrize(("stride", "c_in", "c_out", "length"), [(2, 6, 5, 17), (4, 3, 7, 9), (2, 4, 4, 1)])
def test_upsample_conv_equals_conv_transpose(stride: int, c_in: int, c_out: int, length: int) -> None:
    ours = UpsampleConv1d(c_in, c_out, 2 * stride, stride, stride // 2)
    reference = nn.ConvTranspose1d(c_in, c_out, 2 * stride, stride, stride // 2)
    reference.load_state_dict(ours.state_dict())
    x = torch.randn(2, c_in, length, requires_grad=True)
    y = ours(x)
    torch.testing.assert_close(y, reference(x))
    assert y.shape == (2, c_out, length * stride)
    y.square().sum().backward()
    assert ours.weight.grad is not None and x.grad is not None


def test_resnet_blocks_layout_for_upsampler_conditioners() -> None:
    model = Resnet1D(8, 3, dilation_growth_rate=3, dilation_cycle=2, res_scale=0.25)
    blocks = Resnet1D(8, 3, dilation_growth_rate=3, dilation_cycle=2, res_scale=0.25, layout="blocks")
    assert [k for k in blocks.state_dict()][:2] == ["blocks.0.model.1.weight", "blocks.0.model.1.bias"]
    assert [k.replace("model.", "blocks.", 1) for k in model.state_dict()] == list(blocks.state_dict())
    blocks.load_state_dict({k.replace("model.", "blocks.", 1): v for k, v in model.state_dict().items()})
    x = torch.randn(1, 8, 20)
    torch.testing.assert_close(blocks(x), model(x))
    assert model.dilations == [1, 3, 1]  # cycle 2


def test_residual_block_scale_and_zero_out() -> None:
    block = Resnet1D(4, 2, res_scale=0.5)
    x = torch.randn(1, 4, 10)
    first = block.res_blocks[0]
    torch.testing.assert_close(first(x), x + 0.5 * first.model(x))
    assert residual_scale(True, 4) == 0.5 and residual_scale(False, 4) == 1.0
    silent = Resnet1D(4, 3, zero_out=True)
    torch.testing.assert_close(silent(x), x)


def test_conv_block_lengths() -> None:
    enc = EncoderConvBlock(1, 8, 3, 2, width=4, depth=2)
    dec = DecoderConvBock(8, 8, 3, 2, width=4, depth=2, reverse_dilation=True, layout="blocks")
    x = torch.randn(1, 1, 101)
    assert enc(x).shape == (1, 8, 12)
    assert dec(torch.randn(1, 8, 12)).shape == (1, 8, 96)
    assert "model.1.0.blocks.0.model.1.weight" in dec.state_dict()
