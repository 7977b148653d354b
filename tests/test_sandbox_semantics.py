"""The sandbox keeps Python's meaning: what a test concludes about a program in one process, it
concludes across the candidate/test process boundary too.

Every job here runs for real in the sandbox (no mocks). Each test names the Python behaviour it
pins down; a failure means a correct program would be scored wrong (or a wrong one right).
"""

from __future__ import annotations

from textwrap import dedent

import pytest

from sandbox import Job, Result, Sandbox, SandboxConfig


@pytest.fixture(scope="module")
def sb():
    with Sandbox(SandboxConfig()) as sandbox:
        yield sandbox


def run(sb: Sandbox, program: str, *tests: str, setup: str = "", entry_point: str | None = "f",
        timeout: float = 3.0) -> Result:
    return sb.run(Job(program=dedent(program), tests=tuple(dedent(t) for t in tests), setup=dedent(setup),
                      entry_point=entry_point, timeout=timeout))


def statuses(result: Result) -> list[str]:
    return [t.status for t in result.tests]


def explain(result: Result) -> str:
    return "; ".join(f"{t.status}: {t.detail}" for t in result.tests)


# -- equality keeps Python's rules ------------------------------------------------------------
def test_list_is_not_equal_to_tuple(sb):
    res = run(sb, "def f():\n    return [1, 2]\n",
              "assert f() == (1, 2)", "assert f() == [1, 2]", "assert f() != (1, 2)", "assert type(f()) is list")
    assert statuses(res) == ["failed", "passed", "passed", "passed"], explain(res)


def test_bool_equals_int_but_keeps_its_type(sb):
    res = run(sb, "def f():\n    return True\n",
              "assert f() == 1", "assert f() is True", "assert isinstance(f(), bool)", "assert f() is 1")
    assert statuses(res) == ["passed", "passed", "passed", "failed"], explain(res)


def test_sets_and_dicts_compare_by_content(sb):
    program = "def f():\n    return {3, 1, 2}\n\ndef g():\n    return {'b': [2], 'a': (1,)}\n"
    res = run(sb, program, "assert f() == {1, 2, 3}", "assert g() == {'a': (1,), 'b': [2]}",
              "assert f() == {1, 2}", "assert g() == {'a': [1], 'b': [2]}")
    assert statuses(res) == ["passed", "passed", "failed", "failed"], explain(res)


def test_floats_are_exact_unless_the_test_allows_a_tolerance(sb):
    res = run(sb, "def f():\n    return 0.1 + 0.2\n",
              "assert f() == 0.3",
              "import math\nassert math.isclose(f(), 0.3)",
              "assert abs(f() - 0.3) < 1e-9",
              "assert f() == 0.30000000000000004")
    assert statuses(res) == ["failed", "passed", "passed", "passed"], explain(res)


def test_special_floats_survive(sb):
    res = run(sb, "def f():\n    return float('nan'), float('inf'), -0.0\n",
              "import math\na, b, c = f()\nassert math.isnan(a) and b == math.inf and math.copysign(1, c) == -1")
    assert res.status == "passed", explain(res)


def test_big_ints_round_trip(sb):
    res = run(sb, "def f(x):\n    return x * 10**100\n",
              "assert f(10**100) == 10**200", "assert f(-(2**521 - 1)) == -(2**521 - 1) * 10**100",
              "assert f(10**100) == 10**200 + 1")
    assert statuses(res) == ["passed", "passed", "failed"], explain(res)


def test_unicode_round_trips(sb):
    text = "\U0001F600 e\u0301 \u4e2d\u6587 \u00df \u200d \u05e9\u05dc\u05d5\u05dd"
    res = run(sb, "def f(s):\n    return s[::-1][::-1]\n\ndef g():\n    return 'e\\u0301' + '\\U0001F600'\n",
              f"assert f({text!r}) == {text!r}",
              "assert g() == 'e\\u0301\\U0001F600' and len(g()) == 3",
              "assert g() != '\\u00e9\\U0001F600'")  # combining form is not the precomposed one
    assert res.status == "passed", explain(res)


def test_bytes_complex_and_nested_containers_round_trip(sb):
    value = "(1+2j, b'\\x00\\xff', bytearray(b'ab'), frozenset({1}), {(1, 2): {3}}, [None, [[]]])"
    res = run(sb, f"def f():\n    return {value}\n", f"assert f() == {value}",
              "assert type(f()[2]) is bytearray and type(f()[3]) is frozenset")
    assert res.status == "passed", explain(res)


