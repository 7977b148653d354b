"""The reward functions' view of one batch: TRL's per-column kwargs turned into one record per
completion, checked once.

The columns come from our rollout and dataset (``prompts.record`` names them), so a missing column or a wrong shape is a pipeline
bug and raises at once with the column's name. What the model wrote (stage texts, code, tests) is
never trusted but always accepted: it is plain text that only the sandbox executes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from prompts.record import REWARD_COLUMNS
from prompts.roles import ROLES


class BatchError(ValueError):
    """The batch's columns are not what the rollout contract promises."""


@dataclass(frozen=True)
class Sample:
    """One completion's episode, as the rewards need it.

    ``tests_by_stage`` and ``stage_texts`` are padded to ``num_stages`` (a rollout that stopped
    early left the later stages empty). ``own_tests`` are the problem's tests.
    """

    role: str
    train_stage: int
    stage_texts: tuple[str, ...]
    final_code: str
    tests_by_stage: tuple[tuple[str, ...], ...]
    rejections: Mapping[str, int]
    task_id: str
    entry_point: str | None
    reference: str
    own_tests: tuple[str, ...]
    setup: str

    def stages_in_scope(self, scope: str) -> tuple[int, ...]:
        """Stage ids (1-based) whose tests count for this sample's reward under ``scope``."""
        n = len(self.tests_by_stage)
        if self.train_stage == 0:
            return tuple(range(1, n + 1))
        if scope == "current":
            return (self.train_stage,)
        return tuple(range(1, self.train_stage + 1))


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise BatchError(f"{what} must be a string or a list of strings, got {type(value).__name__}")


def _row(columns: Mapping[str, Sequence[Any]], i: int, num_stages: int) -> Sample:
    where = f"row {i}"
    role = columns["role"][i]
    if role not in ROLES:
        raise BatchError(f"{where}: role must be one of {ROLES}, got {role!r}")
    stage = columns["train_stage"][i]
    if isinstance(stage, bool) or not isinstance(stage, int) or not 0 <= stage <= num_stages:
        raise BatchError(f"{where}: train_stage must be an int in 0..{num_stages}, got {stage!r}")
    texts = _strings(columns["stage_texts"][i], f"{where}: stage_texts")
    tests = columns["tests_by_stage"][i]
    if not isinstance(tests, (list, tuple)):
        raise BatchError(f"{where}: tests_by_stage must be a list of lists of strings")
    tests = tuple(_strings(t, f"{where}: tests_by_stage[{k}]") for k, t in enumerate(tests))
    if len(texts) > num_stages or len(tests) > num_stages:
        raise BatchError(f"{where}: more than {num_stages} stages in stage_texts or tests_by_stage")
    rejections = columns["disc_rejections"][i] or {}
    if not isinstance(rejections, Mapping) or not all(
        isinstance(k, str) and isinstance(v, int) and not isinstance(v, bool) and v >= 0 for k, v in rejections.items()
    ):
        raise BatchError(f"{where}: disc_rejections must map reason strings to counts >= 0")
    final_code, reference, setup = columns["final_code"][i], columns["reference_solution"][i], columns["test_setup"][i]
    for name, value in (("final_code", final_code), ("reference_solution", reference)):
        if not isinstance(value, str):
            raise BatchError(f"{where}: {name} must be a string, got {type(value).__name__}")
    if setup is not None and not isinstance(setup, str):
        raise BatchError(f"{where}: test_setup must be a string or None")
    entry_point = columns["entry_point"][i] or None
    if entry_point is not None and (not isinstance(entry_point, str) or not entry_point.isidentifier()):
        raise BatchError(f"{where}: entry_point must be a Python identifier, got {entry_point!r}")
    return Sample(
        role=role,
        train_stage=stage,
        stage_texts=texts + ("",) * (num_stages - len(texts)),
        final_code=final_code,
        tests_by_stage=tests + ((),) * (num_stages - len(tests)),
        rejections=dict(rejections),
        task_id=str(columns["task_id"][i]),
        entry_point=entry_point,
        reference=reference,
        own_tests=_strings(columns["tests"][i], f"{where}: tests"),
        setup=setup or "",
    )


def parse_batch(kwargs: Mapping[str, Any], num_stages: int) -> list[Sample]:
    """One ``Sample`` per completion from TRL's reward kwargs (other kwargs are ignored)."""
    missing = [c for c in REWARD_COLUMNS if c not in kwargs]
    if missing:
        raise BatchError(f"reward kwargs lack column(s) {missing}; the rollout must forward them")
    lengths = {c: len(kwargs[c]) for c in REWARD_COLUMNS}
    if len(set(lengths.values())) != 1:
        raise BatchError(f"reward columns have different lengths: {lengths}")
    columns = {c: kwargs[c] for c in REWARD_COLUMNS}
    return [_row(columns, i, num_stages) for i in range(lengths["role"])]


def fingerprint(kwargs: Mapping[str, Any]) -> str:
    """A content hash of the columns the rewards read: TRL calls every reward function with the
    same batch, and this is how they recognise it (object ids may be reused after collection)."""
    payload = json.dumps([kwargs.get(c) for c in REWARD_COLUMNS], sort_keys=True, default=repr)
    return hashlib.sha256(payload.encode()).hexdigest()
