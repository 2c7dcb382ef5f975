"""Two CPU processes on gloo (torch.multiprocessing.spawn, torchrun's environment variables) train a tiny
prior through DDP: the ranks agree, only rank 0 writes, a resumed run ends where an uninterrupted one
does, and the whole equals one process whose loss is the mean over both ranks' windows."""

import dataclasses
import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from common.errors import Cancelled
from common.progress import CancelToken
from model.prior import presets
from model.prior.prior import JukeboxPrior
from model.train.distributed import SINGLE, ddp_wrap, launched, mean_over_ranks, process_group
from model.train.prior_data import PriorBatch, PriorWindows
from model.train.prior_train_config import PriorTrainConfig
from model.train.prior_trainer import train_prior
from tests.model.train.test_prior_trainer import _items

BATCH = 2  # per rank


def _config() -> PriorTrainConfig:
    return PriorTrainConfig(steps=12, batch_size=BATCH, lr=3e-3, warmup_steps=2, log_every=3, checkpoint_every=6,
                            ema_decay=0.9, seed=5)  # fmt: skip


def _prior(seed: int) -> JukeboxPrior:
    torch.manual_seed(seed)
    return JukeboxPrior(presets.tiny_prior())


def _worker(rank: int, port: int, run_dirs: list[str], out: str, cancel_at: int | None) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port), OMP_NUM_THREADS="1")  # what torchrun sets  # fmt: skip
    torch.set_num_threads(1)
    with process_group(torch.device("cpu")) as (world, device):
        assert world.rank == rank and world.size == 2
        prior = _prior(seed=rank)  # other initial weights on rank 1: DDP starts every rank from rank 0's
        token = CancelToken()

        def log(line: dict) -> None:  # type: ignore[type-arg]
            if cancel_at is not None and line["step"] >= cancel_at:
                token.cancel("simulated crash")

        try:
            result = train_prior(prior, _items(), _config(), run_dir=run_dirs[rank], wrap=ddp_wrap(device),
                                 stream=world.rank, main=world.main, log=log, cancel=token)  # fmt: skip
        except Cancelled:
            return
        assert result.ema is not None
        torch.save({"prior": prior.state_dict(), "ema": result.ema.state_dict(), "logs": result.logs},
                   Path(out) / f"rank{rank}.pt")  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(run_dirs: list[Path], out: Path, cancel_at: int | None = None) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"  # the children inherit it
    args = (_free_port(), [str(d) for d in run_dirs], str(out), cancel_at)
    mp.spawn(_worker, args=args, nprocs=2, join=True)


class _BothStreams(nn.Module):
    """One process doing what two DDP ranks do: the loss is the mean over stream 0's batch (given) and
    stream 1's batch of the same step, so its gradient is the mean of the two ranks' gradients."""

    def __init__(self, module: nn.Module, windows: PriorWindows, start: int = 0):
        super().__init__()
        self.module, self.windows, self.step = module, windows, start

    def forward(self, batch: PriorBatch, generator: torch.Generator | None = None):  # type: ignore[no-untyped-def]
        other = self.windows.batch(self.step, BATCH, stream=1)
        self.step += 1
        a, b = self.module(batch, generator), self.module(other, generator)
        return dataclasses.replace(a, loss=(a.loss + b.loss) / 2, gen_loss=(a.gen_loss + b.gen_loss) / 2,
                                   prime_loss=(a.prime_loss + b.prime_loss) / 2)  # fmt: skip


def _train_lines(logs) -> list[tuple[int, float, float, float]]:  # type: ignore[no-untyped-def]
    return [(x["step"], x["loss"], x["grad_norm"], x["lr"]) for x in logs if x["kind"] == "train"]


@pytest.mark.e2e  # child processes talking over local sockets
def test_two_gloo_processes_train_like_one_process_over_both_ranks_windows(tmp_path: Path) -> None:
    run, elsewhere, out = tmp_path / "run", tmp_path / "rank1_run", tmp_path / "out"
    out.mkdir()
    # first a run killed after step 9 (checkpoint at 6), rank 1 pointed at its own run_dir: it must stay unwritten
    _spawn([run, elsewhere], out, cancel_at=9)
    assert not elsewhere.exists() and not list(out.iterdir())
    assert sorted(p.name for p in run.iterdir()) == ["checkpoint.safetensors", "metrics.jsonl"]
    # then both ranks resume from the same checkpoint in the shared run_dir
    _spawn([run, run], out)
    assert not elsewhere.exists()
    rank0, rank1 = (torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    for key in ("prior", "ema"):
        assert rank0[key].keys() == rank1[key].keys()
        for name, value in rank0[key].items():
            assert torch.equal(value, rank1[key][name]), (key, name)  # (a) the ranks end identical
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines] == [3, 6, 9, 12]  # (b) rank 0 alone wrote them, each once
    assert _train_lines(rank0["logs"]) == _train_lines(rank1["logs"])  # logged means over the ranks agree

    # (c) one process, uninterrupted, whose loss is the mean over both streams' windows
    prior = _prior(seed=0)
    windows = PriorWindows(prior.config, _items(), (), seed=_config().seed)
    single = train_prior(prior, _items(), _config(), run_dir=tmp_path / "single",
                         wrap=lambda m: _BothStreams(m, windows))  # fmt: skip
    assert single.ema is not None
    for name, value in prior.state_dict().items():
        torch.testing.assert_close(rank0["prior"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    for name, value in single.ema.state_dict().items():
        torch.testing.assert_close(rank0["ema"][name], value, rtol=1e-4, atol=1e-5, msg=name)
    for (s2, l2, g2, lr2), (s1, l1, g1, lr1) in zip(_train_lines(lines), _train_lines(single.logs), strict=True):
        assert s2 == s1 and lr2 == lr1 and l2 == pytest.approx(l1, rel=1e-4) and g2 == pytest.approx(g1, rel=1e-4)


def test_outside_torchrun_nothing_is_distributed(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert not launched()
    with process_group(torch.device("cpu")) as (world, device):
        assert world == SINGLE and world.main and device == torch.device("cpu")
        assert ddp_wrap(device) is None and mean_over_ranks([1.0, 2.0], device) == [1.0, 2.0]


@pytest.mark.e2e
def test_segue_train_prior_under_torchrun_two_processes(tmp_path: Path) -> None:
    """The documented command: torchrun --standalone --nproc_per_node 2 -m segue train prior CONFIG.toml."""
    import subprocess
    import sys

    from model.data.index import index_folder
    from model.sampling.loading import load_sampling_model
    from tests.cli.commands.test_train import TOML
    from tests.helpers.factories import tiny_model_dir
    from tests.model.train.test_prior_dataset import make_songs

    tiny_model_dir(tmp_path / "model")
    make_songs(tmp_path / "songs")
    (tmp_path / "songs" / "index.json").write_text(json.dumps(index_folder(tmp_path / "songs").to_dict()))
    (tmp_path / "run.toml").write_text(TOML.format(data="songs/index.json"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "segue", "train", "prior", str(tmp_path / "run.toml")]  # fmt: skip
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count("on each of 2 processes") == 1 and done.stdout.count("final train loss") == 1
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(x["kind"], x["step"]) for x in lines] == [("train", 5), ("train", 10), ("val", 10)]
    assert (tmp_path / "run" / "checkpoint.safetensors").is_file()
    assert done.stdout.count("prior_level_2") == 1  # rank 0 alone saved the model
    assert load_sampling_model(tmp_path / "model").conditioners[2].names == ("midi",)
