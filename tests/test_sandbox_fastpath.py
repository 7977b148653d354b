"""Which tests the worker judges itself (sandbox/fastpath.py), and that the candidate only ever
gets the call side of them."""

from __future__ import annotations

import pytest

from sandbox.fastpath import plan

NAMES = frozenset({"f", "g"})


@pytest.mark.parametrize("test, call, op, expected", [
    ("assert f(1) == 2", "f(1)", "==", 2),
    ("assert 2 == f(1)", "f(1)", "==", 2),
    ("assert f([3, 1]) != [1, 3]", "f([3, 1])", "!=", [1, 3]),
    ("assert f('x') is None", "f('x')", "is", None),
    ("assert g() is not True", "g()", "is not", True),
    ("assert f(0)", "f(0)", "truthy", None),
    ("assert not f(0)", "f(0)", "falsy", None),
    ("assert sorted(f(x)) == sorted([3, 1, 2])", "sorted(f(x))", "==", [1, 2, 3]),
    ("assert set(f(4)) == {1, 2}", "set(f(4))", "==", {1, 2}),
    ("assert round(f(2.5), 2) == 1.25", "round(f(2.5), 2)", "==", 1.25),
    ("assert f(1) == (1, -2.5, 'a', b'z', None), 'message'", "f(1)", "==", (1, -2.5, "a", b"z", None)),
    ("assert f([3, 5]) == (3 + 5 + 7, 3 * 5 * 7)", "f([3, 5])", "==", (15, 105)),
    ("assert f(1) == [2.0 / 3.0, 7 // 2, 7 % 3, 1 - 4]", "f(1)", "==", [2.0 / 3.0, 3, 1, -3]),
    ("assert abs(f(1.33) - 0.33) < 1e-6", "f(1.33)", "close<", (0.33, 1e-6, True)),
    ("assert abs(2.0 / 3.0 - f([1.0])) <= 1e-6", "f([1.0])", "close<=", (2.0 / 3.0, 1e-6, False)),
])
def test_accepted_shapes_send_only_the_call(test, call, op, expected):
    checks, aliases = plan(test, NAMES)
    (fast,) = checks
    assert aliases == {} and (fast.call, fast.op) == (call, op)
    if op not in ("truthy", "falsy"):
        assert fast.expected == expected and type(fast.expected) is type(expected)


@pytest.mark.parametrize("test", [
    "assert abs(f(1) - h(2)) < 1e-6",     # the other operand is not a constant
    "assert abs(f(1) - 0.5) < f(2)",      # nor is the tolerance
    "assert abs(f(1) + 0.5) < 1e-6",      # not a difference
    "assert f(1) == 2 ** 10",             # powers are never folded (2 ** 10 ** 10 would hang the worker)
    "assert f(1) == 1 / 0",               # folding raises: the test process shows the error
    "assert f(1) == 'a' * 3",             # only numbers are folded
    "assert f(1) == h(2)",                # expected side is not a literal
    "assert len(f(1)) > 2",               # not an equality
    "assert print(1) == None",            # not a program function
    "x = f(1)\nassert x == 2",            # two statements
    "assert f(1) == math.inf",             # not a literal
    "assert f(1) is 3",                   # identity with a non-singleton
    "assert f(1) == 2 == 2",              # chained comparison
    "assert f(1) ==",                     # does not parse
])
def test_other_shapes_run_in_a_test_process(test):
    assert plan(test, NAMES) is None


def test_a_check_block_of_simple_asserts_is_judged_assert_by_assert():
    block = ("METADATA = {'author': 'x'}\nimport math\n\n"
             "def check(candidate):\n    '''doc'''\n    assert True, 'this line cannot fail'\n"
             "    assert candidate(1) == 2\n    assert candidate(2) == 3, 'error: ' + str(candidate(2))\n\n"
             "check(f)\n")
    checks, aliases = plan(block, NAMES)
    assert [c.call for c in checks] == ["candidate(1)", "candidate(2)"]
    assert [c.expected for c in checks] == [2, 3]
    assert aliases == {"candidate": "f"}


@pytest.mark.parametrize("body", [
    "    for i in range(3):\n        x = i\n        assert candidate(x) == i\n",
    "    x = 3\n    assert candidate(x) == 3\n",
    "    assert abs(candidate(1) - 1.0) < candidate(2)\n",
    "    assert False\n",
    "    print(1)\n    assert candidate(1) == 1\n",
])
def test_blocks_with_state_or_other_asserts_are_not(body):
    assert plan(f"def check(candidate):\n{body}\ncheck(f)\n", NAMES) is None


def test_a_bare_builtin_name_in_a_check_block_is_skipped_unless_the_block_rebinds_it():
    body = "def check(candidate):\n    print\n    assert candidate(1) == 2\n\ncheck(f)\n"
    checks, _ = plan(body, NAMES)
    assert [c.call for c in checks] == ["candidate(1)"]
    assert plan("print = 5\n" + body, NAMES) is None
    assert plan(body.replace("print", "undefined_name"), NAMES) is None


def calls(test, names=NAMES):
    found = plan(test, names)
    return None if found is None else [(c.call, c.expected) for c in found[0]]


def test_several_asserts_are_checks_in_order():
    assert calls("assert f(1) == 2\nassert g('a') == 'b'\n") == [("f(1)", 2), ("g('a')", "b")]


def test_loops_over_constants_are_unrolled_with_the_values_written_in():
    assert calls("for x in range(2, 5, 2):\n    assert f(x, x + 1) == str(x)\n") == [
        ("f(2, 2 + 1)", "2"), ("f(4, 4 + 1)", "4")]
    assert calls("for xs, n in [([3, 1], 2), ((), 0)]:\n    assert f(xs) == n\n") == [
        ("f([3, 1])", 2), ("f(())", 0)]
    block = "def check(candidate):\n    for s in ['ab', 'é']:\n        assert candidate(s) == s\n\ncheck(f)\n"
    assert calls(block) == [("candidate('ab')", "ab"), ("candidate('é')", "é")]


@pytest.mark.parametrize("test", [
    # a list used twice in one iteration: a call may change it before the second use sees it
    "for xs in [[3, 1]]:\n    assert f(xs) == [1, 3]\n    assert g(xs) == [3, 1]\n",
    "for xs in [[3, 1]]:\n    assert f(xs) == xs\n",
    "for x in range(10 ** 6):\n    assert f(x) == x\n",        # not a constant (no powers)
    "for x in range(5000):\n    assert f(x) == x\n",           # too many checks
    "for x in [1, 2]:\n    assert f(x) == x\nelse:\n    pass\n",
    "for a, b in [(1, 2, 3)]:\n    assert f(a) == b\n",        # would fail to unpack
    "for f in [1]:\n    assert f(1) == 1\n",                   # the loop rebinds a program name
    "for x in [1]:\n    for y in [2]:\n        assert f(x, y) == 3\n",
    "for x in range(0):\n    assert f(x) == x\n",              # no check at all: nothing to judge here
])
def test_other_loops_run_in_a_test_process(test):
    assert plan(test, NAMES) is None


def test_a_block_whose_calls_use_a_name_the_test_module_binds_runs_in_a_test_process():
    block = "LIMIT = 3\n\ndef check(candidate):\n    assert candidate(LIMIT) == 3\n\ncheck(f)\n"
    assert plan(block, NAMES) is None
