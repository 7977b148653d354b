"""Fenced blocks and final-code extraction from model answers."""

import pytest

from prompts import (
    defines_function, extract_code, fenced_blocks, format_code, function_signature,
)

CODE = "def add(a, b):\n    return a + b"


def test_blocks_closed_unterminated_and_reopened():
    text = ("intro ```python\nx = 1\n```\n"
            "~~~\ny = 2\n~~~\n"
            "  ```py\n  z = 3\n  w = 4```\n"
            "```python\nunclosed = 1\n```python\nreopened = 2")
    blocks = fenced_blocks(text)
    assert [(b.code, b.lang, b.closed) for b in blocks] == [
        ("x = 1", "python", True), ("y = 2", "", True), ("z = 3\nw = 4", "py", True),
        ("unclosed = 1", "python", False), ("reopened = 2", "python", False)]


def test_inline_backticks_are_not_fences():
    assert fenced_blocks("Use ``` to open a block, and `x` inline.") == []
    assert fenced_blocks("One-liner ```python print(1)``` here.\nx = 1") == []


def test_format_code_round_trips():
    assert extract_code(format_code(CODE), "add").code == CODE
    assert format_code("\n" + CODE + "\n\n").count("\n") == CODE.count("\n") + 2


@pytest.mark.parametrize("text, source", [
    (f"Here you go:\n```python\n{CODE}\n```\nDone.", "fenced"),
    (f"```python\n{CODE}\n\nThis adds the numbers.", "unterminated_fence"),
    (f"Sure! Here it is.\nimport math\n{CODE}\nIt returns the sum.", "unfenced"),
])
def test_extract_code_sources(text, source):
    result = extract_code(text, "add")
    assert result.source == source and result.parses
    assert defines_function(result.code, "add")
    assert "Done" not in result.code and "returns the sum" not in result.code and "This adds" not in result.code


def test_imports_are_kept_with_unfenced_code():
    result = extract_code(f"Answer:\nimport math\n{CODE}\nExplanation.", "add")
    assert result.code == f"import math\n{CODE}"


def test_prefers_the_block_that_defines_the_entry_point():
    text = (f"```python\n{CODE}\n```\nUsage:\n```python\nprint(add(1, 2))\n```\n"
            "```text\ndef add(a, b): return 0\n```")
    assert extract_code(text, "add").code == CODE


def test_prefers_the_last_good_definition():
    text = f"```python\ndef add(a, b):\n    return 0\n```\nFixed:\n```python\n{CODE}\n```"
    assert extract_code(text, "add").code == CODE


def test_a_salvageable_definition_beats_a_usage_example():
    text = f"```python\n{CODE}\nThis is how it works.\n```\nUsage:\n```python\nprint(add(1, 2))\n```"
    assert extract_code(text, "add") == extract_code(format_code(CODE), "add")


def test_definition_in_prose_beats_a_fenced_usage_example():
    text = f"Solution:\n{CODE}\nExample:\n```python\nprint(add(1, 2))\n```"
    result = extract_code(text, "add")
    assert (result.code, result.source) == (CODE, "unfenced")
    assert extract_code("```python\nprint(add(1, 2))\n```", "add").code == "print(add(1, 2))"


def test_broken_code_is_still_returned_but_marked():
    result = extract_code("```python\ndef add(a, b:\n    return a + b\n```", "add")
    assert result.code.startswith("def add(a, b:") and not result.parses and result.source == "fenced"


def test_nothing_usable():
    assert extract_code("I cannot solve this.", "add").source == "none"
    assert extract_code("", "add").code == ""


def test_function_signature_and_defines():
    code = "import typing\n\nasync def g(): pass\ndef f(a: int, *rest, k=3, **kw) -> list[int]:\n    return []"
    assert function_signature(code, "f") == "def f(a: int, *rest, k=3, **kw) -> list[int]:"
    assert function_signature(code, "g") == "async def g():"
    assert function_signature(code, "h") is None and function_signature("def (", "f") is None
    assert defines_function(code, "f") and not defines_function("f = lambda: 1", "f")
