"""Static checks of a generated test, and the stand-in programs it must not pass: the rules by which
a test the discriminator wrote can count at all (``rewards`` applies them; ``pipeline.bootstrap``
too, to pick the discriminator's training data). Pure functions of the test's text.

Does the test exercise the function under test?

A test that never calls the function (``assert True``, arithmetic on constants, a test that
defines its own ``f``) passes on the reference and on every candidate: the ``weighted`` variant
would pay for its validity. Such tests are invalid:

* ``no_call`` (static, nothing runs): the test never names the entry point (or, for a problem
  without one, any function or class the reference defines at top level), or it binds that name
  itself at module level (``def f``, ``f = ...``, ``import ... as f``), so its asserts would test
  its own stand-in. HumanEval-style checks pass: ``def check(candidate): ...`` then ``check(f)``
  names ``f``.
* ``vacuous`` (executed, ``StandIns``): the test passes against both constant stand-ins, in which
  the entry point returns ``None`` or a marker string whatever it is given, or against both wrong-answer
  stand-ins, in which it returns the reference's answer made wrong within its type (one item fewer, a
  number off by one, a boolean flipped). Two constant functions pass a call whose result is ignored (a
  crash-only test) or swallowed by ``try``/``except``, a tautology (``f(x) == f(x)``, ``f(x) != 5``), a
  helper that is never called, a shadowing assignment inside a function. Two wrong answers of the right
  type pass a check of the type or the range alone (``isinstance(f(x), int)``, ``f(x) is not None``,
  ``f(x) >= 0``, ``len(f(x)) > 0``): it tells a function that answers from one that does not, not a right
  answer from a wrong one, and the ``weighted`` variant would pay its validity share for it. A check of a
  value fails on both kinds (``assert f([3, 1]) == [1, 3]``).

Does the test say anything the problem's own tests do not?

* ``restates_own_test`` (static): every statement of the test is an assert that one of the
  problem's own tests already makes (the same AST: formatting, comments and assert messages do
  not count). MBPP shows its first test in the problem text, so copying it is free; the generator
  is judged on the own tests anyway, so such a test adds nothing, and the ``weighted`` variant
  would pay validity for copying (issue 22).

Does the test read a source of chance the sandbox cannot make repeatable?

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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .parsing import safe_parse

STUB_MARKER = "\u2400 stand-in of the function under test"


def _top_level_names(source: str) -> frozenset[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError):
        return frozenset()
    return frozenset(
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    )


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda,
           ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def _binds_at_module_level(tree: ast.Module, name: str) -> bool:
    """Whether the test's module scope binds ``name`` (nested scopes are the stub's business)."""
    stack: list[ast.AST] = list(tree.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (alias.asname or alias.name.split(".")[0]) == name for alias in node.names
        ):
            return True
        if isinstance(node, ast.Name) and node.id == name and isinstance(node.ctx, (ast.Store, ast.Del)):
            return True
        if not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))
    return False


def never_calls(test: str, entry_point: str | None, reference: str) -> bool:
    """True if ``test`` cannot exercise the program (the ``no_call`` reason above).

    A test that does not parse is left to the sandbox (it fails on the reference). A problem with
    neither an entry point nor a top-level definition in its reference is not checked.
    """
    wanted = frozenset({entry_point}) if entry_point else _top_level_names(reference)
    if not wanted:
        return False
    try:
        tree = ast.parse(test)
    except (SyntaxError, ValueError, RecursionError):
        return False
    named = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    used = wanted & named
    return not used or all(_binds_at_module_level(tree, name) for name in used)


# The wrong-answer stand-ins: the reference runs in a namespace of its own (so that its recursive calls reach
# itself, unchanged), its names are shared with the test, and the entry point changes every answer into another
# of the same type. Sequences lose their last (k = 0) or first (k = 1) item, numbers move by +1 or -1, booleans
# flip; an empty container gets one item; None and other types become the marker.
_WRONG_ANSWER = """
_duel_namespace = {{"__name__": "_duel_reference"}}
exec(compile({reference!r}, "<reference>", "exec"), _duel_namespace)
globals().update({{name: value for name, value in _duel_namespace.items() if not name.startswith("__")}})


