import pytest

from common.errors import InputError
from model.sampling.params import SamplingParams


def test_defaults() -> None:
    p = SamplingParams()
    assert p.temperature_at(0, 3) == 0.99
    assert [p.hop_fraction_at(lv, 3) for lv in range(3)] == [0.5, 0.5, 0.125]
    assert [p.hop_fraction_at(lv, 2) for lv in range(2)] == [0.5, 0.125]
    assert p.precision == "auto"
    assert p.candidate_seeds() == (0,)


def test_per_level_values_and_seeds() -> None:
    p = SamplingParams(temperature=(0.9, 0.95, 0.98), hop_fraction=(0.25, 0.5, 0.125), n_candidates=3, seed=7)
    assert p.temperature_at(2, 3) == 0.98
    assert p.hop_fraction_at(0, 3) == 0.25
    assert p.candidate_seeds() == (7, 8, 9)
    assert SamplingParams(n_candidates=2, seeds=(5, 3)).candidate_seeds() == (5, 3)
    with pytest.raises(InputError, match="one per level"):
        p.temperature_at(0, 2)


def test_single_float_is_accepted() -> None:
    assert SamplingParams(temperature=0.5).temperature == (0.5,)  # type: ignore[arg-type]


def test_round_trip() -> None:
    p = SamplingParams(temperature=(0.9, 0.8), top_p=0.9, n_candidates=2, seed=3, precision="fp32")
    assert SamplingParams.from_dict(p.to_dict()) == SamplingParams(
        temperature=(0.9, 0.8), top_p=0.9, n_candidates=2, seeds=(3, 4), seed=3, precision="fp32"
    )


def test_params_are_frozen() -> None:
    with pytest.raises(AttributeError):
        SamplingParams().top_k = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"top_k": 5, "top_p": 0.9}, "cannot be used together"),
        ({"temperature": (0.0,)}, "temperature 0.0"),
        ({"temperature": (1e-30,)}, r"temperature 1e-30 is out of range: use a value from 0\.01 to 10 "),
        ({"temperature": (0.99, 0.009)}, "temperature 0.009"),
        ({"temperature": (10.5,)}, "temperature 10.5"),
        ({"temperature": ()}, "at least one"),
        ({"top_p": 1.5}, "top-p"),
        ({"top_k": -1}, "top-k"),
        ({"n_candidates": 0}, "candidates"),
        ({"n_candidates": 2, "seeds": (1,)}, "one per candidate"),
        ({"max_batch_size": 0}, "batch"),
        ({"chunk_size": 0}, "chunk"),
        ({"hop_fraction": (0.0,)}, "hop fraction"),
        ({"hop_fraction": (1.5,)}, "hop fraction"),
        ({"precision": "fp16"}, "auto, fp32, bf16"),
    ],
)
def test_bad_values_are_input_errors(kwargs: dict, words: str) -> None:
    with pytest.raises(InputError, match=words):
        SamplingParams(**kwargs)
