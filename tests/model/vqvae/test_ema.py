import math

import torch

from model.vqvae import VQVAE, CodebookEMA, make_codebook_emas

from .conftest import tiny_config


def test_ema_statistics_are_buffers_in_its_state_dict() -> None:
    emas = make_codebook_emas(tiny_config())
    assert set(emas.state_dict()) == {f"{lv}.{name}" for lv in range(3) for name in ("k_sum", "k_elem", "initialised")}
    assert emas[0].k_sum.shape == (32, 8) and emas[0].k_elem.shape == (32,)
    # and the model's own state dict stays exactly Jukebox's: only the codebooks
    assert [k for k in VQVAE(tiny_config()).state_dict() if k.startswith("bottleneck")] == [
        f"bottleneck.level_blocks.{lv}.k" for lv in range(3)
    ]


def test_init_from_small_batch_tiles_with_noise() -> None:
    ema = CodebookEMA(32, 8)
    k = torch.zeros(32, 8)
    x = torch.randn(5, 8)
    ema.init_from_batch(k, x)
    assert ema.is_initialised and torch.equal(ema.k_sum, k) and torch.all(ema.k_elem == 1)
    nearest = torch.cdist(k, x).min(dim=1)
    assert nearest.values.max() < 0.2 and nearest.values.min() > 0  # batch vectors plus small noise
    assert nearest.indices.unique().numel() == 5  # every batch vector was used
    noise = (k - x[nearest.indices]).std()
    assert 0.3 * 0.01 / math.sqrt(8) < noise < 3 * 0.01 / math.sqrt(8)


def test_update_moves_codes_toward_assigned_means() -> None:
    ema = CodebookEMA(4, 2, decay=0.5, revival_threshold=0.1)
    k = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    ema.restore_k(k, num_tokens=8)  # counts 2 per code
    x = torch.tensor([[0.2, 0.0], [0.0, 0.2], [1.0, 0.2], [1.2, 0.0], [0.0, 1.2], [0.2, 1.0], [1.0, 1.2], [1.2, 1.0]])
    codes = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    metrics = ema.update(k, x, codes)
    means = torch.stack([x[codes == c].mean(0) for c in range(4)])
    # k_sum = 0.5 * (2 k) + 0.5 * (2 means); k_elem = 0.5 * 2 + 0.5 * 2 -> k = (k + means) / 2
    original = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    torch.testing.assert_close(k, (original + means) / 2)
    assert int(metrics.used_curr) == 4 and int(metrics.usage) == 4
    torch.testing.assert_close(metrics.entropy, torch.tensor(math.log(4)), atol=1e-6, rtol=0)
    assert float(metrics.dk) > 0


def test_dead_codes_are_restarted_at_batch_vectors() -> None:
    ema = CodebookEMA(8, 4, decay=0.9, revival_threshold=1.0)
    k = torch.randn(8, 4) + 100.0  # far from any data
    ema.restore_k(k, num_tokens=8)  # counts 1 each
    x = torch.randn(64, 4)
    codes = torch.zeros(64, dtype=torch.long)  # everything lands on code 0
    metrics = ema.update(k, x, codes)
    assert int(metrics.usage) == 1  # codes 1..7 decayed to 0.9 < 1 and were restarted
    distances = torch.cdist(k[1:], x).min(dim=1).values
    assert distances.max() < 1e-5  # restarted exactly at batch vectors (batch larger than codebook: no noise)
    assert k[0].abs().max() > 10  # the live code only moved by EMA


def test_injected_collectives_are_called() -> None:
    calls: list[tuple[str, tuple[int, ...]]] = []
    ema = CodebookEMA(
        8, 4,
        all_reduce=lambda t: calls.append(("all_reduce", tuple(t.shape))),
        broadcast=lambda t: calls.append(("broadcast", tuple(t.shape))),
    )
    k = torch.zeros(8, 4)
    ema.init_from_batch(k, torch.randn(16, 4))
    ema.update(k, torch.randn(16, 4), torch.randint(0, 8, (16,)))
    assert calls == [("broadcast", (8, 4)), ("broadcast", (8, 4)), ("all_reduce", (8, 4)), ("all_reduce", (8,))]


def test_training_forward_initialises_and_updates_codebooks() -> None:
    vq = VQVAE(tiny_config()).train()
    emas = make_codebook_emas(vq.config)
    audio = torch.randn(2, 256, 1) * 0.3
    before = vq.bottleneck.level_blocks[0].k.clone()
    out = vq(audio, ema=emas)
    assert all(bool(e.initialised) for e in emas)
    assert not torch.equal(before, vq.bottleneck.level_blocks[0].k)
    assert all(level.codebook is not None for level in out.levels)
    vq.eval()
    assert all(level.codebook is None for level in vq(audio, ema=emas).levels)  # no updates in eval mode
