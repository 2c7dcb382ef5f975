"""Train the small VQ-VAE bundled as segue's demo model (model/assets/demo_model).

Trains on songs from our own synthesiser (scripts/demo_synth.py, seeds 1000+), never on the demo
clip itself, so the demo's reconstruction numbers are on held-out audio. CPU only, bf16 autocast.

    python scripts/train_demo_vqvae.py --minutes 20 -o model/assets/demo_model
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import threading
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import demo_synth  # noqa: E402

from common.errors import Cancelled  # noqa: E402
from common.progress import CancelToken  # noqa: E402
from model.checkpoint.builders import load_vqvae  # noqa: E402
from model.checkpoint.model_dir import save_component  # noqa: E402
from model.train.data import AudioChunks, bandwidth  # noqa: E402
from model.train.vqvae_trainer import TrainLog, VQVAETrainConfig, train_vqvae  # noqa: E402
from model.vqvae import VQVAE, VQVAEConfig  # noqa: E402

DEMO_CONFIG = VQVAEConfig(
    levels=3,
    downs_t=(3, 2, 2),
    strides_t=(2, 2, 2),
    emb_width=32,
    codebook_size=256,
    width=32,
    depth=2,
    multipliers=(1, 1, 1),
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("-o", "--out", default="model/assets/demo_model")
    ap.add_argument("--minutes", type=float, default=20.0, help="wall-clock training budget")
    ap.add_argument("--songs", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=12.0)
    ap.add_argument("--round-steps", type=int, default=100, help="steps between checkpoints")
    ap.add_argument("--lr", type=float, default=6e-4, help="peak learning rate (lower it to finish a run)")
    ap.add_argument("--init", help="continue from this model directory's VQ-VAE (codebook EMA restarts from k)")
    args = ap.parse_args()

    torch.manual_seed(0)
    rng = np.random.default_rng(1000)
    clips = [demo_synth.render(demo_synth.random_song(rng), args.seconds, 1000 + i) for i in range(args.songs)]
    bw = bandwidth(clips)
    vqvae = load_vqvae(args.init) if args.init else VQVAE(DEMO_CONFIG)
    previous = json.loads((Path(args.init) / "training.json").read_text()) if args.init else {}
    # one optimiser for the whole run (a fresh AdamW per round spiked the loss): a timer cancels
    # training at the deadline and every log line saves the model; --init restores the codebook EMA
    config = VQVAETrainConfig(
        steps=10**9, batch_size=4, sample_length=8192, lr=args.lr, warmup_steps=0 if args.init else 50,
        precision="bf16", log_every=args.round_steps, restore_codebooks=bool(args.init),
    )
    chunks = AudioChunks(clips, config.sample_length, seed=0)
    cancel = CancelToken()
    timer = threading.Timer(args.minutes * 60, cancel.cancel, args=("time budget spent",))
    timer.start()
    start_step = int(previous.get("steps", 0))

    def save(line: TrainLog) -> None:
        print(line, flush=True)
        save_component(args.out, "vqvae", "vqvae", DEMO_CONFIG.to_dict(), vqvae.state_dict(), model_name="segue-demo")
        record = {
            "what": "segue demo VQ-VAE, trained by scripts/train_demo_vqvae.py on synthesised songs",
            "steps": start_step + line.step,
            "songs": args.songs,
            "seconds_per_song": args.seconds,
            "train_config": dataclasses.asdict(config),
            "final": line.__dict__,
            "bandwidth": bw.__dict__,
        }
        (Path(args.out) / "training.json").write_text(json.dumps(record, indent=2) + "\n")

    try:
        train_vqvae(vqvae, chunks, bw, config, on_log=save, cancel=cancel)
    except Cancelled:
        print("stopped: time budget spent", flush=True)
    finally:
        timer.cancel()


if __name__ == "__main__":
    main()
