"""The expected side of a fast test: the constants the worker evaluates itself.

``fastpath`` compares what the candidate sent with a value the candidate never sees, so that value
must come from the test's text alone, without running any of its code: a literal
(``ast.literal_eval``), arithmetic on bounded number literals, or a built-in wrapper applied to
those. Everything here is pure and cheap, since every test of every job is classified; whatever
it does not accept simply leaves the test to a test process.
"""

from __future__ import annotations

import ast
import math
import operator
from typing import Any, Callable

WRAPPERS: dict[str, Callable[..., Any]] = {
    "set": set, "frozenset": frozenset, "sorted": sorted, "list": list, "tuple": tuple, "len": len,
    "abs": abs, "round": round, "str": str, "int": int, "float": float, "bool": bool, "dict": dict,
}

# Node types that are never literals: rejected before ``literal_eval`` raises on them (which cost
# more than the rest of classifying a HumanEval check).
_NEVER_LITERAL = (ast.Name, ast.Attribute, ast.Subscript, ast.Compare, ast.BoolOp, ast.BinOp, ast.Lambda,
                  ast.IfExp, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.JoinedStr)


def literal(node: ast.AST) -> tuple[bool, Any]:
    if isinstance(node, _NEVER_LITERAL) and not _complex_literal(node):
        return False, None
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None
    if isinstance(value, float) and math.isnan(value):
        return False, None
    return True, value


ARITHMETIC: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
}
NUMBER_BOUND = 2 ** 256  # no power, and bounded operands: folding can never be slow or huge


def is_number(value: Any) -> bool:
    return type(value) is float or (type(value) is int and abs(value) < NUMBER_BOUND)


def constant(node: ast.AST) -> tuple[bool, Any]:
    """A literal, arithmetic on number literals (``3 * 5 * 7``, ``2.0 / 3.0``), or a tuple or list
    of those, folded here exactly as Python computes it."""
    ok, value = literal(node)
    if ok:
        return ok, value
    if isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
        (left_ok, left), (right_ok, right) = constant(node.left), constant(node.right)
        if left_ok and right_ok and is_number(left) and is_number(right):
            try:
                value = ARITHMETIC[type(node.op)](left, right)
            except ArithmeticError:
                return False, None
            if is_number(value) and not (type(value) is float and math.isnan(value)):
                return True, value
        return False, None
    if isinstance(node, (ast.Tuple, ast.List)) and not any(isinstance(e, ast.Starred) for e in node.elts):
        parts = [constant(e) for e in node.elts]
        if all(ok for ok, _ in parts):
            values = [v for _, v in parts]
            return True, tuple(values) if isinstance(node, ast.Tuple) else values
    return False, None


def _complex_literal(node: ast.AST) -> bool:
    """``1 + 2j`` and ``-1 - 2j``: the only operators ``literal_eval`` accepts."""
    return (isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub))
            and isinstance(node.right, ast.Constant) and isinstance(node.right.value, complex))


def expected_value(node: ast.AST) -> tuple[bool, Any]:
    """A constant, or a wrapper applied to constants (``set([1, 2])``, ``sorted([3, 1])``)."""
    try:
        ok, value = constant(node)
        if ok:
            return ok, value
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in WRAPPERS
                and not node.keywords and node.args):
            parts = [constant(a) for a in node.args]
            if all(ok for ok, _ in parts):
                return True, WRAPPERS[node.func.id](*(v for _, v in parts))
    except (RecursionError, MemoryError):
        pass
    except Exception:  # a wrapper that raises on these arguments: the test process will show it
        pass
    return False, None
