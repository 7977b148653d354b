"""Tests the trusted worker can judge itself: ``assert CALL == LITERAL`` and its close relatives.

For these, no test code runs anywhere: the worker parses the test, sends only the call (for
example ``f([3, 1, 2])``) to the candidate process, gets a plain value back and compares it with
the expected literal, which it evaluated with ``ast.literal_eval`` and the candidate never sees.
This is the form of MBPP's tests and of the discriminator's generated tests, so most RL reward
jobs need no test process at all.

Accepted shapes (anything else runs in a test process):

    assert CALL == EXPECTED      assert CALL != EXPECTED      (either side may be the call)
    assert CALL is None / is not None / is True / is False
    assert CALL                  assert not CALL
    assert WRAP(CALL) == EXPECTED       with WRAP in set, frozenset, sorted, list, tuple, len, ...
    assert abs(CALL - EXPECTED) < TOLERANCE     (or ``<=``, or ``abs(EXPECTED - CALL)``)

where CALL is a call of a function the program defines and EXPECTED a constant: a literal,
arithmetic on number literals (``(3 + 5, 3 * 5)``, ``2.0 / 3.0``), or a wrapper of those such as
``set([1, 2])``, evaluated here with the real built-ins. ``WRAP(CALL)`` is evaluated whole by the
candidate, so that ``list(f(4))`` consumes a generator the program returns; ``abs(value - X)`` is
computed here, on the plain value the candidate sent.

A test made of several such asserts, or of for-loops over constants (``range`` of integers or a
literal list) whose bodies are such asserts, is a list of checks judged in order; the first that
does not pass ends it, as in Python. Loops are unrolled with the loop variables written in as
constants. HumanEval's ``def check(candidate): ...`` blocks are judged the same way.

What counts as a constant, and how it is evaluated, is in ``literals``.
"""

from __future__ import annotations

import ast
import builtins
import copy
from dataclasses import dataclass
from typing import Any, Callable

from .literals import WRAPPERS, constant, expected_value, is_number, literal

BUILTIN_NAMES = frozenset(dir(builtins))


@dataclass(frozen=True)
class FastTest:
    """A test judged by the worker: send ``call`` to the candidate, then check ``judge(value)``."""

    call: str
    op: str  # "==", "!=", "is", "is not", "truthy", "falsy", "close<", "close<="
    expected: Any = None  # for "close": (the other operand, the tolerance, whether the call comes first)
    message: str = ""  # the assert's own message, shown when it fails

    def judge(self, value: Any) -> bool:
        if self.op == "==":
            return bool(value == self.expected)
        if self.op == "!=":
            return bool(value != self.expected)
        if self.op == "is":
            return value is self.expected
        if self.op == "is not":
            return value is not self.expected
        if self.op == "truthy":
            return bool(value)
        if self.op in ("close<", "close<="):  # abs(CALL - X) < TOL, computed as the test would
            other, tolerance, call_first = self.expected
            distance = abs(value - other if call_first else other - value)
            return bool(distance < tolerance) if self.op == "close<" else bool(distance <= tolerance)
        return not value


class _Source:
    """A test's text with its line offsets computed once: ``ast.get_source_segment`` re-splits the
    whole source on every call, which made classifying a HumanEval check cost more than parsing it."""

    def __init__(self, text: str):
        self.data = text.encode("utf-8", "surrogatepass")  # AST column offsets count UTF-8 bytes
        self.starts = [0]
        for line in self.data.splitlines(keepends=True):  # \n, \r\n and \r, as the parser splits
            self.starts.append(self.starts[-1] + len(line))

    def segment(self, node: ast.expr) -> str:
        start = self.starts[node.lineno - 1] + node.col_offset
        end = self.starts[node.end_lineno - 1] + node.end_col_offset  # type: ignore[operator]
        return self.data[start:end].decode("utf-8", "surrogatepass")


Text = Callable[[ast.expr], str]  # the source of an expression: its segment, or ``ast.unparse`` once rewritten


