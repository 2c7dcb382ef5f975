"""Job conditions (MIDI, stems, grid) through the tasks: placed in project time, fed to the conditioners."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from common.errors import InputError
from conditioning.midi import read_midi
from conditioning.tempo import TempoMap
from model import tasks
from model.sampling.loading import SamplingModel, load_sampling_model
from model.sampling.params import Guidance, SamplingParams
from model.tasks.conditions import JobConditions, StemCondition, level_conditions
from model.tasks.song import Labelling, Song
from tests.helpers.factories import SR, tiny_conditioned_model_dir, tiny_model_dir
from tests.helpers.midi_files import midi_bytes

P = SamplingParams(precision="fp32", n_candidates=2, seeds=(1, 2))
SONG = Song("ada", "jazz", total_length=2 * SR)


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_conditioned_model_dir(tmp_path_factory.mktemp("untrained"))


@pytest.fixture(scope="module")
def untrained(folder: Path) -> SamplingModel:
    return load_sampling_model(folder)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> SamplingModel:
    return load_sampling_model(tiny_conditioned_model_dir(tmp_path_factory.mktemp("trained"), trained=True))


@pytest.fixture(scope="module")
def ids(folder: Path) -> Labelling:
    return Labelling(folder / "ids")


def _conditions(take_start_s: float = 4.0) -> JobConditions:
    clip = read_midi(midi_bytes([(0.0, 0.05, 60), (0.05, 0.1, 64)], drums=(0.0, 0.05)), "clip.mid")
    rng = np.random.default_rng(0)
    bursts = np.exp(-np.arange(SR) % (SR // 8) / 800.0)  # a noise burst every 1/8 s, for one second
    drums = (0.3 * bursts[:, None] * rng.standard_normal((SR, 2))).astype(np.float32)  # stereo
    return JobConditions(take_start_s=take_start_s, midi=clip, midi_start_s=take_start_s,
                         stems=(StemCondition("drums", drums, SR, take_start_s),),
                         tempo=TempoMap([(0.0, 120.0)], (4, 4)))  # fmt: skip


def test_conditions_are_placed_in_project_time_at_every_conditioned_level(trained: SamplingModel) -> None:
    geo = trained.geometry
    start, length = 1024, 3072  # the take starts 1024 samples (8 top tokens) into the sampled audio
    out = level_conditions(_conditions(), geo, trained.conditioner_configs(), (2, 1, 0), start=start,
                           sample_length=length, params=P)  # fmt: skip
    assert sorted(out) == [1, 2] and sorted(out[2].features) == ["drums", "grid", "midi"]
    assert list(out[1].features) == ["grid"]  # level 1 reads the grid alone; level 0 has no conditioners
    midi = out[2].features["midi"]
    hop = geo.hops[2]
    assert midi.frames.shape == (length // hop, 402)
    first = start // hop  # the clip's time 0 is the take's first sample
    assert midi.coverage[:first].sum() == 0 and midi.coverage[first] == 1
    assert midi.frames[first, 60] == 1.0 and midi.frames[:first, :128].sum() == 0  # onset of C4 on the take's first token
    drums = out[2].features["drums"]
    assert drums.coverage[:first].sum() == 0 and drums.coverage[first] == 1 and drums.frames.shape[1] == 14
    grid = out[1].features["grid"]
    assert grid.frames.shape == (length // geo.hops[1], 6) and grid.coverage.min() == 1


def test_untrained_conditioners_change_nothing_and_trained_ones_steer(
    untrained: SamplingModel, trained: SamplingModel, ids: Labelling
) -> None:
    plain = tasks.generate(untrained, 2500, SONG, P, ids, lowest_level=2)
    steered = tasks.generate(untrained, 2500, SONG, P, ids, lowest_level=2, conditions=_conditions())
    assert torch.equal(plain.sample.codes[2], steered.sample.codes[2])  # zero projections add exactly zero
    base = tasks.generate(trained, 2500, SONG, P, ids, lowest_level=2)
    given = tasks.generate(trained, 2500, SONG, P, ids, lowest_level=2, conditions=_conditions())
    assert not torch.equal(base.sample.codes[2], given.sample.codes[2])
    zero = SamplingParams(precision="fp32", n_candidates=2, seeds=(1, 2), guidance=(Guidance("midi", 0.0),))
    again = tasks.generate(trained, 2500, SONG, zero, ids, lowest_level=2, conditions=_conditions())
    assert torch.equal(again.sample.codes[2], given.sample.codes[2])  # scale 0: exactly unguided
    guided = SamplingParams(precision="fp32", n_candidates=2, seeds=(1, 2), guidance=(Guidance("midi", 3.0, 2),))
    pushed = tasks.generate(trained, 2500, SONG, guided, ids, lowest_level=2, conditions=_conditions())
    assert not torch.equal(pushed.sample.codes[2], given.sample.codes[2])


def test_a_continuation_reads_the_conditions_from_the_region_end(trained: SamplingModel, ids: Labelling) -> None:
    region = (0.3 * np.sin(np.arange(1000) / 5.0, dtype=np.float32))[:, None]
    moved = _conditions(take_start_s=10.0)
    same = tasks.continue_region(trained, region, 500, SONG, P, ids, lowest_level=2, conditions=moved)
    again = tasks.continue_region(trained, region, 500, SONG, P, ids, lowest_level=2, conditions=_conditions(2.0))
    # every condition sits at the take's start in both, and both starts are bar lines: the same conditions
    assert torch.equal(same.sample.codes[2], again.sample.codes[2])
    early = replace(moved, midi_start_s=10.0 - 0.03)  # the clip starts 30 ms before the region ends
    shifted = tasks.continue_region(trained, region, 500, SONG, P, ids, lowest_level=2, conditions=early)
    assert not torch.equal(shifted.sample.codes[2], same.sample.codes[2])


def test_conditions_the_model_cannot_read_are_named(untrained: SamplingModel, ids: Labelling) -> None:
    vocals = JobConditions(stems=(StemCondition("vocals", np.zeros((SR, 1), np.float32), SR),))
    with pytest.raises(InputError, match=r"no conditioner for vocals \(its conditioners: drums, grid, midi\)"):
        tasks.generate(untrained, 2500, SONG, P, ids, lowest_level=2, conditions=vocals)
    bad = SamplingParams(precision="fp32", n_candidates=2, seeds=(1, 2), guidance=(Guidance("drums", 2.0),))
    with pytest.raises(InputError, match="guidance for drums, but no sampled level reads"):
        tasks.generate(untrained, 2500, SONG, bad, ids, lowest_level=2, conditions=JobConditions(tempo=TempoMap([(0, 90)])))
    with pytest.raises(InputError, match="labelled drums more than once"):
        JobConditions(stems=(StemCondition("drums", np.zeros((10, 1), np.float32), SR),) * 2)


def test_a_model_without_conditioners_refuses_conditions(tmp_path: Path, ids: Labelling) -> None:
    plain = load_sampling_model(tiny_model_dir(tmp_path / "plain"))
    assert plain.conditioner_configs() == {}
    with pytest.raises(InputError, match=r"no conditioner for midi, drums \(its conditioners: none\)"):
        tasks.generate(plain, 2500, SONG, P, ids, conditions=_conditions())
    grid_only = JobConditions(tempo=TempoMap([(0.0, 120.0)]))  # a host always has a tempo map: no error
    tasks.generate(plain, 2500, SONG, P, ids, lowest_level=2, conditions=grid_only)


def test_adapters_in_the_model_directory_are_attached_when_it_loads(tmp_path: Path, ids: Labelling) -> None:
    from model.conditioners.lora import LoraConfig, LoraSet, attach_lora
    from model.conditioners.lora_store import save_lora
    from model.prior.prior import JukeboxPrior

    folder = tiny_model_dir(tmp_path / "m")
    base = tasks.generate(load_sampling_model(folder), 2500, SONG, P, ids, lowest_level=2)
    prior = load_sampling_model(folder).priors[2]
    lora: LoraSet = attach_lora(prior, LoraConfig(level=2, rank=2, alpha=4.0))
    save_lora(folder, lora)  # untrained (zero up-projections): loads, changes nothing
    model = load_sampling_model(folder)
    assert isinstance(model.priors[2], JukeboxPrior)
    assert torch.equal(tasks.generate(model, 2500, SONG, P, ids, lowest_level=2).sample.codes[2], base.sample.codes[2])
    with torch.no_grad():
        for name, p in lora.named_parameters():
            if name.endswith(".up"):
                p.normal_(0.0, 0.5)
    save_lora(folder, lora)  # as if trained: the loaded model samples something else
    woken = tasks.generate(load_sampling_model(folder), 2500, SONG, P, ids, lowest_level=2)
    assert not torch.equal(woken.sample.codes[2], base.sample.codes[2])


def test_each_take_carries_its_adherence_and_takes_can_be_ordered_by_it(trained: SamplingModel, ids: Labelling) -> None:
    p = SamplingParams(precision="fp32", n_candidates=3, seeds=(1, 2, 3))
    result = tasks.generate(trained, SR // 2, SONG, p, ids, lowest_level=2, conditions=_conditions(0.0))
    assert len(result.adherence) == 3
    first = result.adherence[0].to_dict()
    assert first["drum_reference"] == "stem:drums" and "drums" in first["loudness_corr"]
    assert result.to_dict()["adherence"][1] == result.adherence[1].to_dict()
    by = "loudness_corr:drums"
    best = result.ordered(by)
    order = [result.adherence.index(a) for a in best.adherence]
    assert sorted(order) == [0, 1, 2] and best.seeds == tuple(result.seeds[i] for i in order)
    assert np.array_equal(best.audio, result.audio[order])
    assert torch.equal(best.sample.codes[2], result.sample.codes[2][order])
    values = [a.metric(by) for a in best.adherence]
    known = [v for v in values if v is not None]
    assert known == sorted(known, reverse=True)
    plain = tasks.generate(trained, SR // 2, SONG, p, ids, lowest_level=2)
    assert plain.adherence == ()
    with pytest.raises(InputError, match="only when the job has MIDI or stems"):
        plain.ordered("mean")


def test_every_level_guidance_guides_the_levels_that_read_its_condition(trained: SamplingModel) -> None:
    geo, configs = trained.geometry, trained.conditioner_configs()
    every = SamplingParams(precision="fp32", n_candidates=2, seeds=(1, 2), guidance=(Guidance("midi", 2.0),))
    out = level_conditions(_conditions(), geo, configs, (2, 1, 0), start=0, sample_length=3072, params=every)
    assert out[2].guidance == {"midi": 2.0} and out[1].guidance == {}  # level 1 reads the grid only
    with pytest.raises(InputError, match="guidance for midi, but no sampled level reads"):
        level_conditions(_conditions(), geo, configs, (1, 0), start=0, sample_length=3072, params=every)
    at_one = SamplingParams(precision="fp32", n_candidates=2, seeds=(1, 2), guidance=(Guidance("midi", 2.0, 1),))
    with pytest.raises(InputError, match="guidance for midi at level 1"):
        level_conditions(_conditions(), geo, configs, (2, 1, 0), start=0, sample_length=3072, params=at_one)


def test_a_stem_can_condition_through_its_own_vq_vae_codes(tmp_path: Path, ids: Labelling) -> None:
    from model.conditioners import ConditionerConfig, ConditionerSet
    from model.conditioners.store import save_conditioners
    from model.tasks.capabilities import capabilities_of
    from tests.helpers.factories import randomise

    folder = tiny_model_dir(tmp_path / "codes")
    plain = load_sampling_model(folder)
    emb, width = plain.vqvae.config.emb_width, plain.priors[2].config.transformer.width
    conditioners = ConditionerSet([ConditionerConfig("drums_codes", "stem_codes", emb, width, 2, hidden=16, kernel=3)])
    randomise(conditioners, seed=3)
    save_conditioners(folder, conditioners)
    assert capabilities_of(folder).stems == ("drums",)
    model = load_sampling_model(folder)
    conditions = _conditions(take_start_s=1.0)
    drums_only = JobConditions(take_start_s=1.0, stems=conditions.stems)
    geo, start, length = model.geometry, 1024, 3072
    from model.tasks.render import stem_encoder

    out = level_conditions(drums_only, geo, model.conditioner_configs(), (2,), start=start, sample_length=length,
                           params=P, encode=stem_encoder(model))  # fmt: skip
    f = out[2].features["drums_codes"]
    hop = geo.hops[2]
    assert f.frames.shape == (length // hop, emb) and f.coverage[: start // hop].sum() == 0 and f.coverage[start // hop] == 1
    codebook = model.vqvae.bottleneck.level_blocks[2].k.numpy()
    assert all(np.isclose(codebook, row).all(axis=1).any() for row in f.frames)  # every frame is a codebook vector
    with pytest.raises(InputError, match="reads VQ-VAE codes"):
        level_conditions(drums_only, geo, model.conditioner_configs(), (2,), start=start, sample_length=length, params=P)
    base = tasks.generate(model, 2500, SONG, P, ids, lowest_level=2)
    steered = tasks.generate(model, 2500, SONG, P, ids, lowest_level=2, conditions=drums_only)
    assert not torch.equal(base.sample.codes[2], steered.sample.codes[2])
    with pytest.raises(InputError, match="no conditioner for midi"):  # drums_codes reads the drums stem only
        tasks.generate(model, 2500, SONG, P, ids, lowest_level=2, conditions=conditions)
