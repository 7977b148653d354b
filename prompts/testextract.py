"""Candidate tests cut out of Python source: asserts with the setup they need, each runnable alone.

``testcases.extract_tests`` hands each code chunk of a discriminator answer to ``TestExtractor``
and then judges what comes back (compiles, calls the entry point, asserts something, not a
duplicate). The extractor is the part that has to cope with whatever a model writes: top-level
asserts, ``def test_*`` and ``check(candidate)`` functions, unittest classes, bare comparisons,
and text that does not parse as a whole. It counts what it cannot turn into a test in the
caller's Counter, under the reasons of ``testcases.REJECTION_REASONS``; the AST helpers below it
pick, for each assert, the earlier statements it depends on.
"""

from __future__ import annotations

import ast
import copy
import re
import sys
import textwrap
from collections import Counter

from .parsing import safe_parse

# unittest assertion methods -> builders of the equivalent expression
_UNITTEST = {
    "assertEqual": lambda a: ast.Compare(a[0], [ast.Eq()], [a[1]]),
    "assertNotEqual": lambda a: ast.Compare(a[0], [ast.NotEq()], [a[1]]),
    "assertTrue": lambda a: a[0],
    "assertFalse": lambda a: ast.UnaryOp(ast.Not(), a[0]),
    "assertIn": lambda a: ast.Compare(a[0], [ast.In()], [a[1]]),
    "assertNotIn": lambda a: ast.Compare(a[0], [ast.NotIn()], [a[1]]),
    "assertIs": lambda a: ast.Compare(a[0], [ast.Is()], [a[1]]),
    "assertIsNot": lambda a: ast.Compare(a[0], [ast.IsNot()], [a[1]]),
    "assertIsNone": lambda a: ast.Compare(a[0], [ast.Is()], [ast.Constant(None)]),
    "assertIsNotNone": lambda a: ast.Compare(a[0], [ast.IsNot()], [ast.Constant(None)]),
    "assertLess": lambda a: ast.Compare(a[0], [ast.Lt()], [a[1]]),
    "assertLessEqual": lambda a: ast.Compare(a[0], [ast.LtE()], [a[1]]),
    "assertGreater": lambda a: ast.Compare(a[0], [ast.Gt()], [a[1]]),
    "assertGreaterEqual": lambda a: ast.Compare(a[0], [ast.GtE()], [a[1]]),
}
_UNITTEST_ARITY = {name: (1 if name in {"assertTrue", "assertFalse", "assertIsNone", "assertIsNotNone"}
                          else 2) for name in _UNITTEST}

# Statements that only make sense inside a function body.
_FUNCTION_ONLY = (ast.Return, ast.Yield, ast.YieldFrom, ast.Global, ast.Nonlocal, ast.Await)


