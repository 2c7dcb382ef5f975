import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from common.errors import Cancelled, ConfigError, InputError
from common.progress import CancelToken
from conditioning import grid
from conditioning.ids import parse_id_lines
from conditioning.labels import Metadata, song_labels
from conditioning.lyrics import timed_lyric_window, vocab_for
from conditioning.tempo import TempoMap
from model.conditioners import ConditionerConfig, ConditionerSet
from model.conditioners.lora import LoraConfig, attach_lora
from model.conditioners.window import LevelFeatures
from model.prior import presets
from model.prior.prior import JukeboxPrior
from model.sampling.loading import load_sampling_model
from model.sampling.setup import label_set_for
from model.tasks.conditions import JobConditions
from model.train.prior_checkpoint import load_checkpoint
from model.train.prior_data import PriorTrainItem, PriorWindows
from model.train.prior_train_config import PriorTrainConfig, lr_at
from model.train.prior_trainer import save_trained, train_prior
from tests.helpers.factories import ARTISTS, GENRES, SR, tiny_model_dir

HOP_TOP = 128
PATTERN = np.tile(np.array([3, 9, 17, 25, 33, 41, 49, 57]), 64)  # period 8: about 0 bits per token once seen


def _prior(config=None, seed: int = 0) -> JukeboxPrior:  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    return JukeboxPrior(config or presets.tiny_prior())


def _items(n: int = 3, length: int = 400) -> list[PriorTrainItem]:
    return [
        PriorTrainItem({2: PATTERN[i : i + length]}, total_length=length * HOP_TOP, artist_id=1, genre_ids=(2,))
        for i in range(n)
    ]


def _quick(**changes) -> PriorTrainConfig:  # type: ignore[no-untyped-def]
    values = dict(steps=12, batch_size=2, lr=3e-3, warmup_steps=2, log_every=3, checkpoint_every=6, ema_decay=0.9)
    return PriorTrainConfig(**{**values, **changes})


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def test_loss_falls_well_below_the_codebook_on_a_periodic_pattern(tmp_path: Path) -> None:
    prior = _prior()
    config = PriorTrainConfig(steps=60, batch_size=4, lr=3e-3, warmup_steps=5, log_every=10, ema_decay=0.0)
    result = train_prior(prior, _items(), config, run_dir=tmp_path, val_items=_items(1))
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [line for line in lines if line["kind"] == "train"]
    assert [line["step"] for line in train] == [10, 20, 30, 40, 50, 60]
    assert {"loss", "gen_loss", "prime_loss", "lr", "grad_norm", "seconds", "tokens_per_s"} <= set(train[0])
    assert train[0]["gen_loss"] > 4.0 and train[-1]["gen_loss"] < 0.4 * math.log2(64)
    assert result.validation is not None and result.validation["val_gen_loss"] < 0.4 * math.log2(64)
    assert result.step == 60 and result.resumed_from is None and not prior.training


def _run_with_conditioner(run_dir: Path, cancel_at: int | None = None):  # type: ignore[no-untyped-def]
    """An upsampler with a conditioner (dropout on) and EMA: every source of randomness in one run."""
    torch.manual_seed(0)
    config = presets.tiny_upsampler(1)
    prior = JukeboxPrior(config)
    conditioners = ConditionerSet([ConditionerConfig("grid", "grid", 3, 32, 1, hidden=8, kernel=3, dropout=0.5)])
    rng = np.random.default_rng(0)
    items = []
    for _ in range(2):
        frames = rng.normal(size=(160, 3)).astype(np.float32)
        features = {1: {"grid": LevelFeatures(frames, np.ones(160, np.float32))}}
        codes = {1: rng.integers(0, 64, 160), 2: rng.integers(0, 64, 40)}
        items.append(PriorTrainItem(codes, total_length=160 * 32, features=features))
    token = CancelToken()

    def log(line):  # type: ignore[no-untyped-def]
        if cancel_at is not None and line["step"] >= cancel_at:
            token.cancel("simulated crash")

    result = train_prior(prior, items, _quick(), run_dir=run_dir, conditioners=conditioners, log=log, cancel=token)
    return prior, conditioners, result


