"""Failure replay: records read from a real reward context (real sandbox), the bounded buffer, group swaps."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pipeline.chain import ChainConfig
from pipeline.chain.rollout import ProblemIndex
from pipeline.training.replay import ROW_FIELDS, FailureRecorder, ReplayBuffer, ReplayRollout
from rewards import RewardConfig, get_reward_funcs, make_scorer

REFERENCE = "def add(a, b):\n    return a + b\n"
BUGGY = "def add(a, b):\n    return a + b if a < 5 else 0\n"
CATCHING = "assert add(7, 1) == 8"  # valid (the reference passes it) and fails the buggy code
INVALID = "assert add(1, 1) == 3"  # the reference fails it: never a catching test


def row(task_id: str, final_code: str, tests_by_stage: list[list[str]], replayed: bool = False) -> dict:
    return {
        "role": "generator", "train_stage": 1, "stage_texts": ["think"] * 5, "final_code": final_code,
        "tests_by_stage": tests_by_stage, "disc_rejections": {}, "task_id": task_id, "entry_point": "add",
        "reference_solution": REFERENCE, "tests": ["assert add(1, 2) == 3"], "test_setup": "",
        "problem": f"Add two numbers ({task_id}).", "signature": "def add(a, b):", "replayed": replayed,
    }  # fmt: skip


def columns(rows: list[dict]) -> dict[str, list]:
    return {key: [r[key] for r in rows] for key in rows[0]}


@pytest.fixture(scope="module")
def scored() -> tuple[list, dict, FailureRecorder]:
    """One batch through the real reward function and sandbox, with the recorder around it."""
    scorer = make_scorer(["generator_pass_rate", "format"], RewardConfig())
    funcs = get_reward_funcs(["generator_pass_rate", "format"], RewardConfig(), scorer=scorer)
    recorder = FailureRecorder(scorer)
    wrapped = recorder.wrap(funcs[1])  # any of the functions: the recorder reads the shared scorer, not its reward
    batch = columns([
        row("T/1", BUGGY, [[CATCHING, INVALID], [], [], [], []]),
        row("T/2", REFERENCE, [[CATCHING], [], [], [], []]),
        row("T/3", REFERENCE, [[], [], [], [], []], replayed=True),
    ])  # fmt: skip
    wrapped(["p1", "p2", "p3"], ["", "", ""], [[1], [1], [1]], **batch)
    rewards = funcs[0](["p1", "p2", "p3"], ["", "", ""], [[1], [1], [1]], **batch)
    return rewards, batch, recorder


def test_wrapper_keeps_the_reward_and_its_name_and_queues_one_record_per_completion(scored):
    rewards, _, recorder = scored
    assert rewards == [0.5, 1.0, 1.0]  # the buggy code fails the catching test, passes its own
    assert [r["task_id"] for r in recorder.pending] == ["T/1", "T/2", "T/3"]
    wrapped = recorder.wrap(get_reward_funcs(["format"], RewardConfig())[0])
    assert wrapped.__name__ == "format" and hasattr(wrapped, "scorer")


def test_failures_carry_the_valid_tests_that_caught_them(scored):
    _, _, recorder = scored
    failed, solved, replay_solved = recorder.pending
    assert failed["failed"] and not solved["failed"] and not replay_solved["failed"]
    assert failed["item"]["tests"] == ["assert add(1, 2) == 3", CATCHING]  # own + catching, not the invalid one
    assert set(failed["item"]) == set(ROW_FIELDS)
    assert replay_solved["replayed"] and not failed["replayed"]


def test_buffer_adds_failures_graduates_solved_replays_and_evicts_the_oldest(scored):
    _, batch, _ = scored
    buffer = ReplayBuffer(capacity=2)
    buffer.update([{"task_id": "T/3", "failed": True, "replayed": False,
                    "item": {**{k: batch[k][2] for k in ROW_FIELDS}}}])
    assert list(buffer.items) == ["T/3"]
    buffer.update(scored[2].pending)
    assert list(buffer.items) == ["T/1"] and buffer.graduated == 1
    for name in ("A", "B"):
        buffer.update([{"task_id": name, "failed": True, "replayed": False,
                        "item": {**buffer.items["T/1"], "task_id": name}}])
    assert list(buffer.items) == ["A", "B"] and buffer.evicted == 1


def test_buffer_merges_catching_tests_and_survives_a_save(tmp_path, scored):
    _, _, recorder = scored
    buffer = ReplayBuffer(capacity=4)
    buffer.update(recorder.pending)
    again = dict(recorder.pending[0], item={**recorder.pending[0]["item"], "tests": ["assert add(9, 9) == 18"]})
    buffer.update([again])
    assert buffer.items["T/1"]["tests"] == ["assert add(1, 2) == 3", CATCHING, "assert add(9, 9) == 18"]
    buffer.save(tmp_path)
    restored = ReplayBuffer(capacity=4)
    assert restored.load(tmp_path) and restored.state_dict() == buffer.state_dict()
    assert not ReplayBuffer(4).load(tmp_path / "nowhere")
    (tmp_path / "replay.json").write_text('{"items": [{"task_id": 1}]}')
    with pytest.raises(ValueError, match="replay"):
        ReplayBuffer(4).load(tmp_path)


def test_rollout_swaps_whole_groups_and_every_process_agrees(scored):
    _, _, recorder = scored
    buffer = ReplayBuffer(capacity=4)
    buffer.update(recorder.pending)
    problems = ProblemIndex([{"prompt": f"p{i}", "task_id": f"D/{i}", "problem": "x", "entry_point": "f"}
                             for i in range(40)])
    prompts = [f"p{i // 2}" for i in range(80)]  # 40 groups of 2
    trainer = SimpleNamespace(state=SimpleNamespace(global_step=3))

    def swapped(ratio: float) -> list[str]:
        rollout = ReplayRollout(problems, ChainConfig(), buffer=buffer, ratio=ratio, seed=7)
        return [r["task_id"] for r in rollout.problems_for(prompts, trainer)]

    assert swapped(0.0) == [f"D/{i // 2}" for i in range(80)]
    assert swapped(1.0) == ["T/1"] * 80
    half = swapped(0.5)
    assert half == swapped(0.5)  # a pure function of (seed, step, prompt, buffer): same on every process
    assert all(half[i] == half[i + 1] for i in range(0, 80, 2))  # groups are swapped whole
    assert 5 < half.count("T/1") / 2 < 35  # roughly half of the 40 groups
    # A group split over two processes: each half decides alone and reaches the same decision.
    rollout = ReplayRollout(problems, ChainConfig(), buffer=buffer, ratio=0.5, seed=7)
    first = rollout.problems_for(prompts[:41], trainer)
    second = rollout.problems_for(prompts[41:], trainer)
    assert [r["task_id"] for r in first + second] == half