def test_is_none(sb):
    res = run(sb, "def f(x):\n    return None if x else 0\n",
              "assert f(1) is None", "assert f(0) is None", "assert f(0) is not None")
    assert statuses(res) == ["passed", "failed", "passed"], explain(res)


# -- exceptions -------------------------------------------------------------------------------
EXPECTS_VALUE_ERROR = """\
try:
    f(-1)
except ValueError as exc:
    assert "negative" in str(exc)
else:
    assert False, "no ValueError"
"""


def test_a_test_expecting_an_exception_passes_when_it_is_raised(sb):
    program = "def f(x):\n    if x < 0:\n        raise ValueError('negative input')\n    return x\n"
    res = run(sb, program, EXPECTS_VALUE_ERROR,
              "try:\n    f(-1)\nexcept Exception:\n    pass\nelse:\n    assert False")
    assert res.status == "passed", explain(res)


def test_a_test_expecting_an_exception_fails_when_none_is_raised(sb):
    res = run(sb, "def f(x):\n    return x\n", EXPECTS_VALUE_ERROR)
    assert statuses(res) == ["failed"], explain(res)


def test_builtin_exception_types_keep_their_hierarchy(sb):
    program = "def f(d, x):\n    return d['k'] / x\n"
    res = run(sb, program,
              "try:\n    f({}, 1)\nexcept LookupError:\n    pass\nelse:\n    assert False",
              "try:\n    f({'k': 1}, 0)\nexcept ArithmeticError:\n    pass\nelse:\n    assert False",
              "f({}, 1)")
    assert statuses(res) == ["passed", "passed", "error"], explain(res)
    assert "KeyError" in res.tests[2].detail


def test_a_program_defined_subclass_of_value_error_is_caught_as_value_error(sb):
    """``class E(ValueError)`` raised by the program is a ValueError to the test, as in Python."""
    program = "class NegativeError(ValueError):\n    pass\n\ndef f(x):\n    raise NegativeError('negative input')\n"
    res = run(sb, program, EXPECTS_VALUE_ERROR)
    assert res.status == "passed", explain(res)


# -- verdicts are per test --------------------------------------------------------------------
def test_each_test_has_its_own_verdict(sb):
    program = ("def f(x):\n    if x == 3:\n        while True:\n            pass\n    if x == 5:\n"
               "        raise KeyError(x)\n    return x\n")
    res = run(sb, program, "assert f(1) == 1", "assert f(2) == 3", "assert f(3) == 3", "assert f(4) == 4",
              "assert f(5) == 5", "assert f(6) == 6", timeout=1.0)
    assert statuses(res) == ["passed", "failed", "timeout", "passed", "error", "passed"], explain(res)
    assert (res.passed, res.total) == (3, 6)
    assert res.status == "timeout"  # the worst verdict names the job


def test_a_job_passes_only_if_every_test_passes(sb):
    program = "def f(x):\n    return x * 2\n"
    good = run(sb, program, "assert f(1) == 2", "assert f(2) == 4")
    one_bad = run(sb, program, "assert f(1) == 2", "assert f(2) == 5")
    assert good.status == "passed" and good.passed == good.total == 2 and good.pass_rate == 1.0
    assert one_bad.status == "failed" and one_bad.passed == 1 and one_bad.pass_rate == 0.5


def test_failure_detail_names_the_assertion(sb):
    res = run(sb, "def f(x):\n    return x\n", "assert f(2) == 3, 'two is not three'")
    assert res.tests[0].status == "failed"
    assert "two is not three" in res.tests[0].detail


# -- benchmark shapes -------------------------------------------------------------------------
def test_humaneval_style_check_block(sb):
    program = 'def add(x: int, y: int) -> int:\n    """Add two numbers."""\n    return x + y\n'
    check = dedent("""\
        METADATA = {}


        def check(candidate):
            assert candidate(0, 1) == 1
            assert candidate(5, 7) == 12
            assert candidate(-3, 3) == 0
        """)
    assert run(sb, program, check + "\ncheck(add)\n", entry_point="add").status == "passed"
    wrong = run(sb, program.replace("x + y", "x - y"), check + "\ncheck(add)\n", entry_point="add")
    assert wrong.status == "failed", explain(wrong)


