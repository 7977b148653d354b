"""Splitting discriminator output into runnable tests, counting rejections; fuzzed for robustness."""

from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from prompts import REJECTION_REASONS, ParseConfig, dedup_key, extract_tests


def add(a, b):
    return a + b


def wrong_add(a, b):
    return a + b if a < 5 else 0


def run(test: str, implementation) -> bool:
    """Execute one extracted test against an implementation (our own fixed inputs only)."""
    try:
        exec(test, {"add": implementation})
    except AssertionError:
        return False
    return True


def fenced(body: str) -> str:
    return f"Tests:\n```python\n{body}\n```\nThese cover it."


def test_one_assert_per_test_and_they_really_run():
    result = extract_tests(fenced("assert add(1, 2) == 3\nassert add(\n    5, 5) == 10\nassert add(-1, 1) == 0"), "add")
    assert result.tests == ["assert add(1, 2) == 3", "assert add(5, 5) == 10", "assert add(-1, 1) == 0"]
    assert result.rejected == Counter()
    assert [run(t, add) for t in result.tests] == [True, True, True]
    assert [run(t, wrong_add) for t in result.tests] == [True, False, True]


def test_setup_statements_travel_with_the_asserts_that_need_them():
    body = "import math\nxs = [1, 2]\nys = xs + [3]\nunused = 9\nassert add(len(ys), 0) == 3\nassert add(math.floor(1.5), 0) == 1"
    tests = extract_tests(fenced(body), "add").tests
    assert tests == ["xs = [1, 2]\nys = xs + [3]\nassert add(len(ys), 0) == 3",
                     "import math\nassert add(math.floor(1.5), 0) == 1"]
    assert all(run(t, add) for t in tests)


def test_results_built_up_by_loops_and_calls_are_kept_as_setup():
    body = "results = []\nfor x in (1, 2):\n    results.append(add(x, 1))\nresults.append(add(5, 5))\nassert results == [2, 3, 10]"
    result = extract_tests(fenced(body), "add")
    assert result.tests == [body] and result.rejected == Counter()
    assert run(body, add) and not run(body, wrong_add)


def test_test_functions_are_split_or_kept_whole():
    body = '''
def test_basic():
    y = 5
    assert add(y, 5) == 10
    assert add(0, 0) == 0

def check(candidate):
    assert candidate(6, 1) == 7

def test_needs_function_scope():
    r = add(7, 1)
    if r == 8:
        return
    assert False

test_basic()
check(add)
'''
    result = extract_tests(fenced(body), "add")
    assert result.tests[:3] == ["y = 5\nassert add(y, 5) == 10", "assert add(0, 0) == 0", "assert add(6, 1) == 7"]
    assert result.tests[3].endswith("\ntest_needs_function_scope()")
    assert result.rejected == Counter()
    assert [run(t, add) for t in result.tests] == [True] * 4
    assert [run(t, wrong_add) for t in result.tests] == [False, True, False, False]


def test_unittest_style_is_converted():
    body = '''
import unittest
class TestAdd(unittest.TestCase):
    def test_values(self):
        self.assertEqual(add(2, 2), 4)
        for i in range(3):
            self.assertTrue(add(i, 1) > i)
    def test_raises(self):
        self.assertRaises(TypeError, add, 1)
if __name__ == "__main__":
    unittest.main()
'''
    result = extract_tests(fenced(body), "add")
    assert result.tests == ["assert add(2, 2) == 4", "for i in range(3):\n    assert add(i, 1) > i"]
    assert result.rejected == Counter({"unsupported": 1})


def test_every_rejection_reason():
    body = '''from solution import add
def add(a, b):
    return 0
assert add(1, 1) == 2
assert add(1,1)==2, "same test, other message"
assert len([1]) == 1
print(add(3, 3))
def test_nothing():
    add(1, 2)
def test_fixture(a, b):
    assert add(a, b) == 0
assert add(''' + "1" * 60 + ''', 0) > 0
assert add(2, 2) == 4
assert add(3, 3) == 6
'''
    result = extract_tests(fenced(body), "add", config=ParseConfig(max_test_chars=50, max_tests=2))
    assert result.tests == ["assert add(1, 1) == 2", "assert add(2, 2) == 4"]
    assert result.rejected == Counter({"duplicate": 1, "wrong_function": 1, "no_assert": 2, "unsupported": 1,
                                       "too_long": 1, "too_many": 1})
    assert set(result.rejected) <= set(REJECTION_REASONS)


def test_comparisons_without_assert_are_salvaged():
    result = extract_tests(fenced("add(1, 2) == 3\nprint(add(2, 2) == 4)"), "add")
    assert result.tests == ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]


