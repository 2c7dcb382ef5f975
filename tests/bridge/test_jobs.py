import json

import pytest

from bridge.jobs import (
    AudioInput,
    EventType,
    JobEvent,
    JobInfo,
    JobKind,
    JobSpec,
    JobState,
    Length,
    ProjectContext,
    ResultFile,
    TempoChange,
)
from common.errors import InputError


def _spec() -> JobSpec:
    return JobSpec(
        kind=JobKind.CONTINUE,
        model="tiny",
        length=Length(bars=2),
        project=ProjectContext(region_start_s=1.0, region_end_s=3.0),
        region=AudioInput(data=b"RIFF....", format="wav"),
        stems=(AudioInput(path="/tmp/d.wav", label="drums"),),
        candidates=2,
        seeds=(1, 2),
        temperatures=(0.99, 0.98),
    )


def test_spec_round_trips_through_json() -> None:
    spec = _spec()
    assert JobSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_info_and_event_round_trip() -> None:
    info = JobInfo(id="j1", kind=JobKind.CONTINUE, model="tiny", state=JobState.DONE, length_s=4.0, candidates=2)
    info = JobInfo.from_dict({**info.to_dict(), "results": [ResultFile("/x.wav", 44100, 44100, 3).to_dict()]})
    assert JobInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info
    ev = JobEvent(7, "j1", EventType.PROGRESS, {"tokens_done": 3})
    assert JobEvent.from_dict(json.loads(json.dumps(ev.to_dict()))) == ev


def test_bars_follow_the_tempo_map() -> None:
    p = ProjectContext(tempo_map=(TempoChange(0.0, 120.0),), time_signature=(4, 4))
    assert Length(bars=2).to_seconds(p) == pytest.approx(4.0)
    p = ProjectContext(tempo_map=(TempoChange(0.0, 120.0), TempoChange(2.0, 60.0)), time_signature=(4, 4))
    # bar 1 at 120 bpm (2 s), bar 2 at 60 bpm (4 s)
    assert Length(bars=2).to_seconds(p) == pytest.approx(6.0)
    p = ProjectContext(tempo_map=(TempoChange(0.0, 120.0),), time_signature=(6, 8))
    assert Length(bars=1).to_seconds(p) == pytest.approx(1.5)
    p = ProjectContext(region_end_s=10.0, tempo_map=(TempoChange(0.0, 60.0), TempoChange(8.0, 120.0)))
    assert Length(bars=1).to_seconds(p) == pytest.approx(2.0)


def test_a_done_job_is_complete_even_without_token_counts() -> None:
    # after a restart the journal's done jobs have no token counts; 'segue jobs' showed them at 0.0%
    info = JobInfo(id="j", kind=JobKind.GENERATE, model="m", state=JobState.DONE)
    assert info.fraction == 1.0 and info.to_dict()["fraction"] == 1.0
    assert JobInfo(id="j", kind=JobKind.GENERATE, model="m", state=JobState.FAILED).fraction == 0.0


def test_seeds_are_checked_at_submit_not_on_load() -> None:
    for seed in (-(1 << 63), (1 << 63) - 1):
        JobSpec(kind=JobKind.GENERATE, model="m", length=Length(seconds=1), seeds=(seed,)).check_seeds()
    for seed in (1 << 70, -(1 << 63) - 1):
        spec = JobSpec(kind=JobKind.GENERATE, model="m", length=Length(seconds=1), seeds=(seed,))  # a journal row loads
        with pytest.raises(InputError, match=f"seed {seed} is out of range"):
            spec.check_seeds()


@pytest.mark.parametrize(
    "make",
    [
        lambda: AudioInput(),
        lambda: AudioInput(path="a", data=b"x"),
        lambda: Length(),
        lambda: Length(seconds=-1),
        lambda: ProjectContext(time_signature=(4, 3)),
        lambda: JobSpec(kind=JobKind.CONTINUE, model="m", length=Length(seconds=1)),
        lambda: JobSpec(kind=JobKind.GENERATE, model="m", length=Length(seconds=1), candidates=2, seeds=(1,)),
    ],
)
def test_bad_specs_are_input_errors(make) -> None:
    with pytest.raises(InputError):
        make()