def _call(node: ast.AST, program_names: frozenset[str], text: Text) -> str | None:
    """The expression to send to the candidate, if ``node`` has an accepted shape."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        if node.func.id in program_names:
            return text(node)
        if node.func.id in WRAPPERS and not node.keywords and node.args:
            inner = node.args[0]
            if (isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name) and inner.func.id in program_names
                    and all(literal(a)[0] for a in node.args[1:])):
                return text(node)
    return None


def _parse(test: str) -> ast.Module | None:
    try:
        return ast.parse(test)
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None


def plan(test: str, program_names: frozenset[str]) -> tuple[list[FastTest], dict[str, str]] | None:
    """The checks the worker runs for ``test`` (one assert, or a check block's asserts) and the
    aliases they need, or None when the test must run in a test process. Parses the test once."""
    tree = _parse(test)
    if tree is None:
        return None
    source = _Source(test)
    checks = _statements(tree.body, program_names, source, _skippable(None, frozenset()))
    return (checks, {}) if checks else _check_block(tree, program_names, source)


MAX_CHECKS = 1000  # per test, loops unrolled


def _statements(statements: list[ast.stmt], program_names: frozenset[str], source: _Source,
                skip: Callable[[ast.stmt], bool]) -> list[FastTest] | None:
    """The checks of a run of statements that are all accepted asserts, or for-loops over constants
    whose bodies are; None if any statement is something else (or there is no check at all)."""
    checks: list[FastTest] = []
    for statement in statements:
        if skip(statement):
            continue
        if isinstance(statement, ast.Assert):
            fast = _classify_assert(statement, program_names, source.segment)
            found = [fast] if fast else None
        elif isinstance(statement, ast.For):
            found = _unroll(statement, program_names, skip)
        else:
            return None
        if found is None or len(checks) + len(found) > MAX_CHECKS:
            return None
        checks.extend(found)
    return checks or None


def _skippable(param: str | None, bound: frozenset[str]) -> Callable[[ast.stmt], bool]:
    """Statements that cannot change a verdict: docstrings, ``assert True, "..."`` lines, and a bare
    built-in name (HumanEval/129's ``print``) that the test does not rebind."""

    def skip(s: ast.stmt) -> bool:
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant):
            return True
        if (isinstance(s, ast.Expr) and isinstance(s.value, ast.Name) and s.value.id != param
                and s.value.id in BUILTIN_NAMES and s.value.id not in bound):
            return True
        return isinstance(s, ast.Assert) and literal(s.test)[0] and bool(literal(s.test)[1])

    return skip


class _Substitute(ast.NodeTransformer):
    """One iteration of a loop: its variables replaced by their constant values."""

    def __init__(self, values: dict[str, Any]):
        self.values = values

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load) and node.id in self.values:
            return ast.copy_location(ast.Constant(self.values[node.id]), node)
        return node


def _immutable(value: Any) -> bool:
    if type(value) in (tuple, frozenset):
        return all(_immutable(v) for v in value)
    return type(value) in (int, float, complex, str, bytes, bool, type(None))


def _iterations(loop: ast.For) -> list[dict[str, Any]] | None:
    """The loop variables' values, iteration by iteration, when the loop runs over constants:
    ``range`` of integer constants or a literal list/tuple (unpacked into a tuple of names)."""
    if loop.orelse or loop.type_comment:
        return None
    target = loop.target
    if isinstance(target, ast.Name):
        names = [target.id]
    elif isinstance(target, ast.Tuple) and target.elts and all(isinstance(e, ast.Name) for e in target.elts):
        names = [e.id for e in target.elts]  # type: ignore[union-attr]
    else:
        return None
    if len(set(names)) != len(names):
        return None
    node = loop.iter
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords and 1 <= len(node.args) <= 3):
        bounds = [constant(a) for a in node.args]
        if not all(ok and type(v) is int for ok, v in bounds):
            return None
        try:
            values: list[Any] = range(*(v for _, v in bounds))  # type: ignore[assignment]
        except ValueError:  # range(0, 5, 0)
            return None
    else:
        ok, value = expected_value(node)
        if not ok or type(value) not in (list, tuple):
            return None
        values = value
    if len(values) > MAX_CHECKS:
        return None
    if len(names) == 1:
        return [{names[0]: v} for v in values]
    rows = []
    for v in values:
        if type(v) not in (list, tuple) or len(v) != len(names):
            return None  # Python would raise while unpacking: the test process shows it
        rows.append(dict(zip(names, v)))
    return rows


def _unroll(loop: ast.For, program_names: frozenset[str], skip: Callable[[ast.stmt], bool]) -> list[FastTest] | None:
    """A for-loop over constants whose body is accepted asserts, as the checks of every iteration in
    order (each call with the loop variables written in as constants)."""
    rows = _iterations(loop)
    body = [s for s in loop.body if not skip(s)]
    if rows is None or not body or not all(isinstance(s, ast.Assert) for s in body):
        return None
    names = set(rows[0]) if rows else set()
    if names & program_names:
        return None
    uses = [n.id for s in body for n in ast.walk(s) if isinstance(n, ast.Name) and n.id in names]
    # Written-in constants are fresh objects at every use; with a mutable value, a later use in the
    # same iteration could see what an earlier call did to it, so those must be single uses.
    single_uses = len(uses) == len(set(uses))
    checks: list[FastTest] = []
    for row in rows:
        if not single_uses and not all(_immutable(v) for v in row.values()):
            return None
        for statement in body:
            fast = _classify_assert(_Substitute(row).visit(copy.deepcopy(statement)), program_names, ast.unparse)
            if fast is None:
                return None
            checks.append(fast)
    return checks