def test_known_tests_count_as_repeats_and_duplicates_within_an_answer_apart():
    result = extract_tests(fenced("assert add(1, 2) == 3\nassert add(2, 3) == 5\nassert add(2,3)==5"), "add",
                           known=["assert add(1,2) == 3"])
    assert result.tests == ["assert add(2, 3) == 5"] and result.rejected == Counter({"repeat": 1, "duplicate": 1})
    assert dedup_key("assert add(1, 2) == 3") == dedup_key("assert  add(1,2)==3, 'msg'  # c")
    assert dedup_key("assert add(1, 2) == 3") != dedup_key("assert add(2, 1) == 3")


def test_broken_block_is_salvaged_line_by_line():
    body = '''assert add(1, 2) == 3
assert add(1, 2 == 3
assert add([1,
2], [3]) == [1, 2, 3]
def test_inner():
    assert add(9, 9) == 18
    assert add(9, 9 == 18
x = add(
'''
    result = extract_tests(fenced(body), "add")
    assert result.tests == ["assert add(1, 2) == 3", "assert add([1, 2], [3]) == [1, 2, 3]", "assert add(9, 9) == 18"]
    assert result.rejected == Counter({"syntax_error": 3})


def test_unfenced_answers_and_answers_without_tests():
    prose = "The function add(a, b) should work.\nassert add(4, 4) == 8\nassert add(4, 4 == 8\nGood luck."
    result = extract_tests(prose, "add")
    assert result.tests == ["assert add(4, 4) == 8"] and result.rejected == Counter({"syntax_error": 1})
    assert extract_tests("I think it is correct.", "add").rejected == Counter({"no_assert": 1})
    code_only = extract_tests(fenced("def add(a, b):\n    return a + b"), "add")
    assert code_only.tests == [] and code_only.rejected == Counter({"no_assert": 1})


def test_rejects_bad_entry_point():
    with pytest.raises(ValueError):
        extract_tests("assert f(1) == 1", "not an identifier")


# ----------------------------------------------------------------------------------------------
# Fuzzing: parsing must never raise, and what it accepts must be well formed.

FRAGMENTS = st.sampled_from([
    "```", "```python", "```py\n", "~~~", "````", "`", "\n", "    ", "\t", "assert ", "add(", ")", "(", "[",
    "]", " == ", "1", "'''", '"""', "def test_x():\n", "def check(candidate):\n", "class T:\n", "self.assertEqual(",
    "return ", "if __name__ == '__main__':\n", "from x import *\n", "\x00", "é", "\u2028", "\r\n", "\\", "#",
    "print(", "lambda: ", "yield ", "async def f():\n", "await ", "-", "{", "}", ",", ":",
])
MODEL_TEXT = st.one_of(st.text(max_size=300), st.lists(FRAGMENTS, max_size=60).map("".join))


def _well_formed(result, config=ParseConfig()):
    assert set(result.rejected) <= set(REJECTION_REASONS)
    assert all(count > 0 for count in result.rejected.values())
    assert len(result.tests) <= config.max_tests
    assert len({dedup_key(t) for t in result.tests}) == len(result.tests)
    for test in result.tests:
        compile(test, "<test>", "exec")
        assert "add" in test and "assert" in test and len(test) <= config.max_test_chars


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(MODEL_TEXT)
def test_fuzz_never_raises(text):
    from prompts import extract_code, fenced_blocks

    _well_formed(extract_tests(text, "add"))
    extract_code(text, "add")
    extract_code(text)
    fenced_blocks(text)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(-10**6, 10**6), st.integers(-10**6, 10**6)), min_size=1, max_size=10),
       st.sampled_from(["\n", "\n\n", "  # note\n"]))
def test_fuzz_valid_asserts_are_all_kept(pairs, sep):
    body = sep.join(f"assert add({a}, {b}) == {a + b}" for a, b in pairs)
    result = extract_tests(fenced(body), "add")
    assert len(result.tests) + result.rejected["duplicate"] == len(pairs)
    assert set(result.rejected) <= {"duplicate"}
    assert all(run(t, add) for t in result.tests)


def test_exhausted_salvage_budget_still_keeps_single_statements():
    body = "\n".join(["x = (", "assert add(1, 2) == 3", "y = [", "assert add(2, 2) == 4"] * 50)
    result = extract_tests(fenced(body), "add", config=ParseConfig(salvage_char_budget=100))
    assert result.tests == ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]
    assert result.rejected == Counter({"duplicate": 98})


@pytest.mark.parametrize("text", [
    "a" * 300_000,
    "```python\n" + "(" * 5_000 + "\n```",
    "```python\nassert add(" + "-" * 100_000 + "1, 0) == 1\n```",
    "```python\nassert add(" + "[" * 150 + "]" * 150 + ", 0)\n```",
    "\n".join(["def f(:", "assert add(1, 2) == (3"] * 5_000),
    "```python\n" + "assert add(1, 1) == 2\n" * 20_000 + "```",
    "```" * 10_000,
    "\x00```python\nassert add(1, 1) == 2\x00\n```",
])
def test_pathological_inputs(text):
    from prompts import extract_code

    _well_formed(extract_tests(text, "add"))
    extract_code(text, "add")