def test_tolerance_asserts_keep_their_meaning(sb):
    res = run(sb, "def f(x):\n    return x\n",
              "assert abs(f(1.0000001) - 1.0) < 1e-6", "assert abs(f(1.1) - 1.0) < 1e-6",
              "assert abs(1.0 - f(1.0)) <= 0.0", "assert abs(f('1') - 1.0) < 1e-6",
              "assert abs(f(3) - 2.0 / 3.0) < 3")
    # a str minus a float raises TypeError, as it does when the test runs in Python
    assert statuses(res) == ["passed", "failed", "passed", "error", "passed"], explain(res)
    assert "TypeError" in res.tests[3].detail


def test_folded_arithmetic_is_python_arithmetic(sb):
    res = run(sb, "def f(xs):\n    return (sum(xs), 3 * 5 * 7, 7 // 2, -7 % 3, 0.1 + 0.2)\n",
              "assert f([3, 5, 7]) == (3 + 5 + 7, 3 * 5 * 7, 7 // 2, -7 % 3, 0.1 + 0.2)",
              "assert f([1]) == (1, 105, 3, 2, 0.3)")  # 0.1 + 0.2 != 0.3, in Python as here
    assert statuses(res) == ["passed", "failed"], explain(res)


def test_loops_and_several_asserts_keep_their_meaning(sb):
    program = "def f(x):\n    return 2 * x if x != 2 else 5\n\ndef g(xs):\n    xs.append(0)\n    return len(xs)\n"
    res = run(sb, program,
              "for x in range(2):\n    assert f(x) == x * 2\n",
              "for x in range(4):\n    assert f(x) == x * 2\n",
              "for xs, n in [([1], 2), ([], 1)]:\n    assert g(xs) == n\n",
              "assert f(1) == 2\nassert f(2) == 4\nassert f(3) == 6\n")
    assert statuses(res) == ["passed", "failed", "passed", "failed"], explain(res)
    assert "f(2) returned 5" in res.tests[1].detail and "f(2) returned 5" in res.tests[3].detail


SLOW_THEN_STUCK = """\
    import time

    def f(x):
        if x == 2:
            time.sleep(0.05)  # slow enough that the outcomes so far are sent before the next call
        while x == 3:
            pass
        return x
    """


def test_a_failed_check_ends_its_block_before_later_calls_finish(sb):
    # As when check() runs: the first failing assert ends it, so a later call that never returns
    # cannot turn the failure into a timeout.
    block = "def check(candidate):\n    assert candidate(1) == 0\n    assert candidate(2) == 2\n" \
            "    assert candidate(3) == 3\n\ncheck(f)\n"
    res = run(sb, SLOW_THEN_STUCK, block, "assert f(4) == 4", timeout=2.0)
    assert statuses(res) == ["failed", "passed"], explain(res)
    assert "candidate(1) returned 1" in res.tests[0].detail


def test_outcomes_that_arrive_in_parts_are_all_judged(sb):
    passing = "def check(candidate):\n    assert candidate(1) == 1\n    assert candidate(2) == 2\n" \
              "    assert candidate(4) == 4\n\ncheck(f)\n"
    last_fails = passing.replace("candidate(4) == 4", "candidate(4) == 5")
    res = run(sb, SLOW_THEN_STUCK, passing, last_fails, "assert f(5) == 5")
    assert statuses(res) == ["passed", "failed", "passed"], explain(res)
    assert "candidate(4) returned 4" in res.tests[1].detail