def test_a_run_stopped_after_its_checkpoint_resumes_to_the_same_weights(tmp_path: Path) -> None:
    prior_a, cond_a, result_a = _run_with_conditioner(tmp_path / "a")
    with pytest.raises(Cancelled):  # stopped at step 9: the work after the step-6 checkpoint is lost
        _run_with_conditioner(tmp_path / "b", cancel_at=9)
    assert load_checkpoint(tmp_path / "b").step == 6  # type: ignore[union-attr]
    prior_b, cond_b, result_b = _run_with_conditioner(tmp_path / "b")
    assert result_b.resumed_from == 6 and result_b.step == 12
    for a, b in ((prior_a, prior_b), (cond_a, cond_b)):
        sa, sb = a.state_dict(), b.state_dict()
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert result_a.ema is not None and result_b.ema is not None
    assert all(torch.equal(result_a.ema.shadow[k], result_b.ema.shadow[k]) for k in result_a.ema.shadow)

    def steady(path: Path) -> list[dict]:
        lines = [json.loads(line) for line in path.read_text().splitlines()]
        return [{k: v for k, v in line.items() if k not in ("seconds", "tokens_per_s")} for line in lines]

    assert steady(tmp_path / "a" / "metrics.jsonl") == steady(tmp_path / "b" / "metrics.jsonl")  # none twice


_KILLED_RUN = """
import sys, time, numpy as np, torch
from model.prior import presets
from model.prior.prior import JukeboxPrior
from model.train.prior_data import PriorTrainItem
from model.train.prior_train_config import PriorTrainConfig
from model.train.prior_trainer import train_prior
from tests.model.train.test_prior_trainer import _items, _quick
torch.manual_seed(0)
prior = JukeboxPrior(presets.tiny_prior())
def log(line):
    if line["step"] >= 9:
        open(sys.argv[2], "w").close()
        time.sleep(120)
train_prior(prior, _items(), _quick(), run_dir=sys.argv[1], log=log)
"""


def test_a_run_killed_with_sigkill_resumes_to_the_same_weights(tmp_path: Path) -> None:
    straight = _prior()
    train_prior(straight, _items(), _quick(), run_dir=tmp_path / "straight")
    ready = tmp_path / "at-step-9"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", _KILLED_RUN, str(tmp_path / "killed"), str(ready)], env=env,
                             cwd=Path(__file__).parents[3])  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), f"the child run did not reach step 9 (exit {child.poll()})"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
    resumed = _prior()
    result = train_prior(resumed, _items(), _quick(), run_dir=tmp_path / "killed")
    assert result.resumed_from == 6
    sa, sb = straight.state_dict(), resumed.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resuming_with_other_settings_or_data_is_refused(tmp_path: Path) -> None:
    train_prior(_prior(), _items(), _quick(steps=6), run_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"lr: 0\.003 -> 0\.001"):
        train_prior(_prior(), _items(), _quick(steps=6, lr=1e-3), run_dir=tmp_path)
    with pytest.raises(ConfigError, match="training items"):
        train_prior(_prior(), _items(length=390), _quick(steps=6), run_dir=tmp_path)
    again = train_prior(_prior(), _items(), _quick(steps=6, log_every=1), run_dir=tmp_path)  # cadence may change
    assert again.resumed_from == 6 and again.logs == ()


def test_the_ema_differs_from_the_live_weights_and_is_what_is_saved(tmp_path: Path) -> None:
    model_dir = tiny_model_dir(tmp_path / "model")
    prior = _prior()
    result = train_prior(prior, _items(), _quick(ema_decay=0.8), run_dir=tmp_path / "run")
    assert result.ema is not None
    live = _params(prior)
    saved = save_trained(model_dir, prior, result.ema)
    assert saved == ["prior_level_2"]
    assert all(torch.equal(live[k], v) for k, v in prior.state_dict().items())  # live weights put back
    loaded = load_sampling_model(model_dir).priors[2].state_dict()
    shadow = {k.removeprefix("prior."): v for k, v in result.ema.shadow.items()}
    assert all(torch.equal(loaded[k], shadow[k]) for k in shadow)
    assert any(not torch.equal(live[k], shadow[k]) for k in shadow)


