"""Failure replay: records read from a real reward context (real sandbox), the bounded buffer, group swaps."""

from __future__ import annotations

import pytest

from pipeline.chain import ChainConfig
from pipeline.chain.rollout import ProblemIndex, RolloutState, StagedRollout
from pipeline.training.replay import ReplayBuffer, failure_records
from prompts.record import PROBLEM_COLUMNS
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
def scored() -> tuple[list, dict, list[dict]]:
    """One batch through the real reward functions and sandbox; the failure records of what the scorer kept."""
    scorer = make_scorer(["generator_pass_rate", "format"], RewardConfig(), keep_scored=True)
    funcs = get_reward_funcs(["generator_pass_rate", "format"], RewardConfig(), scorer=scorer)
    batch = columns([
        row("T/1", BUGGY, [[CATCHING, INVALID], [], [], [], []]),
        row("T/2", REFERENCE, [[CATCHING], [], [], [], []]),
        row("T/3", REFERENCE, [[], [], [], [], []], replayed=True),
    ])  # fmt: skip
    rewards = funcs[0](["p1", "p2", "p3"], ["", "", ""], [[1], [1], [1]], **batch)
    funcs[1](["p1", "p2", "p3"], ["", "", ""], [[1], [1], [1]], **batch)
    kept, seconds = scorer.drain()
    assert len(kept) == 1 and seconds > 0  # one batch, scored once for both functions
    assert set(kept[0].returned) == {"generator_pass_rate", "format"}
    assert scorer.drain() == ([], 0.0)
    return rewards, batch, failure_records(kept[0])


def test_one_record_per_completion(scored):
    rewards, _, records = scored
    assert rewards == [0.5, 1.0, 1.0]  # the buggy code fails the catching test, passes its own
    assert [r["task_id"] for r in records] == ["T/1", "T/2", "T/3"]


def test_failures_carry_the_valid_tests_that_caught_them(scored):
    _, _, records = scored
    failed, solved, replay_solved = records
    assert failed["failed"] and not solved["failed"] and not replay_solved["failed"]
    assert failed["item"]["tests"] == ["assert add(1, 2) == 3", CATCHING]  # own + catching, not the invalid one
    assert list(failed["item"]) == [*[c for c in PROBLEM_COLUMNS if c != "tests"], "tests"]
    assert replay_solved["replayed"] and not failed["replayed"]


def test_buffer_adds_failures_graduates_solved_replays_and_evicts_the_oldest(scored):
    _, batch, _ = scored
    buffer = ReplayBuffer(capacity=2)
    buffer.update([{"task_id": "T/3", "failed": True, "replayed": False,
                    "item": {**{k: batch[k][2] for k in PROBLEM_COLUMNS}}}])
    assert list(buffer.items) == ["T/3"]
    buffer.update(scored[2])
    assert list(buffer.items) == ["T/1"] and buffer.graduated == 1
    for name in ("A", "B"):
        buffer.update([{"task_id": name, "failed": True, "replayed": False,
                        "item": {**buffer.items["T/1"], "task_id": name}}])
    assert list(buffer.items) == ["A", "B"] and buffer.evicted == 1


def test_buffer_merges_catching_tests_and_survives_a_save(tmp_path, scored):
    _, _, records = scored
    buffer = ReplayBuffer(capacity=4)
    buffer.update(records)
    again = dict(records[0], item={**records[0]["item"], "tests": ["assert add(9, 9) == 18"]})
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
    _, _, records = scored
    problems = ProblemIndex([{"prompt": f"p{i}", "task_id": f"D/{i}", "problem": "x", "entry_point": "f"}
                             for i in range(40)])
    prompts = [f"p{i // 2}" for i in range(80)]  # 40 groups of 2

    def rollout(ratio: float) -> StagedRollout:
        buffer = ReplayBuffer(capacity=4, ratio=ratio, seed=7)
        buffer.update(records)
        return StagedRollout(problems, ChainConfig(), RolloutState(step=3, replay=buffer))

    def swapped(ratio: float) -> list[str]:
        rows, replayed = rollout(ratio).rows_for(prompts)
        assert replayed == [r["task_id"] == "T/1" for r in rows]
        return [r["task_id"] for r in rows]

    assert swapped(0.0) == [f"D/{i // 2}" for i in range(80)]
    assert swapped(1.0) == ["T/1"] * 80
    half = swapped(0.5)
    assert half == swapped(0.5)  # a pure function of (seed, step, prompt, buffer): same on every process
    assert all(half[i] == half[i + 1] for i in range(0, 80, 2))  # groups are swapped whole
    assert 5 < half.count("T/1") / 2 < 35  # roughly half of the 40 groups
    # A group split over two processes: each half decides alone and reaches the same decision.
    split = rollout(0.5)
    first, _ = split.rows_for(prompts[:41])
    second, _ = split.rows_for(prompts[41:])
    assert [r["task_id"] for r in first + second] == half
    with pytest.raises(ValueError, match="ratio"):
        ReplayBuffer(4, ratio=1.5)
