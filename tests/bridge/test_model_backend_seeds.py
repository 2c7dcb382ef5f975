"""One seed rule: a daemon job and ``segue sample`` with the same seeds, params and model give the same codes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import model.tasks.render as model_render
from bridge.backend.models import ModelBackend, ModelBackendConfig
from common.progress import CancelToken
from model.codes import load_codes
from model.sampling.result import SampleResult
from segue.cli import main
from tests.bridge.model_rig import Recorder, job, make_models
from tests.helpers.factories import SR

pytestmark = pytest.mark.timeout(60)


def test_cli_and_daemon_sample_the_same_codes_from_the_same_seeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        models = make_models(tmp_path / "models")
        backend = ModelBackend(models, ModelBackendConfig(precision="fp32"))
        sampled: list[SampleResult] = []
        real = model_render.sample_levels

        def spy(*args, **kw):  # type: ignore[no-untyped-def]
            sampled.append(real(*args, **kw))
            return sampled[-1]

        monkeypatch.setattr(model_render, "sample_levels", spy)
        backend.run(job("generate", seconds=0.01, candidates=2, seeds=(7, 8)), Recorder(), CancelToken())
        daemon = sampled[-1]  # the level-0 call holds every level's codes
        length = daemon.sample_length  # the daemon's sampled stretch: the upsamplers' one-window minimum

        out = tmp_path / "cli"
        argv = ["sample", "--model", str(models / "tiny"), "--artist", "ada", "--genre", "jazz",
                "--length", str(length / SR), "--candidates", "2", "--seed", "7", "--precision", "fp32",
                "--device", "cpu", "--no-align", "-o", str(out)]  # fmt: skip
        assert main(argv) == 0
        cli = load_codes(out / "codes.npz").codes
    finally:
        torch.set_num_threads(before)
    assert [c.shape for c in cli] == [tuple(c.shape) for c in daemon.codes]
    for level in (2, 1, 0):
        assert torch.equal(torch.from_numpy(cli[level]), daemon.codes[level].cpu()), f"level {level} differs"
