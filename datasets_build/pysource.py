"""Small facts about Python source that every converter needs: signatures, docstrings, size."""

from __future__ import annotations

import ast
import copy
import inspect
import warnings


def parse(source: str) -> ast.Module:
    """``ast.parse`` without the warnings benchmark code triggers (MBPP's regexes use invalid
    escapes such as ``"\\W"``): the code is data here, and the warnings would bury real ones."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        return ast.parse(source)


def normalise_newlines(source: str) -> str:
    """``\\r\\n`` / ``\\r`` to ``\\n``: MBPP ships Windows line endings, which would leak into
    prompts and make otherwise identical code compare unequal."""
    return source.replace("\r\n", "\n").replace("\r", "\n")


def top_level_function(tree: ast.Module, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The last top-level ``def name`` (the one Python would bind), or None."""
    found = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            found = node
    return found


def signature_of(func: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The ``def`` line with annotations, normalised by ``ast.unparse`` (no trailing blanks,
    one line even when the source wraps it)."""
    stub = copy.copy(func)
    stub.body = [ast.Pass()]
    stub.decorator_list = []
    text = ast.unparse(stub)
    return text[: text.rindex("\n")]


def definition_start(func: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """1-based line where a definition starts, decorators included."""
    return min([func.lineno] + [d.lineno for d in func.decorator_list])


def code_lines(source: str) -> int:
    """Non-blank, non-comment lines: the size measure behind ``reference_lines``."""
    return sum(1 for line in source.splitlines() if line.strip() and not line.strip().startswith("#"))


def docstring_literal(text: str, indent: str) -> str:
    """A triple-quoted docstring holding ``text`` verbatim, indented for a function body.

    Backslashes and quotes are escaped so arbitrary problem text (MBPP has ``\\n`` in some
    statements) cannot end the literal early or change its value.
    """
    escaped = text.strip().replace("\\", "\\\\").replace('"""', '\\"\\"\\"')
    first, *rest = escaped.splitlines() or [""]
    rest_lines = "".join(f"\n{indent}{line}" if line.strip() else "\n" for line in rest)
    return f'{indent}"""{first}{rest_lines}\n{indent}"""\n'


def description_of(func: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    """The function's docstring, or failing that its first bare string statement (HumanEval/115
    puts ``import math`` above its docstring, so Python sees no docstring there)."""
    for stmt in func.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str):
            return inspect.cleandoc(stmt.value.value)
    return None