# MBPP task 367, as the dataset has it (tab indentation, trailing spaces, setup after the program).
MBPP_367_CODE = (
    "class Node: \n\tdef __init__(self, data): \n\t\tself.data = data \n\t\tself.left = None\n"
    "\t\tself.right = None\ndef get_height(root): \n\tif root is None: \n\t\treturn 0\n"
    "\treturn max(get_height(root.left), get_height(root.right)) + 1\n"
    "def is_tree_balanced(root): \n\tif root is None: \n\t\treturn True\n\tlh = get_height(root.left) \n"
    "\trh = get_height(root.right) \n\tif (abs(lh - rh) <= 1) and is_tree_balanced( \n"
    "\troot.left) is True and is_tree_balanced( root.right) is True: \n\t\treturn True\n\treturn False"
)
MBPP_367_SETUP = (
    "root = Node(1) \nroot.left = Node(2) \nroot.right = Node(3) \nroot.left.left = Node(4) \n"
    "root.left.right = Node(5) \nroot.left.left.left = Node(8) \nroot1 = Node(1) \nroot1.left = Node(2) \n"
    "root1.right = Node(3) \nroot1.left.left = Node(4) \nroot1.left.right = Node(5) \n"
    "root1.right.left = Node(6) \nroot1.left.left.left = Node(7)\nroot2 = Node(1) \nroot2.left = Node(2) \n"
    "root2.right = Node(3) \nroot2.left.left = Node(4) \nroot2.left.right = Node(5)\n"
    "root2.left.left.left = Node(7)"
)
MBPP_367_TESTS = ("assert is_tree_balanced(root) == False", "assert is_tree_balanced(root1) == True",
                  "assert is_tree_balanced(root2) == False ")


def test_mbpp_setup_builds_objects_the_tests_use(sb):
    res = sb.run(Job(program=MBPP_367_CODE, tests=MBPP_367_TESTS, setup=MBPP_367_SETUP,
                     entry_point="is_tree_balanced"))
    assert res.status == "passed", explain(res)
    always_true = MBPP_367_CODE.replace("\treturn False", "\treturn True")
    res = sb.run(Job(program=always_true, tests=MBPP_367_TESTS, setup=MBPP_367_SETUP,
                     entry_point="is_tree_balanced"))
    assert statuses(res) == ["failed", "passed", "failed"], explain(res)


def test_tests_can_read_attributes_and_call_methods_of_program_objects(sb):
    program = dedent("""\
        class Acc:
            def __init__(self):
                self.total = 3

            def add(self, x):
                self.total += x
                return self.total

        def f():
            return Acc()
        """)
    res = run(sb, program, "a = f()\nassert a.total == 3\nassert a.add(4) == 7\nassert a.total == 7",
              "assert Acc().add(1) == 4")
    assert res.status == "passed", explain(res)


# -- names the tests can reach ----------------------------------------------------------------
def test_tests_can_use_modules_the_program_imported(sb):
    program = "import math\nfrom collections import Counter\nimport itertools as it\n\ndef f(x):\n    return x\n"
    res = run(sb, program, "assert math.sqrt(f(4)) == 2.0", "assert Counter(f('aab'))['a'] == 2",
              "assert list(it.islice(f([1, 2, 3]), 2)) == [1, 2]")
    assert res.status == "passed", explain(res)


def test_tests_can_import_modules_themselves(sb):
    res = run(sb, "def f(xs):\n    return sorted(xs)\n",
              "import heapq\nassert f([3, 1, 2]) == heapq.nsmallest(3, [3, 1, 2])")
    assert res.status == "passed", explain(res)


def test_each_test_starts_from_fresh_copies_of_the_program_values(sb):
    program = "DATA = [1, 2, 3]\n\ndef f():\n    return len(DATA)\n"
    res = run(sb, program, "DATA.append(4)\nassert len(DATA) == 4", "assert DATA == [1, 2, 3]")
    assert res.status == "passed", explain(res)


# -- arguments and return values --------------------------------------------------------------
def test_in_place_mutation_of_arguments_is_visible_to_the_test(sb):
    program = dedent("""\
        def f(xs):
            xs.sort()

        def g(d, s):
            d['k'] = 1
            s.add(3)

        def h(rows):
            rows[0].append(9)
        """)
    res = run(sb, program, "xs = [3, 1, 2]\nassert f(xs) is None\nassert xs == [1, 2, 3]",
              "d, s = {}, {1}\ng(d, s)\nassert d == {'k': 1} and s == {1, 3}",
              "rows = [[1]]\nh(rows)\nassert rows == [[1, 9]]")
    assert res.status == "passed", explain(res)


def test_standard_dict_likes_compare_like_dicts(sb):
    program = dedent("""\
        from collections import Counter, OrderedDict, defaultdict

        def counts(s):
            return Counter(s)

        def groups(words):
            out = defaultdict(list)
            for w in words:
                out[len(w)].append(w)
            return out

        def ordered():
            return OrderedDict([('b', 1), ('a', 2)])
        """)
    res = run(sb, program, "assert counts('aab') == {'a': 2, 'b': 1}",
              "assert groups(['a', 'bc', 'd']) == {1: ['a', 'd'], 2: ['bc']}",
              "assert ordered() == {'a': 2, 'b': 1}",
              "assert counts('aab') == {'a': 2}", entry_point=None)
    assert statuses(res) == ["passed", "passed", "passed", "failed"], explain(res)