def _duel_wrong_answer(value):
    k = {k}
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float, complex)):
        return value + (1 if k == 0 else -1)
    if isinstance(value, (str, bytes, list, tuple)):
        if not value:
            return {{str: "\\u2400", bytes: b"\\x00", list: [None], tuple: (None,)}}[
                next(t for t in (str, bytes, list, tuple) if isinstance(value, t))]
        return value[:-1] if k == 0 else value[1:]
    if isinstance(value, dict):
        if not value:
            return {{None: None}}
        drop = list(value)[-1 if k == 0 else 0]
        return {{key: item for key, item in value.items() if key != drop}}
    if isinstance(value, (set, frozenset)):
        if not value:
            return type(value)([None])
        drop = sorted(value, key=repr)[-1 if k == 0 else 0]
        return type(value)(item for item in value if item != drop)
    return {marker!r}


def {entry_point}(*args, **kwargs):
    return _duel_wrong_answer(_duel_namespace[{entry_point!r}](*args, **kwargs))
"""


@dataclass(frozen=True)
class StandIns:
    """The programs a valid test must fail, run as candidates in the sandbox like any other.

    ``constant``: the entry point returns ``None``, or ``STUB_MARKER``, whatever it is given. ``wrong``: the
    reference, with every answer changed into a wrong one of the same type (``_WRONG_ANSWER``: one item fewer,
    a number off by one, a boolean flipped), two ways. A test is ``vacuous`` when it passes every constant one
    (it checks no value: crash-only tests, swallowed calls, ``f(x) != 5``) or every wrong one (it cannot tell
    the right answer from a wrong one of its type: ``isinstance(f(x), int)``, ``f(x) is not None``,
    ``f(x) >= 0``), since both would earn the ``weighted`` variant's validity share without testing anything.
    Without an entry point: one empty program, and no wrong ones."""

    constant: tuple[str, ...]
    wrong: tuple[str, ...] = ()

    @property
    def programs(self) -> tuple[str, ...]:
        return self.constant + self.wrong

    def vacuous(self, passed: Sequence[bool]) -> bool:
        """Whether a test that ``passed`` (one verdict per program of ``programs``, in order) is vacuous."""
        if len(passed) != len(self.programs):
            raise ValueError(f"{len(passed)} verdicts for {len(self.programs)} stand-in programs")
        constant, wrong = passed[: len(self.constant)], passed[len(self.constant):]
        return all(constant) or (bool(wrong) and all(wrong))


def stand_ins(reference: str, entry_point: str | None) -> StandIns:
    """The stand-ins of a problem whose reference solution is ``reference`` (see ``StandIns``)."""
    if not entry_point:
        return StandIns(constant=("",))
    head = f"def {entry_point}(*args, **kwargs):\n    return "
    wrong = tuple(_WRONG_ANSWER.format(reference=reference, entry_point=entry_point, k=k, marker=STUB_MARKER)
                  for k in (0, 1))
    return StandIns(constant=(head + "None\n", head + repr(STUB_MARKER) + "\n"), wrong=wrong)


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


def _assert_key(node: ast.Assert) -> str:
    """An assert's identity: its test expression's AST (without the message or positions)."""
    return ast.dump(node.test)


def own_assert_keys(own_tests: Iterable[str]) -> frozenset[str]:
    """The identities of every assert in the problem's own tests, at any depth (HumanEval's
    ``check(candidate)`` holds its asserts inside a function)."""
    keys = set()
    for source in own_tests:
        tree = safe_parse(source)
        if tree is None:
            continue
        try:
            keys.update(_assert_key(n) for n in ast.walk(tree) if isinstance(n, ast.Assert))
        except RecursionError:
            continue
    return frozenset(keys)


def restates_own_tests(test: str, own_keys: frozenset[str]) -> bool:
    """True if every statement of ``test`` is an assert among ``own_keys`` (``own_assert_keys``):
    the ``restates_own_test`` reason above. A test that does not parse is left to the sandbox."""
    tree = safe_parse(test)
    if tree is None or not tree.body:
        return False
    try:
        return all(isinstance(node, ast.Assert) and _assert_key(node) in own_keys for node in tree.body)
    except RecursionError:
        return False
