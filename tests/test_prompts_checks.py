"""Static checks of generated tests (prompts.checks), with known answers."""

from __future__ import annotations

import pytest

from prompts.checks import STUB_MARKER, StandIns, never_calls, reads_chance, stand_ins

REFERENCE = "def f(x):\n    return x\n"


@pytest.mark.parametrize("test, expected", [
    ("assert True", True),
    ("assert 1 + 1 == 2", True),
    ("assert g(1)", True),
    ("assert f(1) == 1", False),
    ("def f(x):\n    return 1\nassert f(1) == 1", True),              # its own f
    ("f = lambda x: 1\nassert f(1) == 1", True),
    ("import math as f\nassert f.pi", True),
    ("for f in [1]:\n    assert f", True),
    ("(f := 3)\nassert f == 3", True),
    ("def check(candidate):\n    assert candidate(1) == 1\ncheck(f)", False),  # HumanEval's form
    ("def check(f):\n    assert f(1) == 1\ncheck(f)", False),       # a parameter is local
    ("assert [f(x) for x in [1]] == [1]", False),
    ("assert f(", False),                                              # left to the sandbox
])  # fmt: skip
def test_never_calls(test, expected):
    assert never_calls(test, "f", REFERENCE) is expected


def test_without_an_entry_point_any_top_level_definition_counts():
    reference = "class Stack:\n    pass\n\ndef helper():\n    pass\n"
    assert never_calls("s = Stack()\nassert s is not None", None, reference) is False
    assert never_calls("assert 1 == 1", None, reference) is True
    assert never_calls("assert 1 == 1", None, "x = 1\n") is False  # nothing to look for: not checked


@pytest.mark.parametrize("test, expected", [
    ("assert f(1) == 1", False),
    ("import math, random, collections\nassert f(math.floor(random.random())) == 0", False),
    ("from itertools import permutations\nassert f(list(permutations([1]))) == [(1,)]", False),
    ("import os\nassert f(1)", True),
    ("import os.path\nassert f(1)", True),
    ("from os import getpid\nassert f(getpid())", True),
    ("from . import x\nassert f(1)", True),
    ("assert f(id(object()))", True),
    ("assert f(hash('a'))", True),
    ("assert f(open('/proc/uptime').read())", True),
    ("assert f(__import__('random').random())", True),
    ("assert f(1).__class__ is int", True),
    ("assert f(", False),
])  # fmt: skip
def test_reads_chance(test, expected):
    assert reads_chance(test) is expected


def _answers(program: str, name: str, *args):
    namespace: dict = {}
    exec(program, namespace)
    return namespace[name](*args)


def test_constant_stand_ins_return_none_and_the_marker():
    standing = stand_ins("def f(x, key=0):\n    return x\n", "f")
    assert [_answers(p, "f", 1) for p in standing.constant] == [None, STUB_MARKER]
    assert stand_ins("x = 1\n", None) == StandIns(constant=("",))


IDENTITY = "def g(v):\n    return v\n"


@pytest.mark.parametrize("value, wrong", [
    (True, [False, False]), (3, [4, 2]), (2.5, [3.5, 1.5]), ("abc", ["ab", "bc"]), ("", ["\u2400", "\u2400"]),
    (b"ab", [b"a", b"b"]), ([1, 2, 3], [[1, 2], [2, 3]]), ([], [[None], [None]]), ((1, 2), [(1,), (2,)]),
    ({"a": 1, "b": 2}, [{"a": 1}, {"b": 2}]), ({1, 3}, [{1}, {3}]), (frozenset(), [frozenset([None])] * 2),
    (None, [STUB_MARKER] * 2), (object, [STUB_MARKER] * 2),
])  # fmt: skip
def test_wrong_answers_keep_the_type_and_change_the_value(value, wrong):
    standing = stand_ins(IDENTITY, "g")
    assert [_answers(p, "g", value) for p in standing.wrong] == wrong


def test_a_recursive_reference_calls_itself_unchanged():
    """Were its inner calls changed too, two flips of a recursive boolean function could give the right answer
    back (MBPP/481 ``is_subset_sum``): only the answer the test sees is changed."""
    fact = "import math\n\ndef fact(n):\n    return 1 if n == 0 else n * fact(n - 1)\n"
    assert [_answers(p, "fact", 3) for p in stand_ins(fact, "fact").wrong] == [7, 5]
    namespace: dict = {}
    exec(stand_ins(fact, "fact").wrong[0], namespace)
    assert namespace["math"].pi > 3  # the reference's names reach the test, as they would from the reference


@pytest.mark.parametrize("passed, vacuous", [
    ([True, True, False, False], True),    # both constants pass: no value is checked
    ([False, True, True, True], True),     # both wrong answers pass: only the type or range is checked
    ([False, True, True, False], False), ([True, False, False, True], False), ([False] * 4, False),
])  # fmt: skip
def test_vacuous_means_passing_every_stand_in_of_one_kind(passed, vacuous):
    assert stand_ins(IDENTITY, "g").vacuous(passed) is vacuous
    with pytest.raises(ValueError, match="4 stand-in programs"):
        stand_ins(IDENTITY, "g").vacuous(passed[:3])
    assert StandIns(constant=("",)).vacuous([True]) and not StandIns(constant=("",)).vacuous([False])


def test_restating_the_problems_own_asserts_is_recognised_whatever_the_formatting():
    from prompts.checks import own_assert_keys, restates_own_tests

    mbpp = own_assert_keys(["assert f([1, 2]) == 3", "assert f([]) == 0"])
    humaneval = own_assert_keys(["def check(candidate):\n    assert f([1, 2]) == 3\n    assert f([]) == 0\n"])
    for keys in (mbpp, humaneval):
        assert restates_own_tests("assert f([1,2])==3, 'copied'  # note", keys)
        assert restates_own_tests("assert f([]) == 0\nassert f([1, 2]) == 3", keys)
        assert not restates_own_tests("assert f([1, 2]) == 3\nassert f([5]) == 5", keys)  # one new assert
        assert not restates_own_tests("assert f([2, 1]) == 3", keys)
        assert not restates_own_tests("x = [1, 2]\nassert f(x) == 3", keys)
        assert not restates_own_tests("assert f([1, 2] == 3", keys)  # unparsable: the sandbox's business
    assert own_assert_keys(["not python ("]) == frozenset()
