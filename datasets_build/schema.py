"""The one row schema every source is converted to, and the error bad input raises.

Trainer, evaluator and sandbox all read the same columns whatever the source (HumanEval, MBPP,
HumanEval-mini, HumanEval+, MBPP+, a user's JSONL), so conversion happens once, here at the
edge, and is checked before anything downstream sees a row. ``SCHEMA.md`` documents every column.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from datasets import Features, Sequence, Value

FEATURES = Features(
    {
        "task_id": Value("string"),
        "source": Value("string"),
        "split": Value("string"),
        "entry_point": Value("string"),
        "signature": Value("string"),
        "problem": Value("string"),
        "prompt": Value("string"),
        "context": Value("string"),
        "reference_solution": Value("string"),
        "tests": Sequence(Value("string")),
        "test_setup": Value("string"),
        "challenge_tests": Sequence(Value("string")),
        "category": Value("string"),
        "difficulty": Value("string"),
        "reference_lines": Value("int32"),
        "base_inputs": Value("string"),
        "plus_inputs": Value("string"),
        "atol": Value("float64"),
        "contract": Value("string"),
    }
)
COLUMNS: tuple[str, ...] = tuple(FEATURES)
_LIST_COLUMNS = ("tests", "challenge_tests")
# EvalPlus's columns (HumanEval+, MBPP+). Every other source leaves them at these values, which
# make_row fills in when a converter does not pass them.
EVALPLUS_DEFAULTS: dict[str, Any] = {"base_inputs": "", "plus_inputs": "", "atol": 0.0, "contract": ""}
DIFFICULTIES = ("easy", "medium", "hard")


class DatasetFormatError(ValueError):
    """Input that cannot become a row. The message starts with where it is (``file:line`` or
    ``repo[split] row N``) and the field at fault, so a user can open the file and fix it."""

    def __init__(self, where: str, message: str, field: str | None = None) -> None:
        self.where = where
        self.field = field
        prefix = f"{where}: field '{field}': " if field else f"{where}: "
        super().__init__(prefix + message)


@dataclass(frozen=True)
class DifficultyBands:
    """Difficulty labels for sources that state none, from the reference solution's size.

    Size is a rough proxy (a 3-line solution is rarely hard), but it is available for every row
    and it is what a length curriculum orders by anyway.
    """

    easy_max_lines: int = 4
    medium_max_lines: int = 12

    def __post_init__(self) -> None:
        if not 0 < self.easy_max_lines < self.medium_max_lines:
            raise ValueError("DifficultyBands needs 0 < easy_max_lines < medium_max_lines")

    def label(self, reference_lines: int) -> str:
        if reference_lines <= self.easy_max_lines:
            return "easy"
        if reference_lines <= self.medium_max_lines:
            return "medium"
        return "hard"


def split_key(source: str, split: str) -> str:
    """Name of a (source, split) in the built ``DatasetDict``, e.g. ``humaneval_mini_test``,
    ``mbppplus_test`` (split names must be word characters, so ``-`` becomes ``_`` and ``+``
    becomes ``plus``)."""
    return f"{source}_{split}".replace("-", "_").replace("+", "plus")


def make_row(where: str, **fields: Any) -> dict[str, Any]:
    """Return a complete row, checking every column is present with the right type.

    Converters build rows through this so a converter bug or an odd source value is reported
    with the row's location instead of surfacing as an Arrow cast error far away. The EvalPlus
    columns (``EVALPLUS_DEFAULTS``) may be left out: they then take their "not EvalPlus" values.
    """
    fields = {**EVALPLUS_DEFAULTS, **fields}
    missing = [c for c in COLUMNS if c not in fields]
    extra = sorted(set(fields) - set(COLUMNS))
    if missing or extra:
        raise DatasetFormatError(where, f"internal row has missing {missing} / unknown {extra} columns")
    for name in COLUMNS:
        value = fields[name]
        if name in _LIST_COLUMNS:
            if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
                raise DatasetFormatError(where, "must be a list of strings", name)
        elif name == "reference_lines":
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise DatasetFormatError(where, "must be a non-negative integer", name)
        elif name == "atol":
            if not isinstance(value, float) or not math.isfinite(value) or value < 0:
                raise DatasetFormatError(where, f"must be a finite non-negative float, got {value!r}", name)
        elif not isinstance(value, str):
            raise DatasetFormatError(where, f"must be a string, got {type(value).__name__}", name)
    for name in ("task_id", "source", "split", "entry_point", "reference_solution"):
        if not fields[name].strip():
            raise DatasetFormatError(where, "must not be empty", name)
    if not fields["tests"]:
        raise DatasetFormatError(where, "has no tests; a row without tests would pass vacuously", "tests")
    if not re.fullmatch(r"\w+", split_key(fields["source"], fields["split"])):
        raise DatasetFormatError(where, f"source {fields['source']!r} / split {fields['split']!r} must use only letters, digits, '_', '-' and '+'", "split")
    for name in ("base_inputs", "plus_inputs"):
        text = fields[name]
        if text and not (text.startswith("[") and text.endswith("]")):
            raise DatasetFormatError(where, "must be empty or the JSON text of a list of inputs", name)
    if fields["difficulty"] not in DIFFICULTIES:
        raise DatasetFormatError(where, f"must be one of {DIFFICULTIES}, got {fields['difficulty']!r}", "difficulty")
    return {name: fields[name] for name in COLUMNS}


def reject_duplicate_ids(located_rows: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows, after checking no task_id repeats (a repeat would double-weight a task and
    break joins between evaluation results and rows)."""
    first_seen: dict[str, str] = {}
    for where, row in located_rows:
        task_id = row["task_id"]
        if task_id in first_seen:
            raise DatasetFormatError(where, f"duplicate task_id {task_id!r} (first at {first_seen[task_id]})", "task_id")
        first_seen[task_id] = where
    return [row for _, row in located_rows]
