"""HumanEval+ and MBPP+ release records to schema rows.

The rows keep EvalPlus's test inputs as JSON text (``base_inputs``, ``plus_inputs``) with the
tolerance (``atol``) and input-validity assertions (``contract``), and also carry ordinary
``tests`` (HumanEval's ``check`` split as for HumanEval, one test per MBPP+ ``assert``) so every
other part of the project can use them like any row. Expected outputs are not computed here.
The records come already read and version-checked (``evalplus_release``), but each is still
checked field by field: a malformed one raises DatasetFormatError naming the record and field.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import json
import math
import re
import sys
from collections.abc import Mapping
from typing import Any

from .evalplus_release import LABELS, PLUS_NAMES, PlusName, check_name, how_to_provide
from .humaneval import humaneval_row
from .jsonl import Record, require
from .pysource import code_lines, normalise_newlines, parse, signature_of, top_level_function
from .schema import DatasetFormatError, DifficultyBands, make_row, reject_duplicate_ids

PLUS_SPLIT = "test"
# Fields of every release record, then the one test field each dataset adds.
COMMON_FIELDS = ("task_id", "prompt", "entry_point", "canonical_solution", "base_input", "plus_input", "atol", "contract")
RELEASE_FIELDS: dict[str, tuple[str, ...]] = {"humaneval+": (*COMMON_FIELDS, "test"), "mbpp+": (*COMMON_FIELDS, "assertion")}
TASK_ID_PATTERNS: dict[str, str] = {"humaneval+": r"HumanEval/\d+", "mbpp+": r"Mbpp/\d+"}


def _inputs_json(where: str, record: Mapping[str, Any], field: str) -> str:
    """The inputs as JSON text: a list with one list of positional arguments per call.

    ``json.dumps`` keeps ints of any size and writes inf as ``Infinity`` (MBPP+ Mbpp/404 has
    some), which ``json.loads`` reads back. An empty ``{}`` (MBPP+ v0.2.0's Mbpp/793 plus_input)
    means no inputs and becomes ``[]``.
    """
    value = record[field]
    if isinstance(value, dict) and not value:
        value = []
    if not isinstance(value, list) or not all(isinstance(args, list) for args in value):
        raise DatasetFormatError(where, "must be a list of argument lists (one per call)", field)
    return json.dumps(value)


def evalplus_columns(where: str, record: Mapping[str, Any], name: PlusName) -> dict[str, Any]:
    """The four EvalPlus columns of one release record, after checking the record has every
    field of ``name``'s release and a task id of its form."""
    check_name(name)
    fields = RELEASE_FIELDS[name]
    for field in fields:
        if field not in record:
            other = next(n for n in PLUS_NAMES if n != name)
            hint = f" (it has {LABELS[other]}'s fields: wrong file?)" if all(f in record for f in RELEASE_FIELDS[other]) else ""
            raise DatasetFormatError(
                where, f"missing: expected the {LABELS[name]} release fields {list(fields)}{hint}; {how_to_provide(name)}", field
            )
    task_id = require(where, record, "task_id", str)
    if not re.fullmatch(TASK_ID_PATTERNS[name], task_id):
        raise DatasetFormatError(where, f"must look like {TASK_ID_PATTERNS[name]!r} in {LABELS[name]}, got {task_id!r}", "task_id")
    atol = record["atol"]
    if isinstance(atol, bool) or not isinstance(atol, (int, float)) or not math.isfinite(atol) or atol < 0:
        raise DatasetFormatError(where, f"must be a finite non-negative number, got {atol!r}", "atol")
    return {
        "base_inputs": _inputs_json(where, record, "base_input"),
        "plus_inputs": _inputs_json(where, record, "plus_input"),
        "atol": float(atol),
        "contract": require(where, record, "contract", str),
    }


def humanevalplus_row(where: str, record: Mapping[str, Any], bands: DifficultyBands) -> dict[str, Any]:
    """One row from one HumanEval+ record: as a HumanEval row (prompt as released, the original
    ``check`` split into tests, reference ``prompt + canonical_solution``) plus EvalPlus's columns."""
    extra = evalplus_columns(where, record, "humaneval+")
    plain = {k: v for k, v in record.items() if k in RELEASE_FIELDS["humaneval+"]}  # no optional HumanEval fields
    return humaneval_row(where, plain, source="humaneval+", bands=bands, extra=extra)


def mbppplus_row(where: str, record: Mapping[str, Any], bands: DifficultyBands) -> dict[str, Any]:
    """One row from one MBPP+ record.

    MBPP+'s ``prompt`` is a docstring holding the task's description and one example assert; the
    solver writes the whole program, and ``canonical_solution`` is that program. ``problem`` is
    the description, ``tests`` one per ``assert`` of ``assertion`` (imports there, e.g. ``import
    math``, are repeated in each test, as for MBPP sanitized's ``test_imports``).
    """
    extra = evalplus_columns(where, record, "mbpp+")
    prompt = require(where, record, "prompt", str)
    solution = require(where, record, "canonical_solution", str)
    entry_point = require(where, record, "entry_point", str)
    reference = prompt + solution
    try:
        tree = parse(reference)
    except SyntaxError as exc:
        raise DatasetFormatError(where, f"prompt + canonical_solution does not compile: {exc.msg} (line {exc.lineno})", "canonical_solution") from None
    func = top_level_function(tree, entry_point) if entry_point.isidentifier() else None
    if func is None:
        raise DatasetFormatError(where, f"no top-level function {entry_point!r} in prompt + canonical_solution", "entry_point")
    problem = _description(where, tree)
    tests, setup = _assert_tests(where, normalise_newlines(require(where, record, "assertion", str)))
    code = parse(solution)
    imports = "".join(ast.get_source_segment(solution, s) + "\n" for s in code.body if isinstance(s, (ast.Import, ast.ImportFrom)))
    reference_lines = code_lines(solution)
    return make_row(
        where,
        task_id=record["task_id"],
        source="mbpp+",
        split=PLUS_SPLIT,
        entry_point=entry_point,
        signature=signature_of(func),
        problem=problem,
        prompt=prompt,
        context=imports,
        reference_solution=reference,
        tests=tests,
        test_setup=setup,
        challenge_tests=[],
        category="",
        difficulty=bands.label(reference_lines),
        reference_lines=reference_lines,
        **extra,
    )


def _description(where: str, tree: ast.Module) -> str:
    """The module docstring's text before its first ``assert`` line (MBPP+'s example test)."""
    doc = ast.get_docstring(tree)
    if not doc:
        raise DatasetFormatError(where, "must be a docstring stating the task", "prompt")
    lines = inspect.cleandoc(doc).splitlines()
    first_assert = next((i for i, line in enumerate(lines) if line.lstrip().startswith("assert ")), len(lines))
    description = "\n".join(lines[:first_assert]).strip()
    if not description:
        raise DatasetFormatError(where, "holds no description before its example assert", "prompt")
    return description


def _assert_tests(where: str, assertion: str) -> tuple[list[str], str]:
    """(tests, setup) from MBPP+'s ``assertion``: one test per top-level ``assert``, each
    preceded by the imports of ``assertion``; other statements before the first assert become
    setup. Anything else after an assert might change what later asserts see, so then the
    whole ``assertion`` is one test.

    A standard-library module the asserts use but never import (v0.2.0's Mbpp/120 calls
    ``math.isclose`` without ``import math``) is imported too: otherwise the tests would pass or
    fail depending on whether the *candidate* happened to import it.
    """
    try:
        tree = parse(assertion)
    except SyntaxError as exc:
        raise DatasetFormatError(where, f"does not compile: {exc.msg} (line {exc.lineno})", "assertion") from None
    imports = [f"import {module}\n" for module in _unimported_modules(tree)]
    setup: list[str] = []
    asserts: list[str] = []
    for stmt in tree.body:
        text = ast.get_source_segment(assertion, stmt, padded=False) or ast.unparse(stmt)
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            imports.append(text + "\n")
        elif isinstance(stmt, ast.Assert):
            if not (isinstance(stmt.test, ast.Constant) and stmt.test.value):  # `assert True` tests nothing
                asserts.append(text.strip() + "\n")
        elif not asserts:
            setup.append(text + "\n")
        else:
            return [assertion.strip() + "\n"], ""
    if not asserts:
        raise DatasetFormatError(where, "holds no assert", "assertion")
    prefix = "".join(imports)
    return [prefix + test for test in asserts], "".join(setup)


def _unimported_modules(tree: ast.Module) -> list[str]:
    """Standard-library modules the code reads by name without binding the name anywhere."""
    loaded = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
    return sorted(name for name in loaded - bound if name in sys.stdlib_module_names and not hasattr(builtins, name))


_ROW_BUILDERS = {"humaneval+": humanevalplus_row, "mbpp+": mbppplus_row}


def plus_rows(records: list[Record], name: PlusName, bands: DifficultyBands | None = None) -> list[dict[str, Any]]:
    """Rows from release records of ``name`` (task ids must be unique)."""
    check_name(name)
    bands = bands or DifficultyBands()
    build = _ROW_BUILDERS[name]
    return reject_duplicate_ids([(where, build(where, record, bands)) for where, record in records])
