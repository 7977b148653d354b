"""Static check: does a generated test read a source of chance the sandbox cannot make repeatable?

The sandbox seeds ``random``, the OS's entropy and the clock in every test and candidate process
(``sandbox.determinism``), and the rewards re-run what a reward relies on (``verdict_runs``). What
neither reaches are values that differ from process to process by design: object addresses
(``id``, the default ``hash``), the process's state (``os``, ``sys``, ``/proc`` through ``open``),
threads, and code built at run time, which can reach any of those (``eval``, ``__import__``,
dunder attributes). A test that reads one of them can pass on the reference and fail on a
candidate by chance alone, so it is invalid with the reason ``chance_source``, before it runs.

Honest tests lose little: imports are allowed from ``DETERMINISTIC_MODULES`` (the standard
library's pure computation modules, plus ``random``, ``time`` and ``datetime``, which the sandbox
makes repeatable), and nothing of the banned names is needed to check what a function returns.
"""

from __future__ import annotations

import ast

DETERMINISTIC_MODULES = frozenset({
    "math", "cmath", "random", "collections", "itertools", "functools", "operator", "string", "re",
    "heapq", "bisect", "copy", "fractions", "decimal", "statistics", "typing", "dataclasses", "enum",
    "numbers", "array", "json", "textwrap", "unicodedata", "time", "datetime", "calendar",
})  # fmt: skip
CHANCE_NAMES = frozenset({
    "id", "hash", "open", "__import__", "eval", "exec", "compile", "globals", "locals", "vars",
    "getattr", "setattr", "delattr", "__builtins__", "breakpoint", "input", "object", "memoryview",
})  # fmt: skip


def reads_chance(test: str) -> bool:
    """True if ``test`` imports a module outside ``DETERMINISTIC_MODULES``, names one of
    ``CHANCE_NAMES``, or reads a dunder attribute (``x.__class__``). A test that does not parse
    is left to the sandbox."""
    try:
        tree = ast.parse(test)
    except (SyntaxError, ValueError, RecursionError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            if any(alias.name.split(".")[0] not in DETERMINISTIC_MODULES for alias in node.names):
                return True
        elif isinstance(node, ast.ImportFrom):
            if node.level or (node.module or "").split(".")[0] not in DETERMINISTIC_MODULES:
                return True
        elif isinstance(node, ast.Name) and node.id in CHANCE_NAMES:
            return True
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__"):
            return True
    return False
