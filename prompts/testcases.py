"""Individual tests from a discriminator answer, with a count of every rejected candidate.

Each accepted test is self-contained Python source (the setup lines it needs, then its
asserts) that the sandbox can run alone. Nothing here raises on any model output.

This module holds the entry point and the rules every candidate must pass (compiles, calls the
entry point, asserts something, within the limits of ``ParseConfig``, not a duplicate by
``dedup_key``), so what counts as a test is decided in one place; cutting candidates out of the
model's code is ``testextract``'s job.
"""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from .parsing import DEFAULT_CONFIG, PYTHON_LANGS, ParseConfig, compiles, fenced_blocks, safe_parse
from .testextract import TestExtractor

# Why a candidate test was dropped. Every rejection is counted under exactly one of these.
REJECTION_REASONS = (
    "syntax_error",    # does not compile (also: lines that look like a test but do not parse)
    "wrong_function",  # never refers to the entry point
    "no_assert",       # checks nothing (e.g. print(f(x)), a test function without asserts, no tests at all)
    "duplicate",       # same AST as a test accepted earlier in the same answer
    "repeat",          # same AST as a known test (an earlier stage's): dropped, and counted as a test written
    "too_long",        # source longer than ParseConfig.max_test_chars
    "too_many",        # over ParseConfig.max_tests
    "unsupported",     # a form we cannot run alone (test function needing arguments, unittest self.*)
)


@dataclass
class ParsedTests:
    """Accepted tests (each runnable alone: its setup lines, then asserts) and rejection counts."""

    tests: list[str] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)


def dedup_key(test: str) -> str:
    """Identity of a test for de-duplication: its AST without formatting, comments or assert
    messages. Unparsable text is its own key."""
    tree = safe_parse(test)
    if tree is None:
        return "raw:" + test.strip()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assert):
            node.msg = None
    try:
        return ast.dump(tree)
    except RecursionError:
        return "raw:" + test.strip()


def extract_tests(text: str, entry_point: str, *, known: Iterable[str] = (),
                  config: ParseConfig = DEFAULT_CONFIG) -> ParsedTests:
    """Individual tests from a discriminator answer.

    Reads every Python-looking fenced block (or the whole text when there is none). Each top-
    level assert becomes one test, preceded by the earlier statements it needs (imports,
    assignments, helper functions). `def test_*`/`check(candidate)` functions and unittest
    methods are split into their asserts the same way, or kept whole plus a call when their
    body only works inside a function. Blocks that do not compile are salvaged statement by
    statement. `known` tests (e.g. from earlier stages) count as duplicates.
    """
    if not entry_point.isidentifier():
        raise ValueError(f"entry_point must be a Python identifier, got {entry_point!r}")
    result = ParsedTests()
    text = text[: config.max_input_chars]
    blocks = [b.code for b in fenced_blocks(text) if b.lang in PYTHON_LANGS]
    extractor = TestExtractor(entry_point, result.rejected, config.salvage_char_budget)
    candidates: list[str] = []
    for chunk in blocks or [text]:
        found = extractor.chunk(chunk, strict=bool(blocks))
        candidates += found
    if not candidates and not result.rejected:
        result.rejected["no_assert"] += 1

    known_keys = {dedup_key(t) for t in known}
    seen: set[str] = set()
    for test in candidates:
        reason = _check_test(test, entry_point, config)
        if reason is None:
            key = dedup_key(test)
            if key in known_keys:
                reason = "repeat"
            elif key in seen:
                reason = "duplicate"
            elif len(result.tests) >= config.max_tests:
                reason = "too_many"
            else:
                seen.add(key)
                result.tests.append(test)
                continue
        result.rejected[reason] += 1
    return result


def _check_test(test: str, entry_point: str, config: ParseConfig) -> str | None:
    if len(test) > config.max_test_chars:
        return "too_long"
    tree = safe_parse(test)
    if tree is None or not compiles(test):
        return "syntax_error"
    nodes = list(ast.walk(tree))
    if not any(isinstance(n, ast.Name) and n.id == entry_point for n in nodes):
        return "wrong_function"
    if not any(isinstance(n, ast.Assert) for n in nodes):
        return "no_assert"
    return None
