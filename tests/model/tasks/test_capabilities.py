"""A model directory's capabilities, from its configs alone, and the submit check built on them."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import CheckpointError, InputError
from model.tasks.capabilities import capabilities_of
from tests.helpers.factories import tiny_conditioned_model_dir, tiny_model_dir


def test_a_full_model_runs_every_task_and_names_its_limits(tmp_path: Path) -> None:
    caps = capabilities_of(tiny_model_dir(tmp_path / "tiny"))
    assert caps.kinds == ("generate", "continue", "extend", "upsample", "encode")
    assert (caps.levels, caps.lowest_level, caps.max_seconds, caps.sample_rate) == ((0, 1, 2), 0, 20.0, 44100)
    assert caps.conditioners == ("artist", "genre", "timing") and not caps.lyrics and not caps.guidance
    caps.check("tiny", "continue", 19.0)  # fits
    with pytest.raises(InputError, match="model 'tiny' has no MIDI conditioner: send the job without 'midi'"):
        caps.check("tiny", "continue", 1.0, midi=True)
    with pytest.raises(InputError, match="model 'tiny' has no stem conditioners"):
        caps.check("tiny", "generate", 1.0, stems=("drums",))
    with pytest.raises(InputError, match="has no conditioners to guide"):
        caps.check("tiny", "generate", 1.0, guidance=(0.0, 2.0))
    caps.check("tiny", "generate", 1.0, guidance=(0.0, 0.0))  # zeros are no guidance
    with pytest.raises(InputError, match="too long for model 'tiny': use less than 20 s"):
        caps.check("tiny", "generate", 20.0)
    caps.check("tiny", "encode", 3600.0)  # encode reads the whole region; the length is not used
    with pytest.raises(InputError, match="cannot run 'remix' jobs .no such task.; it runs: generate, continue"):
        caps.check("tiny", "remix", 1.0)


def test_unreadable_configs_are_a_checkpoint_error_naming_the_file(tmp_path: Path) -> None:
    folder = tiny_model_dir(tmp_path / "tiny")
    config = next(folder.glob("prior_level_2*.json"))
    config.write_text("{not json")
    with pytest.raises(CheckpointError, match=config.name):
        capabilities_of(folder)


def test_conditioners_are_read_from_the_manifest(tmp_path: Path) -> None:
    caps = capabilities_of(tiny_conditioned_model_dir(tmp_path / "tiny"))
    assert caps.conditioners == ("artist", "genre", "timing", "midi", "grid", "stems")
    assert caps.stems == ("drums",) and caps.guidance and caps.to_dict()["stems"] == ["drums"]
    caps.check("tiny", "continue", 1.0, midi=True, stems=("drums",), guidance=(0.0, 2.0))
    with pytest.raises(InputError, match="no conditioner for stem 'vocals': label each stem as one of drums"):
        caps.check("tiny", "continue", 1.0, stems=("drums", "vocals"))
    with pytest.raises(InputError, match="a stem has no label: label each stem as one of drums"):
        caps.check("tiny", "continue", 1.0, stems=("",))
