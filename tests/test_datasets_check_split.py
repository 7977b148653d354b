"""Splitting HumanEval's check(candidate) into single-assert tests must keep the task's verdict."""

from __future__ import annotations

import gzip
import json

import pytest

from datasets_build.check_split import split_check, whole_check
from datasets_build.humaneval import packaged_humaneval_file
from sandbox import Job, Sandbox, SandboxConfig


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_independent_asserts_become_one_test_each_with_the_entry_point_name():
    test = "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    assert candidate(1) == 2\n    assert candidate(candidate(0)) == 2, 'msg'\n"
    assert split_check(test, "inc") == ["assert inc(1) == 2\n", "assert inc(inc(0)) == 2, 'msg'\n"]


def test_asserts_reading_local_state_stay_in_a_remainder_that_calls_check():
    test = (
        "def check(candidate):\n"
        "    assert candidate(1) == 2\n"
        "    xs = [1, 2]\n"
        "    assert candidate(xs[0]) == 2\n"
        "    for x in xs:\n"
        "        assert candidate(x) == x + 1\n"
    )
    tests = split_check(test, "inc")
    assert tests[0] == "assert inc(1) == 2\n"
    assert len(tests) == 2
    remainder = tests[1]
    assert "xs = [1, 2]" in remainder and "assert candidate(xs[0]) == 2" in remainder
    assert "assert candidate(1) == 2" not in remainder
    assert remainder.rstrip().endswith("check(inc)")


def test_a_name_assigned_anywhere_in_check_makes_asserts_using_it_dependent():
    # `str` is local to the whole function once assigned, so an earlier read would raise
    # UnboundLocalError when run whole; the split must not turn that into a pass.
    test = "def check(candidate):\n    assert candidate(str(1)) == '1'\n    str = 'x'\n    assert candidate(str) == 'x'\n"
    assert split_check(test, "f") == [whole_check(test, "f")]


def test_walrus_semicolons_and_rebinding_candidate_are_not_split_off():
    walrus = "def check(candidate):\n    assert (y := candidate(1)) == 2\n    assert candidate(y) == 3\n"
    assert split_check(walrus, "f") == [whole_check(walrus, "f")]
    shared_line = "def check(candidate):\n    assert candidate(1) == 2; x = 1\n    assert candidate(x) == 2\n"
    assert split_check(shared_line, "f") == [whole_check(shared_line, "f")]
    rebound = "def check(candidate):\n    candidate = abs\n    assert candidate(-1) == 1\n"
    assert split_check(rebound, "f") == [whole_check(rebound, "f")]


def test_assert_true_is_dropped_and_assert_false_kept():
    test = "def check(candidate):\n    assert candidate(1) == 2\n    assert True, 'free'\n    assert False\n"
    assert split_check(test, "f") == ["assert f(1) == 2\n", "assert False\n"]


def test_module_level_names_used_by_an_assert_are_kept_as_prefix():
    test = "import math\nEPS = 1e-6\n\ndef check(candidate):\n    assert abs(candidate(2) - math.sqrt(2)) < EPS\n    assert candidate(4) == 2\n"
    prefixed, plain = split_check(test, "root")
    assert prefixed == "import math\nEPS = 1e-6\n\nassert abs(root(2) - math.sqrt(2)) < EPS\n"
    assert plain == "assert root(4) == 2\n"


def test_module_level_code_with_effects_keeps_the_check_whole():
    test = "print('side effect')\n\ndef check(candidate):\n    assert candidate(1) == 1\n"
    assert split_check(test, "f") == [whole_check(test, "f")]


def test_renaming_handles_non_ascii_text_and_multi_line_asserts():
    test = "def check(candidate):\n    assert candidate('héllo', 'ü') == [\n        'ü', candidate('x', 'y')]\n"
    (only,) = split_check(test, "pick")
    assert only == "assert pick('héllo', 'ü') == [\n        'ü', pick('x', 'y')]\n"
    compile(only, "<test>", "exec")


def _humaneval() -> list[dict]:
    with gzip.open(packaged_humaneval_file(), "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_every_humaneval_task_gives_compilable_tests():
    tasks = _humaneval()
    assert len(tasks) == 164
    counts = []
    for task in tasks:
        tests = split_check(task["test"], task["entry_point"])
        for test in tests:
            compile(test, task["task_id"], "exec")
            assert "candidate" not in test or "check(" in test, task["task_id"]
        counts.append(len(tests))
    assert sum(counts) > 5 * len(tasks)  # the point of splitting: many verdicts per task


_WRONG_NONE = "\n\ndef {ep}(*args, **kwargs):\n    return None\n"
# Wrong on about a third of the inputs (chosen by a stable hash of the arguments), right on the
# rest: the case where whole and split differ if splitting broke the meaning of a check.
_WRONG_SUBTLE = '''

import zlib as _zlib

_reference_{ep} = {ep}


def _canonical(value):
    if isinstance(value, (set, frozenset)):
        return sorted(_canonical(v) for v in value)
    if isinstance(value, dict):
        return sorted((_canonical(k), _canonical(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return repr(value)


def _perturb(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value + 0.5
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return value + [value[0] if value else 0]
    if isinstance(value, tuple):
        return value + (0,)
    if value is None:
        return 0
    return None


def {ep}(*args, **kwargs):
    result = _reference_{ep}(*args, **kwargs)
    if _zlib.crc32(repr(_canonical(args)).encode()) % 3:
        return result
    return _perturb(result)
'''


@pytest.mark.slow
def test_split_tests_give_the_same_task_verdict_as_the_whole_check_on_all_164_tasks():
    tasks = _humaneval()
    programs = {
        "canonical": lambda t: t["prompt"] + t["canonical_solution"],
        "returns None": lambda t: t["prompt"] + t["canonical_solution"] + _WRONG_NONE.format(ep=t["entry_point"]),
        "subtly wrong": lambda t: t["prompt"] + t["canonical_solution"] + _WRONG_SUBTLE.format(ep=t["entry_point"]),
    }
    jobs, keys = [], []
    for task in tasks:
        ep = task["entry_point"]
        for name, program in programs.items():
            source = program(task)
            jobs.append(Job(program=source, tests=(whole_check(task["test"], ep),), entry_point=ep))
            jobs.append(Job(program=source, tests=tuple(split_check(task["test"], ep)), entry_point=ep))
            keys.append((task["task_id"], name))
    with Sandbox(SandboxConfig(timeout_s=10.0, job_timeout_s=120.0, min_isolation="process")) as sandbox:
        results = sandbox.run_many(jobs)
    assert not [r for r in results if r.status == "infra_error"]
    failing_whole = {name: 0 for name in programs}
    mismatches = []
    for index, key in enumerate(keys):
        whole, split = results[2 * index], results[2 * index + 1]
        failing_whole[key[1]] += whole.status != "passed"
        if (whole.status == "passed") != (split.status == "passed"):
            mismatches.append((key, whole.status, split.status, [t.detail for t in whole.tests + split.tests if t.detail][:2]))
    assert not mismatches
    assert failing_whole["canonical"] == 0
    # The wrong programs really are wrong on most tasks, so agreement above means something.
    assert failing_whole["returns None"] >= 160
    assert failing_whole["subtly wrong"] >= 100
