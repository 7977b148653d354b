"""The adversarial schedule: phases per step, alignment with TRL's generation batches, saved positions."""

from __future__ import annotations

import pytest

from pipeline.chain.rollout import Phase
from pipeline.training.schedule import (
    AdversarialSchedule,
    ScheduleConfig,
    ScheduleError,
    check_alignment,
    generation_period,
)


def roles(schedule: AdversarialSchedule, steps: int) -> list[tuple[str, int]]:
    return [(p.role, p.train_stage) for p in map(schedule.phase_at, range(steps))]


def test_each_stage_opens_with_n_discriminator_then_n_generator_steps_then_alternates():
    schedule = AdversarialSchedule(ScheduleConfig(stages=[1, 2], role_steps=2, alternating_steps=3))
    d, g = "discriminator", "generator"
    assert roles(schedule, 14) == [
        (d, 1), (d, 1), (g, 1), (g, 1), (d, 1), (g, 1), (d, 1),
        (d, 2), (d, 2), (g, 2), (g, 2), (d, 2), (g, 2), (d, 2),
    ]  # fmt: skip
    assert schedule.length == 14


def test_beyond_the_schedule_training_stays_in_the_last_stage_and_keeps_alternating():
    schedule = AdversarialSchedule(ScheduleConfig(stages=[3], role_steps=1, alternating_steps=0, alternate_every=2))
    assert roles(schedule, 6) == [("discriminator", 3), ("generator", 3), ("discriminator", 3),
                                  ("discriminator", 3), ("generator", 3), ("generator", 3)]


def test_unified_and_all_stages_at_once():
    unified = AdversarialSchedule(ScheduleConfig(schedule="unified", stages=[1, 5], role_steps=1, alternating_steps=1))
    assert [unified.phase_at(s) for s in range(6)] == [Phase("unified", 1)] * 3 + [Phase("unified", 5)] * 3
    at_once = AdversarialSchedule(ScheduleConfig(curriculum="all", role_steps=1, alternating_steps=0))
    assert roles(at_once, 2) == [("discriminator", 0), ("generator", 0)]
    assert at_once.length == 2


@pytest.mark.parametrize("kwargs, message", [
    ({"stages": [0, 1]}, "curriculum 'all'"),
    ({"stages": [6]}, "1..5"),
    ({"stages": []}, "non-empty"),
    ({"schedule": "selfplay"}, "schedule must be one of"),
    ({"curriculum": "random"}, "curriculum must be one of"),
    ({"role_steps": -1}, "role_steps"),
    ({"alternate_every": 0}, "alternate_every"),
    ({"role_steps": 0, "alternating_steps": 0}, "empty"),
])  # fmt: skip
def test_invalid_schedules_are_refused_with_the_field_name(kwargs, message):
    with pytest.raises(ScheduleError, match=message):
        ScheduleConfig(**kwargs)


def test_generation_period_follows_trl_buffering():
    # TRL generates every steps_per_generation * num_iterations micro-steps.
    assert generation_period(gradient_accumulation_steps=1, steps_per_generation=1, num_iterations=1) == 1
    assert generation_period(gradient_accumulation_steps=4, steps_per_generation=4, num_iterations=1) == 1
    assert generation_period(gradient_accumulation_steps=2, steps_per_generation=2, num_iterations=3) == 3
    assert generation_period(gradient_accumulation_steps=4, steps_per_generation=2, num_iterations=1) == 1
    assert generation_period(gradient_accumulation_steps=2, steps_per_generation=4, num_iterations=1) == 2


def test_phase_changes_inside_a_generation_batch_are_refused():
    schedule = AdversarialSchedule(ScheduleConfig(stages=[1], role_steps=1, alternating_steps=0))
    with pytest.raises(ScheduleError, match="inside a generation batch"):
        check_alignment(schedule, 4, gradient_accumulation_steps=1, steps_per_generation=1, num_iterations=2,
                        save_steps=None)
    aligned = AdversarialSchedule(ScheduleConfig(stages=[1], role_steps=2, alternating_steps=2, alternate_every=2))
    assert check_alignment(aligned, 8, gradient_accumulation_steps=1, steps_per_generation=1, num_iterations=2,
                           save_steps=4) == 2
    with pytest.raises(ScheduleError, match="save_steps=3"):
        check_alignment(aligned, 8, gradient_accumulation_steps=1, steps_per_generation=1, num_iterations=2,
                        save_steps=3)


def test_saved_position_must_match_the_schedule_on_resume():
    schedule = AdversarialSchedule(ScheduleConfig(stages=[1, 2], role_steps=1, alternating_steps=0))
    saved = schedule.state_dict(2)
    assert saved["position"] == {"global_step": 2, "block": 1, "step_in_block": 0,
                                 "role": "discriminator", "train_stage": 2}
    schedule.check_state(saved)
    changed = AdversarialSchedule(ScheduleConfig(stages=[1, 2], role_steps=2, alternating_steps=0))
    with pytest.raises(ScheduleError, match="schedule settings changed"):
        changed.check_state(saved)
