"""Does a generated test exercise the function under test? Two checks, one static, one executed.

A test that never calls the function (``assert True``, arithmetic on constants, a test that
defines its own ``f``) passes on the reference and on every candidate: the ``weighted`` variant
would pay for its validity. Such tests are invalid:

* ``no_call`` (static, nothing runs): the test never names the entry point (or, for a problem
  without one, any function or class the reference defines at top level), or it binds that name
  itself at module level (``def f``, ``f = ...``, ``import ... as f``), so its asserts would test
  its own stand-in. HumanEval-style checks pass: ``def check(candidate): ...`` then ``check(f)``
  names ``f``.
* ``vacuous`` (executed): the test passes against every one of ``stub_programs``, in which the
  entry point returns ``None`` or a marker string, whatever it is given. A test that two
  constant functions pass cannot tell a right answer from a wrong one: a call whose result is
  ignored (a crash-only test) or swallowed by ``try``/``except``, a tautology (``f(x) == f(x)``,
  ``f(x) != 5``), a helper that is never called, a shadowing assignment inside a function.
  Honest checks of a value fail on one of the two (``assert f(x)`` and ``assert f(x) is not None``
  on ``None``; ``assert not f(x)`` and ``assert f(x) is None`` on the marker).
"""

from __future__ import annotations

import ast

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


def stub_programs(entry_point: str | None) -> tuple[str, ...]:
    """The programs a test must not pass all of: the entry point returns ``None``, or returns
    ``STUB_MARKER``. Without an entry point, one empty program: every name the test takes from
    the program is missing."""
    if not entry_point:
        return ("",)
    head = f"def {entry_point}(*args, **kwargs):\n    return "
    return head + "None\n", head + repr(STUB_MARKER) + "\n"
