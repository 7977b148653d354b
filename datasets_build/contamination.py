"""Keep training and evaluation apart: find tasks that appear on both sides, and say why.

A task counts as overlapping when its normalised problem statement or its normalised reference
solution equals one on the other side, or the very same task is on both sides: the same source
and task id, or the same task of one benchmark family whatever the variant (``task_identity``:
MBPP, MBPP sanitized and MBPP+ ``Mbpp/N`` are all MBPP task N, which matters because MBPP+ takes
tasks from MBPP's train and validation splits too; HumanEval and HumanEval+ share their ids).
Matching entry point names is available but off by default: MBPP's train and test splits share
38 names (``check``, ``text_match``, ...) across mostly unrelated tasks, while the problem-text
rule finds MBPP's three real duplicates (test 216/217/248 = train 872/602/704). (MBPP's train
task 928 is test task 427 too, with "by using regex" dropped from the statement and an unreachable
line added to the code; neither rule sees it, but MBPP+ states 427 as 928 does.)
"""

from __future__ import annotations

import ast
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .pysource import parse

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ContaminationConfig:
    """Which signals make two tasks "the same"."""

    match_problem: bool = True
    match_solution: bool = True
    match_entry_point: bool = False


@dataclass(frozen=True)
class Overlap:
    """One training task that overlaps one evaluation task, with the signals that matched."""

    train_task: str
    eval_task: str
    reasons: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.train_task} ~ {self.eval_task} ({', '.join(self.reasons)})"


class ContaminationError(RuntimeError):
    """Training data overlaps evaluation data; the message lists every overlapping pair."""

    def __init__(self, overlaps: list[Overlap]) -> None:
        self.overlaps = overlaps
        listed = "\n".join(f"  {o}" for o in overlaps)
        super().__init__(
            f"{len(overlaps)} training task(s) overlap evaluation tasks:\n{listed}\n"
            "Remove them from the training data, or allow the overlap explicitly."
        )


def normalise_text(text: str) -> str:
    """Lower case, punctuation and whitespace runs collapsed to single spaces."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text.lower()).split())


def normalise_code(source: str) -> str:
    """Source without docstrings, comments or formatting differences (via ``ast.unparse``);
    whitespace-collapsed text if it does not parse."""
    try:
        tree = parse(source)
    except SyntaxError:
        return " ".join(source.split())
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.unparse(tree)


def task_name(row: Mapping[str, Any]) -> str:
    return f"{row['source']}:{row['task_id']}"


# Sources that are variants of one benchmark, and the task ids they give its tasks.
_FAMILIES = (
    ("MBPP", ("mbpp", "mbpp-sanitized", "mbpp+"), re.compile(r"mbpp/(\d+)", re.IGNORECASE)),
    ("HumanEval", ("humaneval", "humaneval+"), re.compile(r"humaneval/(\d+)", re.IGNORECASE)),
)


def task_identity(row: Mapping[str, Any]) -> str:
    """The task a row is, across variants of one benchmark: ``MBPP/2`` for ``mbpp:MBPP/2``,
    ``mbpp-sanitized:MBPP/2`` and ``mbpp+:Mbpp/2``; ``HumanEval/0`` for HumanEval and
    HumanEval+. Other rows are their own task (``task_name``)."""
    for family, sources, pattern in _FAMILIES:
        if row["source"] in sources:
            match = pattern.fullmatch(row["task_id"])
            if match:
                return f"{family}/{int(match.group(1))}"
    return task_name(row)


def _keys(row: Mapping[str, Any], config: ContaminationConfig) -> list[tuple[str, str]]:
    keys = [("same task", task_identity(row))]
    if config.match_problem:
        keys.append(("same problem text", normalise_text(row["problem"])))
    if config.match_solution:
        keys.append(("same reference solution", normalise_code(row["reference_solution"])))
    if config.match_entry_point:
        keys.append(("same entry point", row["entry_point"]))
    return keys


def find_overlaps(
    train_rows: Iterable[Mapping[str, Any]],
    eval_rows: Iterable[Mapping[str, Any]],
    config: ContaminationConfig = ContaminationConfig(),
) -> list[Overlap]:
    """Every (training task, evaluation task) pair that matches on some signal, with reasons.

    Rows are schema rows (dicts, or a ``datasets.Dataset`` iterated row by row).
    """
    index: dict[tuple[str, str], list[str]] = defaultdict(list)
    for row in eval_rows:
        for reason, key in _keys(row, config):
            if key:
                index[reason, key].append(task_name(row))
    found: dict[tuple[str, str], list[str]] = {}
    for row in train_rows:
        for reason, key in _keys(row, config):
            for eval_task in index.get((reason, key), []):
                found.setdefault((task_name(row), eval_task), []).append(reason)
    return [Overlap(train, evaluation, tuple(reasons)) for (train, evaluation), reasons in found.items()]


def check_contamination(
    train_rows: Iterable[Mapping[str, Any]],
    eval_rows: Iterable[Mapping[str, Any]],
    *,
    allow: bool = False,
    config: ContaminationConfig = ContaminationConfig(),
) -> list[Overlap]:
    """Raise ContaminationError if training overlaps evaluation, unless ``allow`` (then the
    overlaps are logged as a warning and returned)."""
    overlaps = find_overlaps(train_rows, eval_rows, config)
    if overlaps and not allow:
        raise ContaminationError(overlaps)
    for overlap in overlaps:
        logger.warning("allowed train/eval overlap: %s", overlap)
    return overlaps
