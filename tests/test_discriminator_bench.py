"""The discriminator benchmark (pipeline/evaluation/discriminator_bench.py) on hand-made tasks whose
answers are worked out below, in the real sandbox; and the packaged subtly wrong programs."""

from __future__ import annotations

import pytest

from datasets_build.evalplus_subtle import load_subtle, subtle_file
from pipeline.evaluation.discriminator_bench import SubtleProgram, discriminator_benchmark, pooled_tests
from pipeline.evaluation.samples import Sample
from sandbox import Sandbox

ROWS = {
    "A": {"task_id": "A", "entry_point": "f", "reference_solution": "def f(x):\n    return x * 2\n", "test_setup": "",
          "tests": ["assert f(2)==4  # the task's own", "assert f(0) == 0"]},
    "B": {"task_id": "B", "entry_point": "g", "reference_solution": "def g(x):\n    return x + 1\n", "test_setup": ""},
}
TESTS = {
    "A": ["assert f(2) == 4",               # valid, but restates the task's own first assert
          "assert f(3) == 7",               # the reference fails it
          "assert True",                    # never calls f
          "assert f(10 ** 6) == 2000000",   # valid: the only one that catches the big-input bug
          "f(2)"],                          # valid but vacuous: constant stand-ins pass it too
    "B": ["assert g(1) == 3"],              # the reference fails it: B has no valid test
}
SUBTLE = [
    SubtleProgram("A", "def f(x):\n    return x * 2 if x < 1000 else 0\n"),   # caught by f(10 ** 6)
    SubtleProgram("A", "def f(x):\n    return 11 if x == 5 else x * 2\n"),    # no test looks at 5
    SubtleProgram("B", "def g(x):\n    return x + 1 if x < 1000 else 0\n"),   # B has no valid test
    SubtleProgram("C", "def h(x):\n    return 0\n"),                           # not a task of this run
]


def test_worked_example():
    with Sandbox() as sandbox:
        result = discriminator_benchmark(sandbox, ROWS, TESTS, SUBTLE)
    assert result["written"] == 6 and result["valid"] == 3 and result["validity"] == pytest.approx(0.5)
    assert result["invalid"] == {"no_call": 1, "reference_failed": 2}
    assert result["valid_but_vacuous"] == 1 and result["valid_but_restated"] == 1
    assert result["valid_counted"] == 1  # f(10 ** 6) alone: what the rewards would pay for
    assert (result["tasks_with_valid_test"], result["tasks"]) == (1, 2)
    assert (result["subtle_caught"], result["subtle_programs"], result["subtle_tasks"]) == (1, 3, 2)
    assert result["catch_rate"] == pytest.approx(1 / 3)


def test_no_tests_catch_nothing():
    with Sandbox() as sandbox:
        result = discriminator_benchmark(sandbox, ROWS, {}, SUBTLE)
    assert result["written"] == 0 and result["validity"] == 0.0 and result["catch_rate"] == 0.0


def test_tests_are_pooled_per_task_without_duplicates():
    samples = [Sample("A", 0, "", "", tests=["assert f(1) == 2", "assert f(2) == 4"]),
               Sample("A", 1, "", "", tests=["assert f(1)  ==  2", "assert f(3) == 6"]),
               Sample("B", 0, "", "", tests=[])]
    assert pooled_tests(samples) == {"A": ["assert f(1) == 2", "assert f(2) == 4", "assert f(3) == 6"]}


@pytest.mark.parametrize("name", ["humaneval+", "mbpp+"])
def test_packaged_subtle_programs_are_well_formed(name):
    assert subtle_file(name).is_file(), f"{subtle_file(name)} is tracked in git and must ship with datasets_build"
    records = load_subtle(name)
    assert len(records) >= 50
    assert all(r["task_id"].startswith("HumanEval/" if name == "humaneval+" else "Mbpp/") for r in records)
    assert len({(r["task_id"], r["program"]) for r in records}) == len(records)
