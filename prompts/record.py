"""The rollout's record of one completion: the contract between the rollout, the rewards, replay and the trainer.

TRL's ``GRPOTrainer`` hands a reward function the batch as keyword arguments, one list per column: the
dataset's columns (the problem) and the extra fields the ``rollout_func`` returns (what the chain wrote).
``ProblemRecord`` and ``RolloutRecord`` name those columns and their types once: the rollout builds its
columns with ``columns``, the rewards check them against ``REWARD_COLUMNS`` (``rewards.batch``), failure replay
copies ``PROBLEM_COLUMNS`` into its buffer, and the trainer's sample log reads them. Plain data only (text,
numbers, lists, dicts), so the rewards never see a model object. Here, beside the prompts, because both
``rewards`` and ``pipeline`` may import ``prompts`` and neither may import the other.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class ProblemRecord:
    """The problem a completion answers: the dataset row's columns (datasets_build/SCHEMA.md) that reach the
    rewards and that failure replay stores (``tests`` then also holds the generated tests that caught a bug)."""

    task_id: str
    problem: str
    signature: str
    entry_point: str
    reference_solution: str
    test_setup: str | None
    tests: Sequence[str]


@dataclass(frozen=True)
class RolloutRecord:
    """What the chain produced for one completion, returned by the ``rollout_func`` as extra fields.

    ``role`` is the role trained on this completion, ``train_stage`` the curriculum stage (0 = all);
    ``stage_texts`` / ``test_texts`` are the generator's and the discriminator's answer per stage,
    ``tests_by_stage`` the discriminator's parsed new tests per stage, ``disc_rejections`` the count of its
    rejected test lines by reason, ``stage_tokens`` the generator's tokens per stage.
    """

    role: str
    train_stage: int
    stage_texts: Sequence[str]
    test_texts: Sequence[str]
    final_code: str
    tests_by_stage: Sequence[Sequence[str]]
    disc_rejections: Mapping[str, int]
    stage_tokens: Sequence[int]


PROBLEM_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ProblemRecord))
ROLLOUT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RolloutRecord))
# What the reward functions read (rewards.batch.parse_batch checks each is there, with one value per completion):
# everything but the texts and token counts that only the logs show.
REWARD_COLUMNS: tuple[str, ...] = tuple(
    name for name in (*ROLLOUT_COLUMNS, *PROBLEM_COLUMNS)
    if name not in ("test_texts", "stage_tokens", "problem", "signature")
)


def columns(records: Sequence[RolloutRecord]) -> dict[str, list[Any]]:
    """The records as TRL's extra fields: one list per ``RolloutRecord`` field, one entry per completion."""
    return {name: [getattr(record, name) for record in records] for name in ROLLOUT_COLUMNS}
