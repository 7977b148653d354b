"""Split a HumanEval-style ``check(candidate)`` into independent tests, one verdict each.

One verdict per assert gives the reward a pass *rate* instead of all-or-nothing, but only where
splitting keeps the task-level verdict: the split tests must all pass exactly when the whole
``check`` passes. That holds for an assert that reads no local state of ``check`` (it evaluates
the same expression, with ``candidate`` renamed to the entry point, whether or not the other
asserts ran). Everything that does depend on local state (loops, variables, local imports)
stays together as one remainder test: the original ``check`` minus the extracted asserts,
followed by ``check(<entry_point>)``. When nothing can be extracted, the ``check`` is kept whole.

``assert True`` lines (HumanEval has 48) are dropped: a test that always passes would hand out
free pass rate. An import-only remainder is dropped too; it could only fail if the standard
library were missing a module, which is not what a task tests.
"""

from __future__ import annotations

import ast
import builtins

from .pysource import parse

# Module-level statements a test may hold besides ``check``; anything else (a call, a loop)
# might have effects the split tests would not reproduce, so such tests are kept whole.
_DECLARATIONS = (ast.Import, ast.ImportFrom, ast.Assign, ast.AnnAssign, ast.FunctionDef, ast.ClassDef)


def whole_check(test: str, entry_point: str) -> str:
    """The unsplit form: the test module followed by the call that runs it."""
    lines = test.rstrip().splitlines()
    while lines and not lines[0].strip():
        lines.pop(0)
    body = "\n".join(lines)
    return f"{body}\n\n\ncheck({entry_point})\n"


def split_check(test: str, entry_point: str) -> list[str]:
    """Tests equivalent (as a whole) to running ``test`` then ``check(entry_point)``.

    ``test`` must compile; the caller reports a syntax error against the row.
    """
    module = parse(test)
    check = _the_check(module)
    if check is None or not all(isinstance(s, _DECLARATIONS) or s is check for s in module.body):
        return [whole_check(test, entry_point)]
    param = check.args.args[0].arg
    module_names = _bound_names([s for s in module.body if s is not check])
    local_names = _bound_names([s for s in check.body if not isinstance(s, ast.Assert)])
    local_names |= {n.target.id for n in ast.walk(check) if isinstance(n, ast.NamedExpr)}
    lines = test.splitlines(keepends=True)
    prefix = "".join(_statement_text(lines, s) for s in module.body if s is not check)

    extracted: list[str] = []
    removed: list[ast.stmt] = []
    remainder: list[ast.stmt] = []
    for stmt in check.body:
        if _is_noop(stmt, local_names):
            continue
        if not (isinstance(stmt, ast.Assert) and _is_independent(stmt, param, local_names, lines)):
            remainder.append(stmt)
            continue
        removed.append(stmt)
        if isinstance(stmt.test, ast.Constant) and stmt.test.value:
            continue
        source = _rename(lines, stmt, param, entry_point)
        uses_module_names = bool(_loaded_names(stmt) & module_names)
        extracted.append((prefix + "\n" if uses_module_names else "") + source + "\n")

    if not extracted:
        return [whole_check(test, entry_point)]
    if any(not isinstance(s, (ast.Import, ast.ImportFrom)) for s in remainder):
        extracted.append(whole_check(_without(lines, removed), entry_point))
    return extracted


def _the_check(module: ast.Module) -> ast.FunctionDef | None:
    """The single plain ``def check(candidate)`` of the module, or None if there is not one."""
    checks = [s for s in module.body if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)) and s.name == "check"]
    if len(checks) != 1 or not isinstance(checks[0], ast.FunctionDef):
        return None
    check = checks[0]
    args = check.args
    plain = len(args.args) == 1 and not (args.posonlyargs or args.kwonlyargs or args.vararg or args.kwarg)
    return check if plain and not check.decorator_list else None


def _bound_names(statements: list[ast.stmt]) -> set[str]:
    """Every name the statements bind anywhere inside them (assignment, loop target, import,
    def, with/except target, global/nonlocal)."""
    names: set[str] = set()
    for stmt in statements:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
                names.add(node.id)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, (ast.Global, ast.Nonlocal)):
                names.update(node.names)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names.add(node.name)
    return names


def _loaded_names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


def _is_noop(stmt: ast.stmt, local_names: set[str]) -> bool:
    """``pass``, a string (docstring/comment) or a bare builtin name such as HumanEval/129's
    stray ``print``: statements that cannot raise or change anything."""
    if isinstance(stmt, ast.Pass):
        return True
    if isinstance(stmt, ast.Expr):
        value = stmt.value
        if isinstance(value, ast.Constant):
            return True
        return isinstance(value, ast.Name) and value.id not in local_names and hasattr(builtins, value.id)
    return False


def _is_independent(stmt: ast.Assert, param: str, local_names: set[str], lines: list[str]) -> bool:
    """True if the assert reads no local state of ``check`` and sits on lines of its own (so
    removing its lines from the remainder removes exactly it)."""
    for node in ast.walk(stmt):
        if isinstance(node, (ast.NamedExpr, ast.Lambda, ast.Await, ast.Yield, ast.YieldFrom)):
            return False
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load) and node.id == param:
            return False
        if isinstance(node, ast.arg) and node.arg == param:
            return False
    if _loaded_names(stmt) & (local_names | {"check"}):
        return False
    head = lines[stmt.lineno - 1].encode()[: stmt.col_offset]
    tail = lines[stmt.end_lineno - 1].encode()[stmt.end_col_offset :].strip()
    return not head.strip() and (not tail or tail.startswith(b"#"))


def _rename(lines: list[str], stmt: ast.Assert, param: str, entry_point: str) -> str:
    """The assert's own source text with every read of ``param`` replaced by ``entry_point``.

    Works on the original text (positions from the AST, which are UTF-8 byte offsets) rather
    than ``ast.unparse`` so literals and messages read exactly as the benchmark wrote them.
    """
    spans = sorted(
        ((n.lineno, n.col_offset, n.end_col_offset) for n in ast.walk(stmt) if isinstance(n, ast.Name) and n.id == param),
        reverse=True,
    )
    raw = [line.encode() for line in lines[stmt.lineno - 1 : stmt.end_lineno]]
    for lineno, start, end in spans:
        i = lineno - stmt.lineno
        raw[i] = raw[i][:start] + entry_point.encode() + raw[i][end:]
    # Positions were taken before renaming; the last line's end shifts by the renames on it.
    shift = sum(len(entry_point) - len(param) for lineno, _, _ in spans if lineno == stmt.end_lineno)
    raw[-1] = raw[-1][: stmt.end_col_offset + shift]
    raw[0] = raw[0][stmt.col_offset :]
    return b"".join(raw).decode()


def _statement_text(lines: list[str], stmt: ast.stmt) -> str:
    start = min([stmt.lineno] + [d.lineno for d in getattr(stmt, "decorator_list", [])])
    return "".join(lines[start - 1 : stmt.end_lineno])


def _without(lines: list[str], statements: list[ast.stmt]) -> str:
    """The source with the given statements' lines removed."""
    drop = {i for s in statements for i in range(s.lineno - 1, s.end_lineno)}
    return "".join(line for i, line in enumerate(lines) if i not in drop)
