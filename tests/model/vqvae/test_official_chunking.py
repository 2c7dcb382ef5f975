import pytest
import torch

from model.vqvae import VQVAE, official_vqvae_config


@pytest.mark.slow
def test_official_config_chunked_equals_full_on_seconds_of_audio() -> None:
    vq = VQVAE(official_vqvae_config()).eval()
    audio = torch.randn(1, 3 * 44100 + 77, 1) * 0.2  # ~3 s, odd length
    full = vq.encode(audio, chunk_samples=0)
    chunked = vq.encode(audio, chunk_samples=2**15)  # 5 chunks, each with ~1 s context per side
    assert [c.shape[1] for c in full] == [audio.shape[1] // h for h in (8, 32, 128)]
    assert all(torch.equal(a, b) for a, b in zip(full, chunked))  # (a float near-tie could flip one code)
    for level, chunk in ((0, 2**12), (2, 2**9)):
        whole = vq.decode(full[level], level, chunk_tokens=0)
        pieces = vq.decode(full[level], level, chunk_tokens=chunk // 2)
        torch.testing.assert_close(pieces, whole, rtol=0, atol=1e-4)