class TestExtractor:
    """Turns chunks of test code into candidate tests, counting what it cannot use."""

    def __init__(self, entry_point: str, rejected: Counter[str], budget: int) -> None:
        self.entry_point = entry_point
        self.rejected = rejected
        self.budget = budget

    # -- chunks ---------------------------------------------------------------------------------

    def chunk(self, source: str, *, strict: bool) -> list[str]:
        """Tests in one block of text; `strict` (inside a code fence) counts every broken line
        that mentions the entry point as a syntax error, not only broken `assert` lines."""
        tree = safe_parse(source)
        statements = tree.body if tree is not None else self._salvage(source, strict, 0)
        try:
            return self._statements(statements, [])
        except (RecursionError, MemoryError):  # absurdly nested expressions
            self.rejected["syntax_error"] += 1
            return []

    def _salvage(self, source: str, strict: bool, depth: int) -> list[ast.stmt]:
        """Statements from text that does not parse as a whole: split it where lines start at
        column 0 and join neighbours that only parse together."""
        segments = _segments(source)
        statements: list[ast.stmt] = []
        i = 0
        while i < len(segments):
            end, tree = self._parsable_prefix(segments, i)
            if tree is not None:
                statements += tree.body
                i = end
            else:
                statements += self._broken(segments[i], strict, depth)
                i += 1
        return statements

    def _parsable_prefix(self, segments: list[str], i: int) -> tuple[int, ast.Module | None]:
        """The smallest end such that segments[i:end] parses (at most 8 joined). Single
        segments are always tried; joining is the costly part and draws on the budget."""
        for end in range(i + 1, min(i + 8, len(segments)) + 1):
            candidate = "\n".join(segments[i:end])
            if end > i + 1:
                self.budget -= len(candidate)
                if self.budget < 0:
                    break
            tree = safe_parse(candidate)
            if tree is not None:
                return end, tree
        return i, None

    def _broken(self, segment: str, strict: bool, depth: int) -> list[ast.stmt]:
        """A segment that parses with no neighbours: a broken function is salvaged from its
        dedented body (two levels deep at most), anything else that looks like a test counts."""
        head, _, body = segment.partition("\n")
        if depth < 2 and re.match(r"(async\s+)?def\s", head) and body.strip():
            inner = textwrap.dedent(body)
            self.budget -= len(inner)
            if self.budget >= 0:
                tree = safe_parse(inner)
                return tree.body if tree is not None else self._salvage(inner, strict, depth + 1)
        mentions = re.search(rf"\b{re.escape(self.entry_point)}\s*\(", segment)
        if segment.lstrip().startswith("assert") or (strict and mentions):
            self.rejected["syntax_error"] += 1
        return []

    # -- statements -----------------------------------------------------------------------------

    def _statements(self, statements: list[ast.stmt], context: list[ast.stmt]) -> list[str]:
        """Walk statements in order; `context` collects setup that later asserts may need."""
        tests: list[str] = []
        context = list(context)
        test_functions: set[str] = set()
        for node in statements:
            if self.entry_point in _defined_names(node, mutated=False) or _is_foreign_star_import(node):
                continue  # a test block must not replace or shadow the code under test
            if isinstance(node, ast.Assert):
                tests.append(_render(_with_deps(node, context)))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if _contains_assert(node):
                    test_functions.add(node.name)
                    tests += self._function(node, context)
                elif node.name.startswith("test"):
                    self.rejected["no_assert"] += 1
                else:
                    context.append(node)
            elif isinstance(node, ast.ClassDef) and _is_test_class(node):
                tests += self._test_class(node, context)
            elif isinstance(node, ast.If) and _is_main_guard(node):
                tests += self._statements(node.body, context)
            elif isinstance(node, ast.Expr) and not _defined_names(node):
                converted = self._expression_check(node)
                if converted is not None:
                    tests.append(_render(_with_deps(converted, context)))
                elif self._mentions_entry(node) and not _calls_any(node, test_functions):
                    self.rejected["no_assert"] += 1  # e.g. print(f(x)): a check without a verdict
            elif _is_compound(node) and _contains_assert(node):
                tests.append(_render(_with_deps(node, context)))
            else:
                context.append(node)  # setup that later asserts may need
        return tests

    def _function(self, node: ast.FunctionDef | ast.AsyncFunctionDef, context: list[ast.stmt]) -> list[str]:
        """A test function: split into its asserts, or whole plus a call if it must stay whole."""
        args = node.args
        positional = args.posonlyargs + args.args
        required = positional[: len(positional) - len(args.defaults)]
        required += [a for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None]
        if (isinstance(node, ast.AsyncFunctionDef) or args.vararg or args.kwarg or len(required) > 1
                or (required and required[0] in args.kwonlyargs)):
            self.rejected["unsupported"] += 1
            return []
        if any(isinstance(n, _FUNCTION_ONLY) for n in _walk_local(node.body)):
            call_args = [ast.Name(self.entry_point, ast.Load())] if required else []
            call = ast.Expr(ast.Call(ast.Name(node.name, ast.Load()), call_args, []))
            return [_render(_with_deps(node, context) + [call])]
        # check(candidate)-style: the parameter is the function under test.
        body = _rename(node.body, required[0].arg, self.entry_point) if required else node.body
        defaults = [ast.Assign([ast.Name(a.arg, ast.Store())], d)
                    for a, d in zip(positional[len(positional) - len(args.defaults):], args.defaults)]
        defaults += [ast.Assign([ast.Name(a.arg, ast.Store())], d)
                     for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is not None]
        return self._statements(body, context + defaults)

    def _test_class(self, node: ast.ClassDef, context: list[ast.stmt]) -> list[str]:
        """unittest.TestCase methods: self.assertX(...) calls become plain asserts."""
        tests: list[str] = []
        for method in node.body:
            if not (isinstance(method, ast.FunctionDef) and method.name.startswith("test")):
                continue
            body = [_UnittestAsserts().visit(copy.deepcopy(s)) for s in method.body]
            uses_self = any(isinstance(n, ast.Name) and n.id == "self" for n in _walk_local(body))
            if uses_self or len(method.args.args) != 1:
                self.rejected["unsupported"] += 1
            elif not any(_contains_assert(s) for s in body):
                self.rejected["no_assert"] += 1
            else:
                tests += self._statements(body, context)
        return tests

    def _expression_check(self, node: ast.Expr) -> ast.Assert | None:
        """`f(x) == y` or `print(f(x) == y)` on its own line: the intent is an assert."""
        value = node.value
        if (isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "print"
                and len(value.args) == 1 and not value.keywords):
            value = value.args[0]
        if isinstance(value, ast.Compare) and self._mentions_entry(value):
            return ast.Assert(value, None)
        return None

    def _mentions_entry(self, node: ast.AST) -> bool:
        return any(isinstance(n, ast.Name) and n.id == self.entry_point for n in ast.walk(node))


