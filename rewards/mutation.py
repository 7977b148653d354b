"""Small, deterministic AST mutants of a reference solution.

The ``mutation`` discriminator variant scores tests by the bugs they catch in near-miss programs,
so a discriminator gets a signal even when the generator's code is already correct (the idea of
mutation testing: DeMillo, Lipton & Sayward, "Hints on Test Data Selection", 1978). Each mutant
differs from the reference by one small edit of the kind programmers actually make: a flipped
comparison, an off-by-one (constants, range bounds, indices, slice bounds), a changed constant,
a dropped branch, a swapped arithmetic or boolean operator, a sibling library call (min/max).
"""

from __future__ import annotations

import ast
import random
import warnings
from dataclasses import dataclass
from typing import Callable, Iterator

# One replacement per operator: the near-miss most likely to be a real bug.
_COMPARE_SWAPS: dict[type, type] = {
    ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt,
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In,
    ast.Is: ast.IsNot, ast.IsNot: ast.Is,
}  # fmt: skip
_ARITH_SWAPS: dict[type, type] = {
    ast.Add: ast.Sub, ast.Sub: ast.Add, ast.Mult: ast.Div, ast.Div: ast.Mult,
    ast.FloorDiv: ast.Mult, ast.Mod: ast.FloorDiv, ast.Pow: ast.Mult,
    ast.LShift: ast.RShift, ast.RShift: ast.LShift,
    ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd, ast.BitXor: ast.BitOr,
}  # fmt: skip
_BOOL_SWAPS: dict[type, type] = {ast.And: ast.Or, ast.Or: ast.And}
# Library calls with a sibling of the same shape: the near-miss of code that is all calls.
_CALL_SWAPS: dict[str, str] = {
    "min": "max", "max": "min", "any": "all", "all": "any", "nlargest": "nsmallest",
    "nsmallest": "nlargest", "floor": "ceil", "ceil": "floor", "upper": "lower", "lower": "upper",
    "startswith": "endswith", "endswith": "startswith", "find": "rfind", "rfind": "find",
    "index": "rindex", "rindex": "index", "lstrip": "rstrip", "rstrip": "lstrip",
}  # fmt: skip

Edit = Callable[[ast.AST, dict[int, ast.AST]], None]  # (node, parents by id(child)) -> None


@dataclass(frozen=True)
class Mutant:
    """One mutant: its full source and the single edit that made it (for logs and debugging)."""

    source: str
    operator: str
    line: int
    description: str


def _replace_child(parent: ast.AST, old: ast.AST, new: ast.AST) -> None:
    for name, value in ast.iter_fields(parent):
        if value is old:
            setattr(parent, name, new)
            return
        if isinstance(value, list):
            for i, item in enumerate(value):
                if item is old:
                    value[i] = new
                    return
    raise LookupError("child not found in its parent")


def _is_docstring(node: ast.AST, parents: dict[int, ast.AST]) -> bool:
    parent = parents.get(id(node))
    return isinstance(parent, ast.Expr) and isinstance(node, ast.Constant) and isinstance(node.value, str)


def _edits(node: ast.AST, parents: dict[int, ast.AST]) -> Iterator[tuple[str, str, Edit]]:
    """The candidate edits at one node: (operator name, description, edit applied to a fresh copy)."""
    if isinstance(node, ast.Compare):
        for i, op in enumerate(node.ops):
            new = _COMPARE_SWAPS.get(type(op))
            if new is not None:
                def edit(n: ast.AST, _p: dict, i: int = i, new: type = new) -> None:
                    n.ops[i] = new()  # type: ignore[attr-defined]
                yield "comparison_flip", f"{type(op).__name__} -> {new.__name__}", edit
    elif isinstance(node, (ast.BinOp, ast.AugAssign)):
        new = _ARITH_SWAPS.get(type(node.op))
        if new is not None:
            def edit(n: ast.AST, _p: dict, new: type = new) -> None:
                n.op = new()  # type: ignore[attr-defined]
            yield "arithmetic_swap", f"{type(node.op).__name__} -> {new.__name__}", edit
    elif isinstance(node, ast.BoolOp):
        new = _BOOL_SWAPS[type(node.op)]
        def edit(n: ast.AST, _p: dict, new: type = new) -> None:
            n.op = new()  # type: ignore[attr-defined]
        yield "boolean_swap", f"{type(node.op).__name__} -> {new.__name__}", edit
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        def edit(n: ast.AST, p: dict) -> None:
            _replace_child(p[id(n)], n, n.operand)  # type: ignore[attr-defined]
        yield "boolean_swap", "drop `not`", edit
    elif isinstance(node, ast.If):
        def drop_body(n: ast.AST, _p: dict) -> None:
            n.body = [ast.Pass()]  # type: ignore[attr-defined]
        yield "dropped_branch", "if-body -> pass", drop_body
        if node.orelse:
            kind = "elif" if len(node.orelse) == 1 and isinstance(node.orelse[0], ast.If) else "else"
            def drop_else(n: ast.AST, _p: dict) -> None:
                n.orelse = []  # type: ignore[attr-defined]
            yield "dropped_branch", f"remove {kind}", drop_else
    elif isinstance(node, ast.Call):
        yield from _call_edits(node)
    elif isinstance(node, ast.Subscript):
        bounds = ("lower", "upper") if isinstance(node.slice, ast.Slice) else (None,)
        for bound in bounds:
            target = node.slice if bound is None else getattr(node.slice, bound)
            if target is None or isinstance(target, (ast.Constant, ast.Tuple, ast.Slice)):
                continue  # constants get their off-by-one from the Constant case
            for delta in (1, -1):
                def edit(n: ast.AST, _p: dict, bound: str | None = bound, delta: int = delta) -> None:
                    if bound is None:
                        n.slice = _shifted(n.slice, delta)  # type: ignore[attr-defined]
                    else:
                        setattr(n.slice, bound, _shifted(getattr(n.slice, bound), delta))  # type: ignore[attr-defined]
                yield "off_by_one", f"{'index' if bound is None else bound + ' slice bound'} {delta:+d}", edit
    elif isinstance(node, ast.Constant) and not _is_docstring(node, parents):
        value = node.value
        if isinstance(value, bool):
            replacements = [not value]
        elif isinstance(value, int):
            replacements = [value + 1, value - 1]
        elif isinstance(value, float):
            replacements = [value + 1.0]
        elif isinstance(value, str):
            replacements = ["" if value else " "]
        else:
            replacements = []
        for new_value in replacements:
            name = "off_by_one" if isinstance(value, int) and not isinstance(value, bool) else "changed_constant"
            def edit(n: ast.AST, _p: dict, new_value: object = new_value) -> None:
                n.value = new_value  # type: ignore[attr-defined]
            yield name, f"{value!r} -> {new_value!r}", edit