POINT = "from collections import namedtuple\nPoint = namedtuple('Point', 'x y')\n\ndef f():\n    return Point(1, 2)\n"


def test_namedtuples_compare_like_tuples(sb):
    program = POINT
    res = run(sb, program, "assert f() == (1, 2)", "assert f() == (2, 1)", "x, y = f()\nassert (x, y) == (1, 2)")
    assert statuses(res) == ["passed", "failed", "passed"], explain(res)


def test_namedtuple_fields_are_readable(sb):
    program = POINT
    res = run(sb, program, "assert f().x == 1 and f().y == 2")
    assert res.status == "passed", explain(res)


def test_generators_can_be_consumed_with_list(sb):
    program = "def f(n):\n    for i in range(n):\n        yield i * i\n\ndef g():\n    return map(str, [1, 2])\n"
    res = run(sb, program, "assert list(f(4)) == [0, 1, 4, 9]", "assert list(g()) == ['1', '2']",
              "assert sum(f(3)) == 5", "assert [x for x in f(2)] == [0, 1]", "assert list(f(2)) == [0]")
    assert statuses(res) == ["passed", "passed", "passed", "passed", "failed"], explain(res)


def test_generators_can_be_advanced_with_next(sb):
    res = run(sb, "def f(n):\n    yield from range(n)\n",
              "g = f(3)\nassert next(g) == 0\nassert next(g) == 1",
              "g = f(0)\ntry:\n    next(g)\nexcept StopIteration:\n    pass\nelse:\n    assert False")
    assert res.status == "passed", explain(res)


def test_builtin_types_can_be_passed_as_arguments(sb):
    program = "def f(xs, t):\n    return [x for x in xs if not isinstance(x, t)]\n"
    res = run(sb, program, "assert f((4, 5, 4, 7.7, 1.2), int) == [7.7, 1.2]",
              "assert f([1, 'a', 2.0], str) == [1, 2.0]", "assert f([1, 'a'], (int, str)) == []")
    assert res.status == "passed", explain(res)


def test_keyword_arguments_and_methods_on_returned_values(sb):
    res = run(sb, "def f(a, *, b=2):\n    return str(a + b)\n", "assert f(1, b=5) == '6'",
              "assert f(1).zfill(3) == '003'")
    assert res.status == "passed", explain(res)


def test_program_output_and_state_between_tests_are_harmless(sb):
    program = "n = 0\n\ndef f():\n    global n\n    n += 1\n    print('calls:', n)\n    return n\n"
    res = run(sb, program, "assert f() >= 1", "assert f() >= 1")
    assert res.status == "passed", explain(res)


# -- broken programs and tests ----------------------------------------------------------------
def test_syntax_error_in_the_program_errors_every_test(sb):
    res = run(sb, "def f(x)\n    return x\n", "assert f(1) == 1", "assert True", "assert 1 == 2")
    assert statuses(res) == ["error"] * 3, explain(res)
    assert all("SyntaxError" in t.detail for t in res.tests), explain(res)


def test_syntax_error_in_one_test_errors_only_that_test(sb):
    res = run(sb, "def f(x):\n    return x\n", "assert f(1) == 1", "assert f(2) ==", "assert f(3) == 3")
    assert statuses(res) == ["passed", "error", "passed"], explain(res)


def test_missing_entry_point_errors_naming_it(sb):
    res = run(sb, "def g(x):\n    return x\n", "assert g(1) == 1", entry_point="solve_task")
    assert statuses(res) == ["error"], explain(res)
    assert "solve_task" in res.tests[0].detail


def test_runtime_error_while_loading_errors_every_test(sb):
    res = run(sb, "x = 1 / 0\n\ndef f():\n    return 1\n", "assert f() == 1", "assert True")
    assert statuses(res) == ["error", "error"], explain(res)
    assert "ZeroDivisionError" in res.tests[0].detail


def test_no_tests_is_a_pass_with_total_zero(sb):
    res = run(sb, "def f():\n    return 1\n")
    assert (res.status, res.passed, res.total, res.tests) == ("passed", 0, 0, [])