# ------------------------------------------------------------------------------------------------
# AST utilities for test extraction


def _segments(source: str) -> list[str]:
    """Split text into candidate top-level statements: a new one starts at each non-blank line
    in column 0 that does not continue the previous statement."""
    segments: list[list[str]] = []
    for line in source.split("\n"):
        starts_new = (line[:1].strip() and line[0] not in ")]}"
                      and not re.match(r"(else|elif|except|finally)\b", line))
        if starts_new or not segments:
            segments.append([line])
        else:
            segments[-1].append(line)
    return ["\n".join(s) for s in segments]


def _walk_local(statements: list[ast.stmt]):
    """Like ast.walk over statements, but not into nested functions, lambdas or classes."""
    stack: list[ast.AST] = list(statements)
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                stack.append(child)


def _contains_assert(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Assert) for n in ast.walk(node))


def _is_compound(node: ast.stmt) -> bool:
    return isinstance(node, (ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.AsyncWith,
                             ast.Try, ast.Match, *((ast.TryStar,) if sys.version_info >= (3, 11) else ())))


def _is_main_guard(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) and test.left.id == "__name__"
            and len(test.comparators) == 1 and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value == "__main__")


def _is_test_class(node: ast.ClassDef) -> bool:
    return any(isinstance(m, ast.FunctionDef) and m.name.startswith("test") for m in node.body)


def _calls_any(node: ast.AST, names: set[str]) -> bool:
    return any(isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in names
               for n in ast.walk(node))


def _is_foreign_star_import(node: ast.stmt) -> bool:
    """`from solution import *` would fail in the sandbox; the code's names are already there."""
    return (isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names)
            and (node.level > 0 or (node.module or "").split(".")[0] not in sys.stdlib_module_names))


def _defined_names(node: ast.stmt, *, mutated: bool = True) -> set[str]:
    """Names a statement binds at the level it runs (not inside function bodies) and, with
    `mutated`, names whose object it probably changes (method calls, item or attribute stores)."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names if a.name != "*"}
    names: set[str] = set()
    for n in _walk_local([node]):
        if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)):
            names.add(n.id)
        elif not mutated:
            continue
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name):
            names.add(n.func.value.id)  # `xs.append(f(1))` mutates xs: later asserts on xs need it
        elif (isinstance(n, (ast.Subscript, ast.Attribute)) and isinstance(n.ctx, (ast.Store, ast.Del))
              and isinstance(n.value, ast.Name)):
            names.add(n.value.id)  # `d[k] = v`, `obj.x = v`
    return names


def _loaded_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _with_deps(node: ast.stmt, context: list[ast.stmt]) -> list[ast.stmt]:
    """The context statements `node` needs (transitively), in order, followed by `node`."""
    needed = _loaded_names(node)
    chosen: list[ast.stmt] = []
    for statement in reversed(context):
        if _defined_names(statement) & needed:
            chosen.append(statement)
            needed |= _loaded_names(statement)
    return [*reversed(chosen), node]


def _render(statements: list[ast.stmt]) -> str:
    module = ast.fix_missing_locations(ast.Module(body=statements, type_ignores=[]))
    return ast.unparse(module)


class _Renamer(ast.NodeTransformer):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name(self.new, node.ctx) if node.id == self.old else node


def _rename(statements: list[ast.stmt], old: str, new: str) -> list[ast.stmt]:
    renamer = _Renamer(old, new)
    return [renamer.visit(copy.deepcopy(s)) for s in statements]


class _UnittestAsserts(ast.NodeTransformer):
    """`self.assertEqual(a, b)` -> `assert a == b`, wherever it appears (loops included)."""

    def visit_Expr(self, node: ast.Expr) -> ast.stmt:
        call = node.value
        if not isinstance(call, ast.Call):
            return node
        func = call.func
        if (isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and func.value.id == "self"
                and func.attr in _UNITTEST and not call.keywords
                and _UNITTEST_ARITY[func.attr] <= len(call.args) <= _UNITTEST_ARITY[func.attr] + 1):
            return ast.Assert(_UNITTEST[func.attr](call.args), None)
        return node
