"""``DuelState``: one save and one load of what the duel keeps between steps, and a resume that refuses a changed
schedule. train.py wires it without reward-function wrapping or closures (issue 24)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipeline.training.checkpoints import SCHEDULE_FILE, BestTracker, CheckpointError
from pipeline.training.replay import REPLAY_FILE, ReplayBuffer
from pipeline.training.schedule import AdversarialSchedule, ScheduleConfig, ScheduleError
from pipeline.training.state import DuelState
from prompts.record import PROBLEM_COLUMNS

ITEM = {name: f"{name} of T/1" for name in PROBLEM_COLUMNS} | {"task_id": "T/1", "tests": ["assert f(1) == 1"]}


def make(tmp_path: Path, role_steps: int = 1) -> DuelState:
    schedule = AdversarialSchedule(ScheduleConfig(stages=[1, 2], role_steps=role_steps, alternating_steps=0))
    return DuelState(schedule, ReplayBuffer(4, ratio=0.5, seed=3), BestTracker(tmp_path))


def test_the_state_moves_with_the_schedule_and_round_trips_through_a_checkpoint(tmp_path):
    duel = make(tmp_path)
    assert duel.phase.role == "discriminator" and duel.step == 0
    assert duel.enter(1) and duel.phase.role == "generator" and not duel.enter(1)
    assert duel.ends_phase(1) and duel.metrics()["phase/role"] == 1.0
    duel.enter(2)
    duel.buffer.update([{"task_id": "T/1", "failed": True, "replayed": False, "item": ITEM}])
    folder = tmp_path / "checkpoint-2"
    folder.mkdir()
    duel.save(folder, 2)
    assert (folder / SCHEDULE_FILE).is_file() and (folder / REPLAY_FILE).is_file()

    again = make(tmp_path)
    assert again.load(folder) == 2
    assert again.step == 2 and again.phase == duel.phase
    assert again.state_dict(2) == duel.state_dict(2)
    assert again.buffer.choose("p", 5) == duel.buffer.choose("p", 5)  # ratio and seed are the run's, not saved
    fresh = make(tmp_path)
    assert fresh.load_state_dict(duel.state_dict(2)) == 2 and fresh.buffer.items == duel.buffer.items


def test_a_changed_schedule_or_a_foreign_folder_is_refused(tmp_path):
    duel = make(tmp_path)
    folder = tmp_path / "checkpoint-2"
    folder.mkdir()
    duel.save(folder, 2)
    with pytest.raises(ScheduleError, match="schedule"):
        make(tmp_path, role_steps=2).load(folder)
    with pytest.raises(CheckpointError, match="schedule.json"):
        make(tmp_path).load(tmp_path / "elsewhere")


def test_train_py_wires_the_step_without_wrapping_rewards_or_passing_closures():
    tree = ast.parse((Path(__file__).resolve().parents[1] / "train.py").read_text())
    assert not any(isinstance(node, ast.Lambda) for node in ast.walk(tree))
    assigned = [target for node in ast.walk(tree) if isinstance(node, ast.Assign) for target in node.targets]
    assert not any(isinstance(t, ast.Subscript) and getattr(t.value, "id", "") == "reward_funcs" for t in assigned)
    calls = {node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    assert "wrap" not in calls


def test_a_checkpoint_about_to_be_saved_again_loses_its_complete_marker_first(tmp_path):
    """A folder of the same step left by an abandoned run must not look complete while TRL rewrites it."""
    from types import SimpleNamespace

    from transformers import TrainerControl

    from pipeline.training.callbacks import DuelCallback
    from pipeline.training.checkpoints import COMPLETE, is_complete
    from pipeline.training.records import RunFiles
    from rewards import RewardConfig, make_scorer

    duel = make(tmp_path)
    callback = DuelCallback(duel, None, make_scorer(["format"], RewardConfig(), keep_scored=True), RunFiles({}))
    stale = tmp_path / "checkpoint-1"
    stale.mkdir()
    (stale / COMPLETE).write_text("{}")
    args = SimpleNamespace(output_dir=str(tmp_path), should_save=True)
    state = SimpleNamespace(global_step=1, is_world_process_zero=True)
    callback.on_step_end(args, state, TrainerControl(should_save=False))
    assert is_complete(stale)  # no save at this step: left alone
    callback.on_step_end(args, state, TrainerControl(should_save=True))
    assert not is_complete(stale)
