import json

import pytest
import torch

from common.errors import InputError
from common.progress import Progress
from model.vqvae import VQVAE, official_vqvae_config
from model.vqvae.blocks import Resnet1D

from .conftest import tiny_config


def test_official_state_dict_matches_jukebox_key_for_key(reference_dir) -> None:
    ref = json.loads((reference_dir / "jukebox-official-shapes.json").read_text())["parts"]["vqvae"]
    with torch.device("meta"):
        vq = VQVAE(official_vqvae_config())
    ours = {k: list(v.shape) for k, v in vq.state_dict().items()}
    assert sorted(ours) == sorted(ref)
    assert ours == {k: v["shape"] for k, v in ref.items()}
    assert all(vq.state_dict()[k].dtype == getattr(torch, v["dtype"]) for k, v in ref.items())
    assert sum(p.numel() for p in vq.parameters()) == 1_485_763


def test_official_dilations() -> None:
    with torch.device("meta"):
        vq = VQVAE(official_vqvae_config())

    def stacks(module: torch.nn.Module) -> list[list[int]]:
        return [m.dilations for m in module.modules() if isinstance(m, Resnet1D)]

    enc0, dec0, dec2 = stacks(vq.encoders[0]), stacks(vq.decoders[0]), stacks(vq.decoders[2])
    assert enc0 == [[1, 3, 9, 27, 81, 243, 729, 2187]] * 3
    assert dec0 == [[2187, 729, 243, 81, 27, 9, 3, 1]] * 3
    assert dec2 == [[27, 9, 3, 1]] * 7
    assert official_vqvae_config().hop_lengths == (8, 32, 128)


def test_encode_decode_shapes_and_dtypes(tiny_vqvae: VQVAE) -> None:
    audio = torch.randn(2, 999, 1) * 0.3
    codes = tiny_vqvae.encode(audio)
    assert [c.shape for c in codes] == [(2, 249), (2, 124), (2, 62)]
    assert all(c.dtype == torch.int64 for c in codes)
    assert [c.shape for c in tiny_vqvae.encode(audio, levels=[2, 0])] == [(2, 249), (2, 62)]
    for level, c in enumerate(codes):
        out = tiny_vqvae.decode(c, level)
        assert out.shape == (2, c.shape[1] * tiny_vqvae.config.hop_lengths[level], 1)
        assert out.dtype == torch.float32


def test_encode_is_the_nearest_code() -> None:
    vq = VQVAE(tiny_config()).eval()
    audio = torch.randn(1, 256, 1)
    latent = vq.encoders[1](audio.permute(0, 2, 1))[0].t()  # (T, emb)
    expected = torch.cdist(latent, vq.bottleneck.level_blocks[1].k).argmin(dim=1)
    assert torch.equal(vq.encode(audio, levels=[1])[0][0], expected)


@pytest.mark.parametrize("length", [1001, 1597])
def test_chunked_encode_equals_full(tiny_vqvae: VQVAE, length: int) -> None:
    audio = torch.randn(2, length, 1) * 0.3
    full = tiny_vqvae.encode(audio, chunk_samples=0)
    for chunk in (32, 208):
        seen: list[Progress] = []
        chunked = tiny_vqvae.encode(audio, chunk_samples=chunk, progress=seen.append)
        assert all(torch.equal(a, b) for a, b in zip(full, chunked)), chunk
        assert len(seen) == -(-length // chunk) and seen[-1] == Progress("encode", length, length)


@pytest.mark.parametrize("level", [0, 1, 2])
def test_chunked_decode_equals_full(tiny_vqvae: VQVAE, level: int) -> None:
    codes = torch.randint(0, 32, (2, 157))
    full = tiny_vqvae.decode(codes, level, chunk_tokens=0)
    for chunk in (9, 40):
        seen: list[Progress] = []
        chunked = tiny_vqvae.decode(codes, level, chunk_tokens=chunk, progress=seen.append)
        torch.testing.assert_close(chunked, full, rtol=0, atol=1e-5)
        assert len(seen) == -(-157 // chunk) and seen[-1] == Progress("decode", 157, 157, level=level)


def test_too_small_context_would_differ(tiny_vqvae: VQVAE) -> None:
    """The overlap is needed: chunks without context give different audio (so the test above can fail)."""
    from model.vqvae.chunked import decode_in_chunks

    codes = torch.randint(0, 32, (1, 100))
    full = tiny_vqvae.decode(codes, 1, chunk_tokens=0)
    block = tiny_vqvae.bottleneck.level_blocks[1]
    no_context = decode_in_chunks(
        lambda c: tiny_vqvae.decoders[1](block.dequantise(c)), codes, 1, 8, 10, 0, None
    ).permute(0, 2, 1)
    assert (no_context - full).abs().max() > 1e-3


def test_bad_inputs_raise_input_error(tiny_vqvae: VQVAE) -> None:
    with pytest.raises(InputError, match="batch, samples, 1"):
        tiny_vqvae.encode(torch.randn(2, 100))
    with pytest.raises(InputError, match="at least 16"):
        tiny_vqvae.encode(torch.randn(1, 10, 1))
    with pytest.raises(InputError, match="levels"):
        tiny_vqvae.encode(torch.randn(1, 100, 1), levels=[3])
    with pytest.raises(InputError, match="0..31"):
        tiny_vqvae.decode(torch.tensor([[0, 32]]), 0)
    with pytest.raises(InputError, match="int64"):
        tiny_vqvae.decode(torch.zeros(1, 4, dtype=torch.int32), 0)
    with pytest.raises(InputError, match="chunk_tokens"):
        tiny_vqvae.decode(torch.zeros(1, 4, dtype=torch.long), 0, chunk_tokens=-1)


def test_training_forward_needs_whole_top_tokens(tiny_vqvae: VQVAE) -> None:
    with pytest.raises(InputError, match="multiple of the top hop 16"):
        tiny_vqvae(torch.randn(1, 100, 1))
    out = tiny_vqvae(torch.randn(1, 96, 1))
    assert [lv.codes.shape for lv in out.levels] == [(1, 24), (1, 12), (1, 6)]


def test_unchunked_encode_reports_progress_once(tiny_vqvae: VQVAE) -> None:
    seen: list[Progress] = []
    tiny_vqvae.encode(torch.randn(1, 300, 1), chunk_samples=0, progress=seen.append)
    assert seen == [Progress("encode", 300, 300)]
