"""``encode`` jobs on the model backend: the region's codes at every level, chunked, cancellable, stored."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from bridge.backend.models import ModelBackend, ModelBackendConfig
from bridge.engine.backend import CodesTake
from bridge.jobs import AudioInput, JobKind
from bridge.state.store import RenderStore
from common.errors import Cancelled
from common.progress import CancelToken, Progress
from model.audio import read_audio
from model.codes import load_codes
from tests.bridge.model_rig import Recorder, job, make_models, write_region
from tests.helpers.factories import SR

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def region(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_region(tmp_path_factory.mktemp("audio") / "riff.wav", 2000)  # 15 top tokens + 80 samples


def _encode(backend: ModelBackend, region: Path, events: Recorder | None = None, **kw: object) -> CodesTake:
    (take,) = backend.run(job("encode", region=region, seeds=(5,), **kw), events or Recorder(), CancelToken())  # type: ignore[arg-type]
    assert isinstance(take, CodesTake)
    return take


def test_encode_encodes_the_whole_region_at_every_level_without_priors(models: Path, region: Path) -> None:
    backend = ModelBackend(models, ModelBackendConfig(precision="fp32"))
    events = Recorder()
    take = _encode(backend, region, events, model="codec")  # a VQ-VAE alone is enough to encode
    backend.load("codec", lambda p: None)
    vqvae = backend._loaded["codec"].vqvae
    audio = torch.from_numpy(read_audio(region, sample_rate=SR, channels=1).samples)[None]  # (1, 2000, 1)
    expected = vqvae.encode(audio)
    assert [c.shape for c in take.codes] == [(1, 250), (1, 62), (1, 15)]  # 2000 // 8, // 32, // 128
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(take.codes, expected))
    assert (take.index, take.seed, take.meta.source_samples, take.meta.source_name) == (0, 5, 2000, "riff.wav")
    assert take.meta.hop_lengths == (8, 32, 128) and take.meta.model == backend._loaded["codec"].identity
    assert events.kinds() == []  # no sampling: no previews, no level ends
    encode = [p for p in events.of("progress") if p.stage == "encode"]  # type: ignore[attr-defined]
    assert encode and encode[-1].fraction == 1.0  # type: ignore[attr-defined]


def test_encoded_codes_name_the_clients_file_not_the_spooled_copy(models: Path, region: Path) -> None:
    backend = ModelBackend(models, ModelBackendConfig(precision="fp32"))
    spec = replace(job("encode", region=region, seeds=(5,)), region=AudioInput(path=str(region), source_name="Take 3.wav"))
    (take,) = backend.run(spec, Recorder(), CancelToken())
    assert isinstance(take, CodesTake) and take.meta.source_name == "Take 3.wav"


def test_encode_in_chunks_gives_the_same_codes_and_cancels_between_chunks(models: Path, region: Path) -> None:
    whole = _encode(ModelBackend(models, ModelBackendConfig(precision="fp32")), region)
    chunked_backend = ModelBackend(models, ModelBackendConfig(precision="fp32", encode_chunk_s=256 / SR))
    events = Recorder()
    chunked = _encode(chunked_backend, region, events)
    assert all(np.array_equal(a, b) for a, b in zip(whole.codes, chunked.codes))
    encode = [p for p in events.of("progress") if p.stage == "encode"]  # type: ignore[attr-defined]
    assert len(encode) == 8  # 2000 samples in chunks of 256

    token = CancelToken()

    def cancel_after_first_chunk(item: Progress) -> None:
        if item.stage == "encode":
            token.cancel("user")

    with pytest.raises(Cancelled):
        chunked_backend.run(job("encode", region=region), Recorder(on_progress=cancel_after_first_chunk), token)


def test_the_store_writes_a_codes_file_an_upsample_job_can_use(models: Path, region: Path, tmp_path: Path) -> None:
    backend = ModelBackend(models, ModelBackendConfig(precision="fp32"))
    spec = job("encode", region=region, seeds=(5,))
    take = _encode(backend, region)
    store = RenderStore(tmp_path / "store")
    result = store.write_take("j1", spec, take)
    assert result.kind == "codes" and result.path.endswith("candidate-0.codes.npz")
    assert (result.sample_rate, result.frames, result.seed, result.level) == (SR, 2000, 5, 0)
    loaded = load_codes(result.path)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.codes, take.codes)) and loaded.meta == take.meta
    sidecar = json.loads((tmp_path / "store" / "renders" / "j1" / "candidate-0.json").read_text())
    assert sidecar["kind"] == "codes" and sidecar["file"] == "candidate-0.codes.npz" and sidecar["tokens"] == [250, 62, 15]
    store.finish("j1", spec, (result,))
    stored = store.finished("j1")
    assert stored is not None and stored.results == (result,) and stored.spec.kind is JobKind.ENCODE

    upsample = job("upsample", codes=Path(result.path), seconds=1.0, seeds=(3,))
    (audio,) = backend.run(upsample, Recorder(), CancelToken())
    assert audio.audio.shape == (15 * 128, 1)  # type: ignore[union-attr]  # the codes' whole top level


def test_prime_is_read_as_encode_for_old_clients_and_journals() -> None:
    assert JobKind("prime") is JobKind.ENCODE and JobKind("encode") is JobKind.ENCODE
    with pytest.raises(ValueError):
        JobKind("primed")


def test_a_long_compressed_silence_is_refused_before_it_is_decoded(models: Path, tmp_path: Path) -> None:
    # an hour of silent FLAC is a few KB, under any input size limit, and took hours to encode
    import soundfile as sf

    from common.errors import InputError

    silent = tmp_path / "silence.flac"
    with sf.SoundFile(silent, "w", samplerate=SR, channels=1, format="FLAC") as f:
        for _ in range(20):
            f.write(np.zeros(SR, dtype=np.float32))  # 20 s
    assert silent.stat().st_size < 64 * 1024
    backend = ModelBackend(models, ModelBackendConfig(precision="fp32", max_region_s=5.0))
    started = time.monotonic()
    for kind in ("encode", "continue"):
        with pytest.raises(InputError, match=r"silence.flac is 20.0 s long; this daemon reads regions of at most 5 s"):
            backend.run(job(kind, region=silent), Recorder(), CancelToken())
    assert time.monotonic() - started < 5.0
    short = write_region(tmp_path / "short.wav", 2 * SR)
    assert isinstance(_encode(backend, short), CodesTake)  # within the limit: encoded as before
