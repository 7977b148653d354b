"""Static checks of generated tests (prompts.checks), with known answers."""

from __future__ import annotations

import pytest

from prompts.checks import STUB_MARKER, never_calls, reads_chance, stub_programs

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


def test_stub_programs_return_constants():
    namespaces = []
    for source in stub_programs("f"):
        namespace: dict = {}
        exec(source, namespace)
        namespaces.append(namespace["f"](1, key=2))
    assert namespaces == [None, STUB_MARKER]
    assert stub_programs(None) == ("",)


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