def _classify_assert(node: ast.Assert, program_names: frozenset[str], text: Text) -> FastTest | None:
    # The message is evaluated only when the assert fails, so it never changes pass or fail; one
    # that is not a literal (HumanEval's ``"error: " + str(candidate(x))``) is simply not shown.
    message = ""
    if node.msg is not None:
        ok, value = literal(node.msg)
        message = str(value) if ok else ""
    check = node.test
    if isinstance(check, ast.UnaryOp) and isinstance(check.op, ast.Not):
        call = _call(check.operand, program_names, text)
        return FastTest(call, "falsy", message=message) if call else None
    if not isinstance(check, ast.Compare):
        call = _call(check, program_names, text)
        return FastTest(call, "truthy", message=message) if call else None
    if len(check.ops) != 1:
        return None
    op = check.ops[0]
    left, right = check.left, check.comparators[0]
    if isinstance(op, (ast.Lt, ast.LtE)):
        return _close(left, right, "close<" if isinstance(op, ast.Lt) else "close<=", program_names, text, message)
    if isinstance(op, (ast.Eq, ast.NotEq)):
        for call_side, other in ((left, right), (right, left)):
            call = _call(call_side, program_names, text)
            ok, expected = expected_value(other)
            if call and ok:
                return FastTest(call, "==" if isinstance(op, ast.Eq) else "!=", expected, message)
        return None
    if isinstance(op, (ast.Is, ast.IsNot)):
        call = _call(left, program_names, text)
        ok, expected = literal(right)
        if call and ok and expected in (None, True, False) and type(expected) in (type(None), bool):
            return FastTest(call, "is" if isinstance(op, ast.Is) else "is not", expected, message)
    return None


def _close(left: ast.expr, right: ast.expr, op: str, program_names: frozenset[str], text: Text,
           message: str) -> FastTest | None:
    """``abs(CALL - X) < TOL`` (or ``abs(X - CALL)``, or ``<=``) with constant X and TOL."""
    if not (isinstance(left, ast.Call) and isinstance(left.func, ast.Name) and left.func.id == "abs"
            and len(left.args) == 1 and not left.keywords and isinstance(left.args[0], ast.BinOp)
            and isinstance(left.args[0].op, ast.Sub)):
        return None
    difference = left.args[0]
    ok, tolerance = expected_value(right)
    if not ok or not is_number(tolerance):
        return None
    for call_side, other, call_first in ((difference.left, difference.right, True),
                                         (difference.right, difference.left, False)):
        call = _call(call_side, program_names, text)
        ok, value = expected_value(other)
        if call and ok and is_number(value):
            return FastTest(call, op, (value, tolerance, call_first), message)
    return None


def _check_block(tree: ast.Module, program_names: frozenset[str],
                 source: _Source) -> tuple[list[FastTest], dict[str, str]] | None:
    """The asserts of a HumanEval-style block, if the worker can judge every one of them alone.

    Accepted: ``def check(candidate):`` whose body is only accepted asserts and loops (with the
    parameter standing for the function), called once as ``check(f)``; module-level imports and
    literal assignments (HumanEval's ``METADATA``) may precede it. Returns the checks and the alias
    under which the calls name the function (``{"candidate": "f"}``)."""
    body = list(tree.body)
    if len(body) < 2:
        return None
    call, func = body[-1], None
    if not (isinstance(call, ast.Expr) and isinstance(call.value, ast.Call) and isinstance(call.value.func, ast.Name)
            and len(call.value.args) == 1 and not call.value.keywords and isinstance(call.value.args[0], ast.Name)
            and call.value.args[0].id in program_names):
        return None
    target = call.value.args[0].id
    for node in body[:-1]:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Assign) and literal(node.value)[0]:
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.FunctionDef) and func is None and node.name == call.value.func.id:
            func = node
            continue
        return None
    if func is None or len(func.args.args) != 1 or func.decorator_list or func.args.vararg or func.args.kwarg:
        return None
    param = func.args.args[0].arg
    others = [node for node in body[:-1] if node is not func]
    bound = frozenset({name.id for node in others for name in ast.walk(node) if isinstance(name, ast.Name)}
                      | {(a.asname or a.name).split(".")[0] for node in others
                         if isinstance(node, (ast.Import, ast.ImportFrom)) for a in node.names})
    # Calls are evaluated where the program lives: a name the test module binds must not reach them.
    if any(isinstance(n, ast.Name) and n.id in bound for s in func.body for n in ast.walk(s)):
        return None
    tests = _statements(func.body, frozenset({param}), source, _skippable(param, bound))
    if tests is None:
        return None
    return tests, {param: target}
