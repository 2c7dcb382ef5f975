"""``prime`` jobs: encode the region to codes of every VQ-VAE level; nothing is sampled.

The whole region is read (mono, at the model's rate) and encoded in chunks (``chunk_samples``; None
lets the VQ-VAE choose, 0 encodes it at once), with an ``encode`` progress report and a cancel check
after each chunk. The result is the same codes ``segue encode`` writes for that audio, and its file can
be the ``codes`` input of a later ``upsample`` job. Only the VQ-VAE is used: a model without priors can
prime. The job's length is not used (the region sets it); a prime job has exactly one candidate.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bridge.engine.backend import CodesTake
from bridge.jobs import JobSpec
from common.errors import InputError
from common.progress import CancelToken, Progress, ProgressFn
from model.audio import read_audio
from model.codes import CodesMeta
from model.sampling.loading import SamplingModel


def encode_region(
    model: SamplingModel, spec: JobSpec, chunk_samples: int | None, progress: ProgressFn, cancel: CancelToken
) -> CodesTake:
    """The codes of ``spec.region`` at every level (bottom first), as one take."""
    if spec.candidates != 1:
        raise InputError(
            f"a prime job encodes the region once: send candidates 1 (got {spec.candidates}); "
            "sample takes from the codes with 'upsample' or 'continue' jobs"
        )
    assert spec.region is not None and spec.region.path is not None  # JobSpec and the engine's spooling
    vq = model.vqvae.config
    region = read_audio(spec.region.path, sample_rate=vq.sample_rate, channels=1).samples  # (R, 1)
    top_hop = vq.hop_lengths[-1]
    if region.shape[0] < top_hop:
        raise InputError(
            f"region {spec.region.path} is {region.shape[0]} samples long: prime needs at least one top-level "
            f"token ({top_hop / vq.sample_rate:.4f} s at {vq.sample_rate} Hz)"
        )

    def report(item: Progress) -> None:  # the VQ-VAE reports after each chunk: the moment to honour cancel
        cancel.raise_if_cancelled()
        progress(item)

    device = next(model.vqvae.parameters()).device
    audio = torch.from_numpy(region)[None].to(device)  # (1, R, 1)
    cancel.raise_if_cancelled()
    with torch.inference_mode():
        codes = model.vqvae.encode(audio, chunk_samples=chunk_samples, progress=report)  # per level (1, R // hop)
    meta = CodesMeta(
        sample_rate=vq.sample_rate,
        hop_lengths=tuple(vq.hop_lengths),
        codebook_size=vq.codebook_size,
        model=model.identity,
        source_samples=region.shape[0],
        source_name=Path(spec.region.path).name,
    )
    seed = spec.seeds[0] if spec.seeds else 0
    return CodesTake(0, seed, tuple(c.long().cpu().numpy() for c in codes), meta)
