"""Failure replay: problems the generator failed come back in later batches (Code-A1's "Mistake Book").

A problem enters the buffer when the generator's final code fails one of its tests (its own or a
valid discriminator test); it is stored with the valid discriminator tests that caught the code
added to its own tests, so the replayed problem is harder than the original. It leaves the buffer
when a replay of it passes all of those tests, or when the buffer is full and it is the oldest.

Mechanics, and why they hold under several processes:

* the rewards' scorer keeps every batch it scored (``rewards.RewardScorer``, ``keep_scored``); at every step
  end ``DuelCallback`` (``pipeline.training.callbacks``) drains them, turns each completion's
  ``prompts.record.RolloutRecord`` and verdicts into one record (``failure_records``), gathers the records of
  all processes and applies them in the same order everywhere, so every process holds the same buffer;
* the rollout (``pipeline.chain.rollout.StagedRollout.rows_for``) asks the buffer, per prompt group, whether
  to swap the group for a stored problem: a hash of (seed, step, prompt) decides, so every process decides
  the same for the same group, also when a group spans two processes. The rollout returns the problem it
  posed in every record, so the rewards score the swapped problem.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Iterable, Mapping

from prompts.record import PROBLEM_COLUMNS

REPLAY_FILE = "replay.json"


class ReplayBuffer:
    """Bounded, insertion-ordered store of failed problems, keyed by task id; a stored problem replaces a prompt
    group with probability ``ratio`` (0 = never), decided by a hash of (``seed``, step, prompt)."""

    def __init__(self, capacity: int, ratio: float = 0.0, seed: int = 0):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"replay capacity must be an integer >= 0, got {capacity!r}")
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"replay ratio must lie in [0, 1], got {ratio!r}")
        self.capacity, self.ratio, self.seed = capacity, ratio, seed
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.added = self.graduated = self.evicted = 0

    def __len__(self) -> int:
        return len(self.items)

    def update(self, records: Iterable[Mapping[str, Any]]) -> None:
        """Apply one step's records (see ``failure_records``), aggregated per task.

        A task with any failed completion is (re)inserted at the newest end, its catching tests
        merged with those already stored; a task whose replayed completions all passed leaves.
        """
        failed: dict[str, dict[str, Any]] = {}
        solved_replays: set[str] = set()
        for record in records:
            task = str(record["task_id"])
            if record["failed"]:
                item = failed.setdefault(task, {**record["item"], "tests": []})
                item["tests"] = list(dict.fromkeys([*item["tests"], *record["item"]["tests"]]))
            elif record["replayed"]:
                solved_replays.add(task)
        for task in solved_replays - set(failed):
            if self.items.pop(task, None) is not None:
                self.graduated += 1
        if self.capacity == 0:
            return
        for task, item in failed.items():
            if task in self.items:
                item["tests"] = list(dict.fromkeys([*self.items.pop(task)["tests"], *item["tests"]]))
            else:
                self.added += 1
            self.items[task] = item
        while len(self.items) > self.capacity:
            self.items.popitem(last=False)
            self.evicted += 1

    def choose(self, key: str, step: int) -> dict[str, Any] | None:
        """The item that replaces the group of prompt ``key`` at ``step``, or None (probability 1 - ratio).

        A pure function of its arguments and the buffer, so all processes agree on it.
        """
        if not self.items or self.ratio <= 0:
            return None
        digest = hashlib.sha256(f"{self.seed}:{step}:{key}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        if draw >= self.ratio:
            return None
        index = int.from_bytes(digest[8:16], "big") % len(self.items)
        return next(item for i, item in enumerate(self.items.values()) if i == index)

    def state_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "items": list(self.items.values()),
                "counters": {"added": self.added, "graduated": self.graduated, "evicted": self.evicted}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        items = state.get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) and set(PROBLEM_COLUMNS) <= set(i) for i in items):
            raise ValueError(f"replay state must hold a list of items with the fields {PROBLEM_COLUMNS}")
        self.items = OrderedDict((str(item["task_id"]), dict(item)) for item in items)
        counters = state.get("counters", {})
        self.added, self.graduated, self.evicted = (int(counters.get(k, 0)) for k in ("added", "graduated", "evicted"))
        while len(self.items) > self.capacity:  # resumed with a smaller capacity: keep the newest
            self.items.popitem(last=False)

    def save(self, folder: str | os.PathLike[str]) -> Path:
        path = Path(folder) / REPLAY_FILE
        path.write_text(json.dumps(self.state_dict(), indent=1))
        return path

    def load(self, folder: str | os.PathLike[str]) -> bool:
        """Restore from ``folder/replay.json``; False if the folder has none (e.g. replay was off)."""
        path = Path(folder) / REPLAY_FILE
        if not path.is_file():
            return False
        try:
            self.load_state_dict(json.loads(path.read_text()))
        except (ValueError, TypeError) as err:
            raise ValueError(f"{path} is not a replay buffer state: {err}") from err
        return True

    def metrics(self) -> dict[str, float]:
        return {"replay/size": float(len(self.items)), "replay/added": float(self.added),
                "replay/graduated": float(self.graduated), "replay/evicted": float(self.evicted)}


def failure_records(context: Any) -> list[dict[str, Any]]:
    """One record per completion of a scored batch: did the final code fail, and which tests caught it.

    ``context`` is the batch's ``rewards.RewardContext``: its ``samples`` (the rollout's ``RolloutRecord`` objects),
    ``valid_tests`` and ``code_verdicts``. Completions whose every verdict is a sandbox failure say nothing and
    give no record.
    """
    records = []
    for i, record in enumerate(context.samples):
        verdicts = context.code_verdicts[i]
        generated = [t for t in context.valid_tests(i) if t not in record.tests]
        judged = {t: verdicts[t] for t in dict.fromkeys([*record.tests, *generated])
                  if verdicts[t].status != "infra_error"}
        if not judged:
            continue
        catching = [t for t in generated if t in judged and not judged[t].passed]
        item = record.problem_row()
        del item["tests"]  # stored last, with the catching tests added
        item["tests"] = [*record.tests, *catching]
        records.append({"task_id": record.task_id, "failed": not all(v.passed for v in judged.values()),
                        "replayed": record.replayed, "item": item})
    return records