def _shifted(expr: ast.expr, delta: int) -> ast.expr:
    return ast.BinOp(expr, ast.Add() if delta > 0 else ast.Sub(), ast.Constant(1))


def _call_edits(node: ast.Call) -> Iterator[tuple[str, str, Edit]]:
    if isinstance(node.func, ast.Name) and node.func.id == "range":
        for i, arg in enumerate(node.args):
            if isinstance(arg, ast.Constant):
                continue  # constants get their off-by-one from the Constant case
            for delta in (1, -1):
                def shift(n: ast.AST, _p: dict, i: int = i, delta: int = delta) -> None:
                    n.args[i] = _shifted(n.args[i], delta)  # type: ignore[attr-defined]
                yield "off_by_one", f"range bound {i} {delta:+d}", shift
    name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
    if name in _CALL_SWAPS:
        new = _CALL_SWAPS[name]
        def swap(n: ast.AST, _p: dict, new: str = new) -> None:
            func = n.func  # type: ignore[attr-defined]
            if isinstance(func, ast.Name):
                func.id = new
            else:
                func.attr = new
        yield "call_swap", f"{name}() -> {new}()", swap


def _indexed(tree: ast.AST) -> tuple[list[ast.AST], dict[int, ast.AST]]:
    """Nodes in a stable order, skipping f-string internals (their constants are not values) and
    type annotations (a mutated ``List[int]`` only breaks the definition)."""
    nodes: list[ast.AST] = []
    parents: dict[int, ast.AST] = {}
    stack = [tree]
    while stack:
        node = stack.pop()
        nodes.append(node)
        if isinstance(node, ast.JoinedStr):
            continue
        children = [
            child
            for name, value in ast.iter_fields(node)
            if name not in ("annotation", "returns")
            for child in (value if isinstance(value, list) else [value])
            if isinstance(child, ast.AST)
        ]
        for child in children:
            parents[id(child)] = node
        stack.extend(reversed(children))
    return nodes, parents


def generate_mutants(source: str, max_mutants: int, seed: int = 0) -> list[Mutant]:
    """Up to ``max_mutants`` distinct, compilable single-edit mutants of ``source``.

    Deterministic: the same source and seed give the same mutants in the same order. Every mutant
    differs from ``ast.unparse(source)``. A source that does not parse has no mutants.
    """
    with warnings.catch_warnings():  # old datasets' invalid escapes would warn once per mutant
        warnings.simplefilter("ignore")
        return _generate(source, max_mutants, seed)


def _generate(source: str, max_mutants: int, seed: int) -> list[Mutant]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    original = ast.unparse(tree)
    nodes, parents = _indexed(tree)
    sites = [(index, k) for index, node in enumerate(nodes) for k, _ in enumerate(_edits(node, parents))]
    random.Random(seed).shuffle(sites)

    mutants: list[Mutant] = []
    seen = {original}
    for index, k in sites:
        if len(mutants) >= max_mutants:
            break
        fresh = ast.parse(source)
        fresh_nodes, fresh_parents = _indexed(fresh)
        node = fresh_nodes[index]
        operator, description, edit = list(_edits(node, fresh_parents))[k]
        line = getattr(node, "lineno", 0)
        edit(node, fresh_parents)
        ast.fix_missing_locations(fresh)
        try:
            text = ast.unparse(fresh)
            compile(text, "<mutant>", "exec")
        except (SyntaxError, ValueError, TypeError, RecursionError):
            continue
        if text in seen:
            continue
        seen.add(text)
        mutants.append(Mutant(text, operator, line, description))
    return mutants
