"""Failure replay: problems the generator failed come back in later batches (Code-A1's "Mistake Book").

A problem enters the buffer when the generator's final code fails one of its tests (its own or a
valid discriminator test); it is stored with the valid discriminator tests that caught the code
added to its own tests, so the replayed problem is harder than the original. It leaves the buffer
when a replay of it passes all of those tests, or when the buffer is full and it is the oldest.

Mechanics, and why they hold under several processes:

* the first reward function of the trainer is wrapped (``FailureRecorder``); after it has scored a
  batch it reads the batch's reward context (``rewards.RewardContext``: verdicts per test, valid
  tests) and queues one record per completion;
* at every step end ``ReplayCallback`` gathers the queued records of all processes and applies
  them in the same order everywhere, so every process holds the same buffer;
* ``ReplayRollout`` decides per prompt group, from a hash of (seed, step, prompt), whether to swap
  the group for a buffer item. Every process decides the same for the same group, also when a
  group spans two processes. The swapped rows reach the rewards as extra fields (TRL merges a
  rollout's extra fields into the input rows, overriding the dataset columns).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol

from prompts.record import PROBLEM_COLUMNS
from transformers import TrainerCallback

from pipeline.chain.rollout import StagedRollout, prompt_key

# The problem columns a replayed row replaces (what the chain prompts and the rewards read).
ROW_FIELDS = PROBLEM_COLUMNS  # the problem's columns (prompts.record.ProblemRecord), stored and replayed as they are
REPLAY_FILE = "replay.json"


class ReplayBuffer:
    """Bounded, insertion-ordered store of failed problems, keyed by task id."""

    def __init__(self, capacity: int):
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"replay capacity must be an integer >= 0, got {capacity!r}")
        self.capacity = capacity
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

    def choose(self, key: str, step: int, ratio: float, seed: int) -> dict[str, Any] | None:
        """The item that replaces the group of prompt ``key`` at ``step``, or None (probability 1 - ratio).

        A pure function of its arguments and the buffer, so all processes agree on it.
        """
        if not self.items or ratio <= 0:
            return None
        digest = hashlib.sha256(f"{seed}:{step}:{key}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        if draw >= ratio:
            return None
        index = int.from_bytes(digest[8:16], "big") % len(self.items)
        return next(item for i, item in enumerate(self.items.values()) if i == index)

    def state_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "items": list(self.items.values()),
                "counters": {"added": self.added, "graduated": self.graduated, "evicted": self.evicted}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        items = state.get("items")
        if not isinstance(items, list) or not all(isinstance(i, dict) and set(ROW_FIELDS) <= set(i) for i in items):
            raise ValueError(f"replay state must hold a list of items with the fields {ROW_FIELDS}")
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


def failure_records(context: Any, columns: Mapping[str, list]) -> list[dict[str, Any]]:
    """One record per completion of a scored batch: did the final code fail, and which tests caught it.

    ``context`` is the batch's ``rewards.RewardContext`` (read through ``samples``, ``valid_tests``
    and ``code_verdicts``); ``columns`` are the reward kwargs (the batch's dataset columns).
    Completions whose every verdict is a sandbox failure say nothing and give no record.
    """
    records = []
    replayed = columns.get("replayed") or [False] * len(context.samples)
    for i, sample in enumerate(context.samples):
        verdicts = context.code_verdicts[i]
        generated = [t for t in context.valid_tests(i) if t not in sample.own_tests]
        judged = {t: verdicts[t] for t in dict.fromkeys([*sample.own_tests, *generated])
                  if verdicts[t].status != "infra_error"}
        if not judged:
            continue
        catching = [t for t in generated if t in judged and not judged[t].passed]
        item = {name: columns[name][i] for name in ROW_FIELDS if name != "tests"}
        item["tests"] = [*sample.own_tests, *catching]
        records.append({"task_id": sample.task_id, "failed": not all(v.passed for v in judged.values()),
                        "replayed": bool(replayed[i]), "item": item})
    return records


class BatchScorer(Protocol):
    """What replay needs of the rewards' scorer (``rewards.RewardScorer``): the scored batch's context."""

    def context(self, kwargs: Mapping[str, Any]) -> tuple[Any, bool]: ...


class FailureRecorder:
    """Queues ``failure_records`` of every scored batch, read from the ``scorer`` the reward functions share
    (``rewards.make_scorer``), so the recorder does not depend on which reward function it wraps."""

    def __init__(self, scorer: BatchScorer):
        self.scorer = scorer
        self.pending: list[dict[str, Any]] = []

    def wrap(self, reward_fn: Callable[..., list]) -> Callable[..., list]:
        """``reward_fn`` unchanged in what it returns and how TRL names it, recording after each call."""

        def recorded(prompts: list, completions: list, completion_ids: list | None = None, **kwargs: Any) -> list:
            rewards = reward_fn(prompts, completions, completion_ids, **kwargs)
            self.pending.extend(failure_records(self.scorer.context(kwargs)[0], kwargs))
            return rewards

        recorded.__name__ = recorded.__qualname__ = reward_fn.__name__
        recorded.__dict__.update(getattr(reward_fn, "__dict__", {}))  # e.g. the rewards' `scorer`
        return recorded


class ReplayCallback(TrainerCallback):
    """Moves every process's queued records into the (identical) buffers at each step end."""

    def __init__(self, buffer: ReplayBuffer, recorder: FailureRecorder):
        self.buffer, self.recorder = buffer, recorder

    def on_step_end(self, args, state, control, **kwargs):
        from accelerate.utils import gather_object

        records, self.recorder.pending = self.recorder.pending, []
        self.buffer.update(gather_object(records))  # collective: every process calls it every step


class ReplayRollout(StagedRollout):
    """``StagedRollout`` that swaps whole prompt groups for replay items at ``ratio`` (0 = never) and
    returns the problem columns of every row as extra fields (``ROW_FIELDS`` and ``replayed``)."""

    def __init__(self, *args: Any, buffer: ReplayBuffer, ratio: float = 0.0, seed: int = 0, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if not 0.0 <= ratio <= 1.0:
            raise ValueError(f"replay ratio must lie in [0, 1], got {ratio!r}")
        self.buffer, self.ratio, self.seed = buffer, ratio, seed
        self.last_rows: list[dict[str, Any]] = []
        self.last_replayed: list[bool] = []

    def problems_for(self, prompts: list[Any], trainer: Any) -> list[dict[str, Any]]:
        rows = super().problems_for(prompts, trainer)
        step = trainer.state.global_step
        decided: dict[str, dict[str, Any] | None] = {}
        self.last_rows, self.last_replayed = [], []
        for prompt, row in zip(prompts, rows):
            key = prompt_key(prompt)
            if key not in decided:
                decided[key] = self.buffer.choose(key, step, self.ratio, self.seed)
            item = decided[key]
            self.last_rows.append({**row, **item} if item is not None else row)
            self.last_replayed.append(item is not None)
        return self.last_rows

    def __call__(self, prompts: list[Any], trainer: Any) -> dict[str, Any]:
        out = super().__call__(prompts, trainer)
        for name in ROW_FIELDS:
            out[name] = [row.get(name) for row in self.last_rows]
        out["replayed"] = list(self.last_replayed)
        return out
