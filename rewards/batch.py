"""The reward functions' view of one batch: TRL's per-column kwargs turned back into the rollout's
one ``prompts.record.RolloutRecord`` per completion, checked once.

The columns come from our rollout and dataset (``prompts.record`` names them), so a missing column or a wrong shape is a pipeline
bug and raises at once with the column's name. What the model wrote (stage texts, code, tests) is
never trusted but always accepted: it is plain text that only the sandbox executes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping, Sequence

from prompts.record import REWARD_COLUMNS, RolloutRecord
from prompts.roles import ROLES


class BatchError(ValueError):
    """The batch's columns are not what the rollout contract promises."""


def _strings(value: Any, what: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise BatchError(f"{what} must be a string or a list of strings, got {type(value).__name__}")


def _row(columns: Mapping[str, Sequence[Any]], i: int, num_stages: int) -> RolloutRecord:
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
    optional = {name: columns[name][i] for name in ("problem", "signature") if name in columns}
    return RolloutRecord(
        task_id=str(columns["task_id"][i]),
        problem=optional.get("problem") or "",
        signature=optional.get("signature") or "",
        entry_point=entry_point,
        reference_solution=reference,
        test_setup=setup or "",
        tests=_strings(columns["tests"][i], f"{where}: tests"),
        role=role,
        train_stage=stage,
        stage_texts=texts + ("",) * (num_stages - len(texts)),
        test_texts=tuple(columns["test_texts"][i]) if "test_texts" in columns else (),
        final_code=final_code,
        tests_by_stage=tests + ((),) * (num_stages - len(tests)),
        disc_rejections=dict(rejections),
        stage_tokens=tuple(columns["stage_tokens"][i]) if "stage_tokens" in columns else (),
        replayed=bool(columns["replayed"][i]) if "replayed" in columns else False,
    )


def parse_batch(kwargs: Mapping[str, Any], num_stages: int) -> list[RolloutRecord]:
    """One ``RolloutRecord`` per completion from TRL's reward kwargs (columns of the record that the rewards do
    not need may be missing; other kwargs are ignored)."""
    missing = [c for c in REWARD_COLUMNS if c not in kwargs]
    if missing:
        raise BatchError(f"reward kwargs lack column(s) {missing}; the rollout must forward them")
    lengths = {c: len(kwargs[c]) for c in REWARD_COLUMNS}
    if len(set(lengths.values())) != 1:
        raise BatchError(f"reward columns have different lengths: {lengths}")
    columns = {c: kwargs[c] for c in REWARD_COLUMNS}
    for name in ("problem", "signature", "test_texts", "stage_tokens", "replayed"):
        if name in kwargs and len(kwargs[name]) == lengths["role"]:
            columns[name] = kwargs[name]
    return [_row(columns, i, num_stages) for i in range(lengths["role"])]


def fingerprint(kwargs: Mapping[str, Any]) -> str:
    """A content hash of the columns the rewards read: TRL calls every reward function with the
    same batch, and this is how they recognise it (object ids may be reused after collection)."""
    payload = json.dumps([kwargs.get(c) for c in REWARD_COLUMNS], sort_keys=True, default=repr)
    return hashlib.sha256(payload.encode()).hexdigest()
