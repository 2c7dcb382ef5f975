"""ModelBackend.run on a tiny real model: lengths, region end, seeds, levels, previews, cancel, errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.backend.models import ModelBackend, ModelBackendConfig, from_config
from common.errors import AudioError, Cancelled, CheckpointError, CodesError, ConfigError, InputError
from common.progress import CancelToken, Progress
from model import tasks
from model.checkpoint.builders import model_identity
from model.codes import CodesMeta, save_codes
from model.sampling.params import SamplingParams
from model.tasks.render import decode_take
from model.tasks.song import Labelling, Song
from tests.bridge.model_rig import Recorder, job, make_models, rendered, write_region
from tests.helpers.factories import SR

pytestmark = pytest.mark.timeout(60)
FRAMES = round(0.05 * SR)  # 2205 samples: the take of a 0.05 s job at the model's 44.1 kHz


MODELS: list[Path] = []  # the module's model folder, for the codes files' model identity


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    MODELS[:] = [make_models(tmp_path_factory.mktemp("models"))]
    return MODELS[0]


@pytest.fixture(scope="module")
def backend(models: Path) -> ModelBackend:
    return ModelBackend(models, ModelBackendConfig(precision="fp32", max_loaded=3))


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_region(tmp_path_factory.mktemp("audio") / "region.wav", 1000)  # 7 top tokens + 104 samples


def test_models_are_listed_from_a_folder_a_mapping_or_one_directory(models: Path) -> None:
    assert ModelBackend(models).models() == ["codec", "plain", "sketch", "tiny"]
    assert ModelBackend({"mine": models / "tiny"}).models() == ["mine"]
    assert ModelBackend(models / "tiny").models() == ["tiny"]
    with pytest.raises(CheckpointError, match="no model named 'nope'; available: codec, plain, sketch, tiny"):
        ModelBackend(models).load("nope", lambda p: None)


def test_load_reports_progress_and_unload_frees(models: Path) -> None:
    b = ModelBackend(models, ModelBackendConfig(max_loaded=1))
    seen: list[Progress] = []
    b.load("tiny", seen.append)
    assert b.loaded() == ["tiny"] and seen[-1].stage == "load" and seen[-1].fraction == 1.0
    b.load("codec", seen.append)
    assert b.loaded() == ["codec"]  # max_loaded 1 evicts the older model
    b.unload("codec")
    assert b.loaded() == []


def test_a_damaged_model_directory_fails_to_load_with_a_checkpoint_error(models: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(models / "sketch", tmp_path / "broken", symlinks=True)
    weights = tmp_path / "broken" / "prior_level_2.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    b = ModelBackend({"broken": tmp_path / "broken"})
    with pytest.raises(CheckpointError, match="prior_level_2.safetensors"):
        b.load("broken", lambda p: None)
    assert b.loaded() == []


def test_continue_starts_at_the_region_end_with_previews_before_the_full_render(backend: ModelBackend, region: Path) -> None:
    events = Recorder()
    takes = rendered(backend.run(job(region=region, candidates=2, seeds=(3, 4)), events, CancelToken()))
    assert [(t.index, t.seed, t.level, t.sample_rate, t.audio.shape) for t in takes] == [
        (0, 3, 0, SR, (FRAMES, 1)), (1, 4, 0, SR, (FRAMES, 1))
    ]  # fmt: skip
    assert takes[0].audio.dtype == np.float32 and not np.array_equal(takes[0].audio, takes[1].audio)
    assert events.kinds() == ["level_done", "preview", "preview", "level_done", "level_done"]
    assert events.of("level_done") == [2, 1, 0]
    previews = events.of("preview")
    assert [(p.index, p.level, p.audio.shape) for p in previews] == [(0, 2, (FRAMES, 1)), (1, 2, (FRAMES, 1))]  # type: ignore[attr-defined]
    progress = events.of("progress")
    assert {p.level for p in progress if p.stage == "sample"} == {0, 1, 2}  # type: ignore[attr-defined]


def _continue(backend: ModelBackend, region: Path) -> tasks.TaskResult:
    """The task a default continue job of ``region`` runs, called directly."""
    from model.audio import read_audio

    backend.load("tiny", lambda p: None)
    model = backend._loaded["tiny"]
    audio = read_audio(region, sample_rate=SR, channels=1).samples
    params = SamplingParams(precision="fp32", seeds=(7,))
    return tasks.continue_region(model, audio, FRAMES, Song("ada", "jazz"), params, Labelling(backend._ids_dir("tiny")))


def test_continue_primes_with_the_region_tail_and_cuts_the_take_at_the_region_end(backend: ModelBackend, region: Path) -> None:
    result = _continue(backend, region)
    model = backend._loaded["tiny"]
    whole, tail = 896, 104  # the 1000-sample region: 7 whole top tokens (128 samples) + 104 samples
    context = 7 * 128  # shorter than the top window (32 tokens minus a hop of 4), so all of it
    assert result.task == "continue" and result.start == context + tail and result.frames == FRAMES
    length = result.sample.sample_length
    assert length % 128 == 0 and length >= result.start + result.frames
    from model.audio import read_audio

    audio = torch.from_numpy(read_audio(region, sample_rate=SR, channels=1).samples[whole - context : whole])[None]
    encoded = model.vqvae.encode(audio)
    assert all(torch.equal(c[:, : e.shape[1]], e) for c, e in zip(result.sample.codes, encoded))  # the prime is kept
    labels = result.labels[2]
    assert labels.total_length == SR and labels.offset == 0  # 0.07 s song raised to the tiny prior's 1 s minimum
    # decoding only the take's stretch equals cutting it out of the whole decode
    codes = torch.randint(0, 64, (2, length // 8))
    whole_audio = model.vqvae.decode(codes, 0).numpy()
    part = decode_take(model, codes, 0, result.start, result.frames)
    np.testing.assert_allclose(part, np.clip(whole_audio[:, result.start : result.start + result.frames], -1, 1), atol=1e-5)


def test_a_region_longer_than_the_model_allows_is_told_as_a_song_of_the_maximum_length(
    backend: ModelBackend, tmp_path: Path
) -> None:
    long_region = write_region(tmp_path / "long.wav", 25 * SR)  # the tiny prior takes songs of 1..20 s
    result = _continue(backend, long_region)
    labels = result.labels[2]
    assert labels.total_length == 20 * SR - 1  # clamped just below the maximum
    assert labels.offset + result.sample.sample_length == labels.total_length  # the sampled stretch ends the song
    assert result.start == 28 * 128 + (25 * SR) % 128  # context: one top window (32 tokens) minus a hop of 4
    takes = rendered(backend.run(job(region=long_region), Recorder(), CancelToken()))
    assert takes[0].audio.shape == (FRAMES, 1)


def test_seeds_reproduce_and_do_not_depend_on_the_other_candidates(backend: ModelBackend, region: Path) -> None:
    a = rendered(backend.run(job(region=region, candidates=2, seeds=(11, 12)), Recorder(), CancelToken()))
    b = rendered(backend.run(job(region=region, candidates=1, seeds=(12,)), Recorder(), CancelToken()))
    c = rendered(backend.run(job(region=region, candidates=1, seeds=(13,)), Recorder(), CancelToken()))
    np.testing.assert_allclose(a[1].audio, b[0].audio, atol=1e-6)  # same codes; the decoder rounds per batch size
    assert not np.array_equal(b[0].audio, c[0].audio)


def test_generate_and_upsample(backend: ModelBackend, tmp_path: Path) -> None:
    events = Recorder()
    takes = rendered(backend.run(job("generate", seconds=0.01, seeds=(1,)), events, CancelToken()))
    assert takes[0].audio.shape == (441, 1)  # sampled to the upsamplers' one-window minimum, then trimmed
    assert events.of("level_done") == [2, 1, 0] and len(events.of("preview")) == 1

    codes = _codes(tmp_path)
    events = Recorder()
    takes = rendered(backend.run(job("upsample", codes=codes, seconds=1.0, candidates=2, seeds=(1, 2)), events, CancelToken()))
    assert [t.audio.shape for t in takes] == [(2176, 1), (2176, 1)]  # the codes' length, not more
    assert events.kinds()[:2] == ["preview", "preview"] and events.of("level_done") == [1, 0]

    events = Recorder()  # extend: the take follows the codes' 17 top tokens
    takes = rendered(backend.run(job("extend", codes=codes, seconds=0.05, seeds=(1,)), events, CancelToken()))
    assert takes[0].audio.shape == (FRAMES, 1) and events.of("level_done") == [2, 1, 0]


def test_a_model_with_fewer_priors_renders_from_its_lowest_level(backend: ModelBackend, region: Path) -> None:
    events = Recorder()
    takes = rendered(backend.run(job(region=region, model="sketch"), events, CancelToken()))
    assert takes[0].level == 2 and takes[0].audio.shape == (FRAMES, 1)
    assert events.kinds() == ["level_done"]  # the top level is the result: no separate preview


def test_a_model_without_label_conditioning_ignores_artist_and_genre(backend: ModelBackend, region: Path) -> None:
    events = Recorder()
    takes = rendered(backend.run(job(region=region, model="plain", artist="nobody at all", genre="none"), events, CancelToken()))
    assert takes[0].level == 1 and takes[0].audio.shape == (FRAMES, 1)  # no level-0 prior: rendered from level 1
    assert events.of("level_done") == [2, 1] and len(events.of("preview")) == 1


def test_cancel_returns_within_200_ms_and_the_backend_stays_usable(backend: ModelBackend, region: Path) -> None:
    token = CancelToken()
    cancelled_at: list[float] = []

    def cancel_now() -> None:
        cancelled_at.append(time.monotonic())
        token.cancel("user")

    def cancel_in_level_1(item: Progress) -> None:
        if item.level == 1 and not cancelled_at:
            threading.Timer(0.0, cancel_now).start()  # from another thread, as a client's cancel arrives

    events = Recorder(on_progress=cancel_in_level_1)
    with pytest.raises(Cancelled):
        backend.run(job(region=region, seconds=0.5), events, token)
    returned = time.monotonic()
    assert cancelled_at and returned - cancelled_at[0] < 0.2, f"cancel took {returned - cancelled_at[0]:.3f} s"
    assert events.of("level_done") == [2]
    assert len(backend.run(job(region=region), Recorder(), CancelToken())) == 1


def test_auto_precision_is_the_default_and_follows_the_batch(models: Path) -> None:
    b = ModelBackend(models)
    assert b.config.precision == "auto"
    takes = rendered(b.run(job("generate", seconds=0.03, model="sketch"), Recorder(), CancelToken()))
    assert takes[0].audio.shape == (1323, 1) and np.isfinite(takes[0].audio).all()
    assert b._loaded["sketch"].priors[2].prior.x_emb.weight.dtype == torch.float32  # 1 row on CPU: fp32
    bf16 = ModelBackend(models, ModelBackendConfig(precision="bf16"))
    rendered(bf16.run(job("generate", seconds=0.03, model="sketch"), Recorder(), CancelToken()))
    assert bf16._loaded["sketch"].priors[2].prior.x_emb.weight.dtype == torch.bfloat16


def test_the_step_option_reaches_every_level(models: Path) -> None:
    b = ModelBackend(models, ModelBackendConfig(step="eager"))
    b.load("sketch", lambda p: None)
    assert {lv.step for lv in b._loaded["sketch"].levels().values()} == {"eager"}
    with pytest.raises(ConfigError, match="model_backend.step 'fast' is not one of auto, compiled, eager"):
        ModelBackendConfig.from_dict({"step": "fast"})


@pytest.mark.parametrize(
    "make,error,words",
    [
        (lambda r, t: job(region=r, artist="nobody at all"), InputError, "artist"),
        (lambda r, t: job(region=t / "missing.wav"), AudioError, "no such file"),
        (lambda r, t: job(region=_garbage(t)), AudioError, "garbage.wav"),
        (lambda r, t: job(region=write_region(t / "short.wav", 100)), InputError, "at least one top-level token"),
        (lambda r, t: job(region=r, seconds=25.0), InputError, "too long for model .tiny.: use less than 20 s"),
        (lambda r, t: job(region=r, seconds=19.99), InputError, "takes songs shorter than 20 s"),
        (lambda r, t: job(region=r, model="codec"), InputError, "cannot run 'continue' jobs .it has no top-level prior .level 2"),
        (lambda r, t: job(region=r, temperatures=(0.9, 0.9)), InputError, "2 temperature values"),
        (lambda r, t: job(region=r, guidance=(1.0,)), InputError, "guidance"),
        (lambda r, t: job("upsample", codes=t / "none.npz"), CodesError, "none.npz"),
        (lambda r, t: job("upsample", codes=r), CodesError, "region.wav"),
        (lambda r, t: job("upsample", codes=_codes(t), model="sketch"), InputError, "no prior for level 1"),
        (lambda r, t: job("encode", region=r, candidates=2, seeds=(1, 2)), InputError, "send candidates 1"),
        (lambda r, t: job("encode", region=write_region(t / "short.wav", 100)), InputError, "encoding needs at least"),
        (lambda r, t: job("upsample", codes=_codes(t, model="other@0123"), candidates=1), CodesError, "made by model other@0123"),
        (lambda r, t: job("extend", codes=_codes(t, model="other@0123")), CodesError, "made by model other@0123"),
    ],
)
def test_bad_input_is_a_clean_segue_error(backend: ModelBackend, region: Path, tmp_path: Path, make, error, words) -> None:  # type: ignore[no-untyped-def]
    events = Recorder()
    with pytest.raises(error, match=words):
        backend.run(make(region, tmp_path), events, CancelToken())
    assert events.of("level_done") == []  # refused before any sampling


def _codes(folder: Path, model: str = "") -> Path:
    """A codes file of 17 random top tokens (2176 samples) and silent lower levels, made by the tiny model's
    VQ-VAE (or by ``model``, a name@hash)."""
    top = torch.randint(0, 64, (1, 17), generator=torch.Generator().manual_seed(0))
    meta = CodesMeta(SR, (8, 32, 128), 64, model or model_identity(MODELS[0] / "tiny"), 2176)
    lower = [torch.zeros(1, 272, dtype=torch.long), torch.zeros(1, 68, dtype=torch.long)]
    return save_codes(folder / "sketch.npz", [*lower, top], meta)


def _garbage(folder: Path) -> Path:
    path = folder / "garbage.wav"
    path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 10)
    return path


def test_from_config_reads_the_daemon_and_model_backend_tables(models: Path) -> None:
    b = from_config({"daemon": {"models": str(models)}, "model_backend": {"precision": "fp32", "max_batch_size": 4}})
    assert b.models() == ["codec", "plain", "sketch", "tiny"] and b.config.max_batch_size == 4
    with pytest.raises(ConfigError, match="unknown option"):
        from_config({"daemon": {"models": str(models)}, "model_backend": {"precison": "fp32"}})
    with pytest.raises(ConfigError, match="no models folder"):
        from_config({})