def test_adapters_mode_trains_only_the_adapters_and_conditioners(tmp_path: Path) -> None:
    prior = _prior()
    base = _params(prior)
    lora = attach_lora(prior, LoraConfig(level=2, rank=2))
    conditioners = ConditionerSet([ConditionerConfig("grid", "grid", 3, 32, 2, hidden=8, kernel=3)])
    lora_before, cond_before = _params(lora), _params(conditioners)
    items = [
        PriorTrainItem(item.codes, item.total_length, 1, (2,), features={2: {"grid": LevelFeatures(
            np.random.default_rng(i).normal(size=(400, 3)).astype(np.float32), np.ones(400, np.float32))}})
        for i, item in enumerate(_items())
    ]  # fmt: skip
    result = train_prior(prior, items, _quick(train="adapters"), run_dir=tmp_path, conditioners=conditioners, lora=lora)
    assert all(torch.equal(base[k], v) for k, v in prior.state_dict().items())
    assert any(not torch.equal(lora_before[k], v) for k, v in lora.state_dict().items())
    assert any(not torch.equal(cond_before[k], v) for k, v in conditioners.state_dict().items())
    assert all(p.requires_grad for p in prior.parameters())  # the freeze lasts for the call only
    assert result.ema is not None and not any(k.startswith("prior.") for k in result.ema.shadow)
    model_dir = tiny_model_dir(tmp_path / "model")
    assert save_trained(model_dir, prior, result.ema, conditioners, lora, with_prior=False) == [
        "conditioner.level2.grid", "adapter.level2",
    ]  # fmt: skip


def _switching_items(seed: int, n: int = 3, length: int = 400) -> list[PriorTrainItem]:
    """Codes 5 or 40 at random, the feature saying which: only a conditioner can know the next code."""
    rng = np.random.default_rng(seed)
    items = []
    for _ in range(n):
        bits = rng.integers(0, 2, length)
        frames = np.stack([bits * 2.0 - 1.0, np.zeros(length)], axis=1).astype(np.float32)
        features = {2: {"grid": LevelFeatures(frames, np.ones(length, np.float32))}}
        items.append(PriorTrainItem({2: np.where(bits == 1, 40, 5)}, length * HOP_TOP, 1, (2,), features=features))
    return items


def test_a_conditioner_whose_features_decide_the_codes_lowers_the_loss(tmp_path: Path) -> None:
    config = PriorTrainConfig(steps=80, batch_size=4, lr=3e-3, warmup_steps=5, log_every=20, ema_decay=0.0)
    losses = {}
    for conditioned in (False, True):
        conditioners = ConditionerSet([ConditionerConfig("grid", "grid", 2, 32, 2, hidden=16, kernel=3, dropout=0.0)])
        result = train_prior(_prior(), _switching_items(0), config, run_dir=tmp_path / str(conditioned),
                             conditioners=conditioners if conditioned else None, val_items=_switching_items(1))  # fmt: skip
        assert result.validation is not None
        losses[conditioned] = result.validation["val_gen_loss"]
    assert losses[False] > 0.8  # a fair coin per token: 1 bit is the best without the condition
    assert losses[True] < losses[False] - 0.4


def test_window_labels_are_what_sampling_builds(tmp_path: Path) -> None:
    config = presets.tiny_prior_separate()  # labels, time signal and an 8-token lyric window
    lyrics = "an old song with many words about the sea"
    item = PriorTrainItem({2: PATTERN[:400]}, total_length=400 * HOP_TOP + 77, artist_id=1, genre_ids=(1,), lyrics=lyrics)
    windows = PriorWindows(config, [item])
    ls = label_set_for(config)
    artists, genres = parse_id_lines(ARTISTS["v2"], "artist", "v2"), parse_id_lines(GENRES["v2"], "genre", "v2")
    song = song_labels(Metadata("ada", "jazz", lyrics, total_length=item.total_length), ls, artists, genres)
    for start in (0, 37, 400 - config.n_ctx):
        assert torch.equal(windows.labels(0, start), song.for_window(start, config.hop_length, config.n_ctx).y)
    batch = windows.batch(3, 5)
    for row, (_, start) in enumerate(batch.windows):
        assert torch.equal(batch.codes[row], torch.from_numpy(PATTERN[start : start + config.n_ctx]))
        assert batch.labels is not None and int(batch.labels[row, 1]) == start * HOP_TOP


def test_timed_lyrics_are_used_when_the_piece_has_word_times() -> None:
    config = presets.tiny_prior_separate()
    words = (("hello", 0.1, 0.3), ("blue", 0.5, 0.7), ("sky", 0.2 * 50, 0.2 * 50 + 0.1))
    item = PriorTrainItem({2: PATTERN[:400]}, 400 * HOP_TOP, 1, (1,), lyrics="hello blue sky", words=words)
    windows = PriorWindows(config, [item])
    n_tok = config.lyrics.n_tokens
    for start in (0, 100, 340):
        y = windows.labels(0, start)
        expected = timed_lyric_window(words, vocab_for("v2"), n_tok, start * HOP_TOP / SR, config.sample_length / SR)
        assert y[config.n_labels :].tolist() == expected.tokens
    assert windows.labels(0, 100)[config.n_labels :].tolist() == [0] * n_tok  # no word sung there
    untimed = PriorWindows(config, [PriorTrainItem(item.codes, item.total_length, 1, (1,), lyrics=item.lyrics)])
    assert untimed.labels(0, 100)[config.n_labels :].tolist() != [0] * n_tok  # the linear spread


