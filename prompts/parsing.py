"""Reading model output: fenced blocks and the final code (tests: see testcases.py).

Model output is untrusted: nothing here raises on any string, and every candidate test that
is dropped is counted under a reason, so rewards and logs can see what was lost and why.
Work is bounded (input length, parse attempts) so pathological outputs cost little.
"""

from __future__ import annotations

import ast
import re
import textwrap
import warnings
from dataclasses import dataclass

PYTHON_LANGS = frozenset({"", "python", "python3", "py", "py3"})

@dataclass(frozen=True)
class ParseConfig:
    """Limits that keep parsing cheap and the sandbox workload bounded."""

    max_input_chars: int = 200_000   # longer output is cut to this before parsing
    max_test_chars: int = 2_000
    max_tests: int = 32              # accepted tests per output
    salvage_char_budget: int = 2_000_000  # total characters re-parsed while salvaging


DEFAULT_CONFIG = ParseConfig()


# ------------------------------------------------------------------------------------------------
# Fenced blocks


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block: dedented content, lower-cased info string, whether it was closed."""

    code: str
    lang: str
    closed: bool


_OPEN = re.compile(r"(`{3,}|~{3,})[ \t]*([A-Za-z0-9_+.#-]*)[ \t]*$")


def _opening(line: str) -> tuple[str, str] | None:
    """(fence, lang) if the line opens a block: a fence and info string ending the line, with
    no fence character before it (so the closing fence of inline `` ```x``` `` opens nothing)."""
    match = _OPEN.search(line)
    if match is None or match.group(1)[0] in line[: match.start()]:
        return None
    return match.group(1), match.group(2).lower()


def fenced_blocks(text: str) -> list[CodeBlock]:
    """All fenced blocks in order. An unterminated fence runs to the end of the text, and an
    opening fence inside a block ends that block first (models often forget to close one)."""
    blocks: list[CodeBlock] = []
    fence = ""
    lang = ""
    body: list[str] = []
    for raw in text.split("\n"):
        line = raw.rstrip("\r")
        if not fence:
            opening = _opening(line)
            if opening:
                (fence, lang), body = opening, []
            continue
        stripped = line.rstrip()
        tail = len(stripped) - len(stripped.rstrip(fence[0]))
        if tail >= len(fence):  # closing fence, possibly right after the last code line
            content = stripped[: len(stripped) - tail]
            if content.strip():
                body.append(content)
            blocks.append(CodeBlock(_dedent(body), lang, True))
            fence = ""
            continue
        reopen = _opening(line)
        if reopen and reopen[1] and line.lstrip()[:1] == reopen[0][0]:
            blocks.append(CodeBlock(_dedent(body), lang, False))
            (fence, lang), body = reopen, []
            continue
        body.append(line)
    if fence:
        blocks.append(CodeBlock(_dedent(body), lang, False))
    return blocks


def _dedent(lines: list[str]) -> str:
    return textwrap.dedent("\n".join(lines)).strip("\n")


def format_code(code: str) -> str:
    """The answer format both the code stage and `direct` ask for (and SFT targets use)."""
    return f"```python\n{code.strip(chr(10))}\n```"


# ------------------------------------------------------------------------------------------------
# Parsing helpers


def safe_parse(source: str) -> ast.Module | None:
    """ast.parse that reports failure as None: model output can make the parser raise
    SyntaxError, ValueError, RecursionError or MemoryError, and warn on odd literals."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return None


def compiles(source: str) -> bool:
    """Stricter than parsing: also catches `return` outside a function and similar."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            compile(source, "<test>", "exec", dont_inherit=True)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False


def _top_functions(tree: ast.Module) -> dict[str, ast.FunctionDef | ast.AsyncFunctionDef]:
    return {n.name: n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def defines_function(code: str, entry_point: str) -> bool:
    """Whether `code` parses and defines `entry_point` as a top-level function."""
    return _defines(code, entry_point)


def function_signature(code: str, entry_point: str) -> str | None:
    """The `def` line of a top-level function, e.g. 'def add(a: int, b: int) -> int:'."""
    tree = safe_parse(code)
    node = _top_functions(tree).get(entry_point) if tree else None
    if node is None:
        return None
    try:
        returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
        prefix = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
        return f"{prefix} {node.name}({ast.unparse(node.args)}){returns}:"
    except RecursionError:
        return None


# ------------------------------------------------------------------------------------------------
# The final code


@dataclass(frozen=True)
class ExtractedCode:
    """The code to run; `source` says where it came from: 'fenced', 'unterminated_fence',
    'unfenced' (salvaged from prose) or 'none' (code is '')."""

    code: str
    source: str
    parses: bool


_CODE_START = re.compile(r"(?:def |async def |class |import |from \S+ import |@)")


def extract_code(text: str, entry_point: str | None = None,
                 config: ParseConfig = DEFAULT_CONFIG) -> ExtractedCode:
    """The final program in a model answer.

    Each fenced block that does not parse (e.g. an unterminated fence followed by prose) is
    first trimmed like unfenced text. Then the preferred block is, in order: one that defines
    the entry point (any function when none is named), one with a `def` of it at all, one that
    parses, a Python-tagged one, a closed one, the last one. If no block defines the function
    but the prose around them does, that wins.
    """
    text = text[: config.max_input_chars]
    budget = [config.salvage_char_budget]
    best: tuple[tuple[bool, bool, bool, bool, bool, int], ExtractedCode] | None = None
    for index, block in enumerate(fenced_blocks(text)):
        code = block.code
        if safe_parse(code) is None:
            code = _salvage_code(code, entry_point, budget) or code
        parses = safe_parse(code) is not None
        textual = bool(re.search(rf"\bdef\s+{re.escape(entry_point or '')}", code))
        score = (_defines(code, entry_point), textual, parses, block.lang in PYTHON_LANGS, block.closed, index)
        if code.strip() and (best is None or score > best[0]):
            source = "fenced" if block.closed else "unterminated_fence"
            best = (score, ExtractedCode(code, source, parses))
    if best is not None and best[0][0]:
        return best[1]
    salvaged = _salvage_code(text, entry_point, budget)
    if salvaged is not None:
        return ExtractedCode(salvaged, "unfenced", True)
    return best[1] if best is not None else ExtractedCode("", "none", False)


def _defines(code: str, entry_point: str | None) -> bool:
    tree = safe_parse(code)
    if tree is None:
        return False
    functions = _top_functions(tree)
    return entry_point in functions if entry_point else bool(functions)


def _salvage_code(text: str, entry_point: str | None, budget: list[int]) -> str | None:
    """Drop leading and trailing prose lines until what remains parses and defines the
    function. Tries each line that can start code, earliest first, trimming from the end."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if _CODE_START.match(line)]
    for start in starts:
        for end in range(len(lines), start, -1):
            if not lines[end - 1].strip():
                continue
            candidate = "\n".join(lines[start:end])
            budget[0] -= len(candidate)
            if budget[0] < 0:
                return None
            if _defines(candidate, entry_point):
                return candidate
    return None
