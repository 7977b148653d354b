"""The rollout's record of one completion: the one contract between the rollout, the rewards, replay and the logs.

TRL's ``GRPOTrainer`` hands a reward function the batch as keyword arguments, one list per column: the
dataset's columns merged with the extra fields the ``rollout_func`` returns. The rollout returns every field of
``RolloutRecord`` (the problem it actually posed, which failure replay may have swapped in, and what the chain
wrote), so the reward functions see exactly the records the rollout built; ``rewards.batch.parse_batch`` checks
the columns and turns them back into ``RolloutRecord``\\ s, which the rewards, failure replay and the sample log
read under these names. Plain data only (text, numbers, lists, dicts), so the rewards never see a model object.
Here, beside the prompts, because both ``rewards`` and ``pipeline`` may import ``prompts`` and neither may
import the other.
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
class RolloutRecord(ProblemRecord):
    """One completion: the problem (``ProblemRecord``'s fields) and what the chain produced for it.

    ``role`` is the role trained on this completion, ``train_stage`` the curriculum stage (0 = all);
    ``stage_texts`` / ``test_texts`` are the generator's and the discriminator's answer per stage,
    ``tests_by_stage`` the discriminator's parsed new tests per stage, ``disc_rejections`` the count of its
    rejected test lines by reason, ``stage_tokens`` the generator's tokens per stage; ``replayed`` says that
    failure replay posed this problem again (with the tests that caught an earlier answer).
    """

    role: str
    train_stage: int
    stage_texts: Sequence[str]
    test_texts: Sequence[str]
    final_code: str
    tests_by_stage: Sequence[Sequence[str]]
    disc_rejections: Mapping[str, int]
    stage_tokens: Sequence[int]
    replayed: bool = False

    def stages_in_scope(self, scope: str) -> tuple[int, ...]:
        """Stage ids (1-based) whose tests count for this completion's reward under ``scope`` (``current``: the
        curriculum stage only; otherwise every stage up to it; all of them when ``train_stage`` is 0)."""
        n = len(self.tests_by_stage)
        if self.train_stage == 0:
            return tuple(range(1, n + 1))
        if scope == "current":
            return (self.train_stage,)
        return tuple(range(1, self.train_stage + 1))

    def problem_row(self) -> dict[str, Any]:
        """The problem's columns as a dataset row (what failure replay stores and poses again)."""
        return {name: getattr(self, name) for name in PROBLEM_COLUMNS}


PROBLEM_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ProblemRecord))
RECORD_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(RolloutRecord))
# What the reward functions need (rewards.batch.parse_batch checks each is there, with one value per completion);
# the others (texts and token counts that only the logs show, the replay flag) default when a caller that is not
# the rollout (an evaluation, the bootstrap) leaves them out.
REWARD_COLUMNS: tuple[str, ...] = tuple(
    name for name in RECORD_COLUMNS if name not in ("test_texts", "stage_tokens", "problem", "signature", "replayed")
)


def columns(records: Sequence[RolloutRecord]) -> dict[str, list[Any]]:
    """The records as TRL's extra fields: one list per ``RolloutRecord`` field, one entry per completion."""
    return {name: [getattr(record, name) for record in records] for name in RECORD_COLUMNS}