def test_upsampler_windows_take_the_level_above_over_the_same_span() -> None:
    config = presets.tiny_upsampler(0)
    rng = np.random.default_rng(0)
    item = PriorTrainItem({0: rng.integers(0, 64, 300), 1: rng.integers(0, 64, 75)}, total_length=300 * 8)
    batch = PriorWindows(config, [item]).batch(0, 16)
    r = config.cond_downsample
    for row, (_, start) in enumerate(batch.windows):
        assert start % r == 0 and start + config.n_ctx <= 300
        assert batch.upper is not None
        assert torch.equal(batch.upper[row], torch.from_numpy(item.codes[1][start // r : (start + config.n_ctx) // r]))


def test_job_conditions_reach_the_conditioner_inputs() -> None:
    config = presets.tiny_prior()
    grid_net = ConditionerConfig("grid", "grid", grid.N_FEATURES, 32, 2, hidden=8, kernel=3)
    tempo = JobConditions(tempo=TempoMap([(0.0, 120.0)]))
    items = [PriorTrainItem({2: PATTERN[:400]}, 400 * HOP_TOP, conditions=tempo), _items(1)[0]]
    batch = PriorWindows(config, items, [grid_net]).windows([(0, 64), (1, 0)])
    features = grid.grid_features(TempoMap([(0.0, 120.0)]), sample_rate=SR, hop=HOP_TOP, start_s=0.0, n_frames=400)
    inputs = batch.conditions["grid"]
    assert np.allclose(inputs.features[0].numpy(), features.as_matrix()[64:96])
    assert float(inputs.coverage[0].min()) == 1.0 and float(inputs.coverage[1].max()) == 0.0  # row 1 has none


def test_bf16_autocast_trains(tmp_path: Path) -> None:
    result = train_prior(_prior(), _items(), _quick(steps=4, precision="bf16"), run_dir=tmp_path)
    assert all(math.isfinite(line["loss"]) for line in result.logs)


def test_schedule_warms_up_and_decays_to_the_final_fraction() -> None:
    for decay in ("linear", "cosine"):
        c = PriorTrainConfig(steps=20, lr=1.0, warmup_steps=4, decay=decay, final_lr_fraction=0.1)  # type: ignore[arg-type]
        lrs = [lr_at(s, c) for s in range(20)]
        assert lrs[:4] == [0.25, 0.5, 0.75, 1.0] and lrs[4] == 1.0
        assert lrs[-1] == pytest.approx(0.1) and all(a >= b for a, b in zip(lrs[4:], lrs[5:]))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (dict(steps=0), "steps = 0"),
        (dict(decay="exp"), "decay 'exp'"),
        (dict(precision="fp16"), "precision 'fp16'"),
        (dict(ema_decay=1.0), "ema_decay"),
        (dict(train="everything"), "train 'everything'"),
    ],
)
def test_bad_configs_are_config_errors(changes: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        PriorTrainConfig(**changes)


def test_bad_runs_and_items_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs LoRA adapters"):
        train_prior(_prior(), _items(), _quick(train="adapters"), run_dir=tmp_path)
    with pytest.raises(ConfigError, match="at least one conditioner"):
        train_prior(_prior(), _items(), _quick(train="conditioners"), run_dir=tmp_path)
    config = presets.tiny_prior()
    with pytest.raises(InputError, match="at least n_ctx = 32 codes"):
        PriorWindows(config, [PriorTrainItem({2: PATTERN[:20]}, 200 * HOP_TOP)])
    with pytest.raises(InputError, match="genre ids"):
        PriorWindows(config, [PriorTrainItem({2: PATTERN[:400]}, 400 * HOP_TOP, genre_ids=(1, 2, 3))])
    with pytest.raises(InputError, match="below this prior's minimum"):
        PriorWindows(config, [PriorTrainItem({2: PATTERN[:400]}, 100)])
    with pytest.raises(InputError, match=r"codes must lie in \[0, 63\]"):
        PriorWindows(config, [PriorTrainItem({2: PATTERN[:400] + 30}, 400 * HOP_TOP)])
    with pytest.raises(InputError, match="level-2 codes"):
        PriorWindows(presets.tiny_upsampler(1), [PriorTrainItem({1: PATTERN[:200]}, 200 * 32)])
