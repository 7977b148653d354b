"""Scoring hand-made samples in the real sandbox: verdicts, rates, per-category numbers, best-of-N picks."""

from __future__ import annotations

import pytest

from datasets_build import load_problems
from pipeline.evaluation.metric import load_pass_at_k
from pipeline.evaluation.samples import Sample
from pipeline.evaluation.scoring import ScoreConfig, score_runs
from sandbox import Sandbox, SandboxConfig


@pytest.fixture(scope="module")
def rows() -> dict[str, dict]:
    return {row["task_id"]: row for row in load_problems("humaneval-mini").to_list()[:2]}


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(workers=2)) as box:
        yield box


@pytest.fixture(scope="module")
def metric():
    return load_pass_at_k()


def _code(row: dict, body: str) -> str:
    return f"def {row['entry_point']}(a, b):\n    {body}\n"


def test_rates_and_verdicts(rows, sandbox, metric) -> None:
    add, sub = rows.values()  # add(a, b), subtract(a, b)
    samples = [
        Sample(add["task_id"], 0, "", _code(add, "return a + b")),
        Sample(add["task_id"], 1, "", _code(add, "return a - b")),
        Sample(sub["task_id"], 0, "", "def subtract(a, b) return a - b"),  # does not parse
        Sample(sub["task_id"], 1, "", "", texts=["return return return"]),  # no code, collapsed
    ]
    summaries, records = score_runs(sandbox, rows, {"run": samples}, ScoreConfig(ks=(1, 2)), metric)
    run = summaries["run"]
    assert run["pass@1"] == pytest.approx(0.25) and run["pass@2"] == pytest.approx(0.5)
    assert run["syntax_valid_rate"] == pytest.approx(0.5)
    assert run["collapse_rate"] == pytest.approx(0.25)
    assert run["tasks"][add["task_id"]]["statuses"] == ["passed", "failed"]
    assert run["per_category"] == {"arithmetic": {"tasks": 2, "pass@1": pytest.approx(0.25),
                                                  "pass@2": pytest.approx(0.5)}}
    assert [r["status"] for r in records["run"]][:2] == ["passed", "failed"]
    assert records["run"][3]["collapsed"] and not records["run"][0]["collapsed"]


def test_best_of_picks_the_program_passing_most_pooled_tests(rows, sandbox, metric) -> None:
    add = next(iter(rows.values()))
    wrong = Sample(add["task_id"], 0, "", _code(add, "return a * b"), logprob=-0.1,
                   tests=["assert add(2, 2) == 4"])  # passes its own test: 2 * 2 == 4
    right = Sample(add["task_id"], 1, "", _code(add, "return a + b"), logprob=-0.9,
                   tests=["assert add(1, 2) == 3", "assert add(0, 5) == 5"])
    summaries, records = score_runs(sandbox, {add["task_id"]: add}, {"run": [wrong, right]},
                                    ScoreConfig(ks=(1, 2), best_of=2), metric)
    best = summaries["run"]["best_of"]
    assert best["picked"] == {add["task_id"]: 1}
    assert best["pass_rate"] == 1.0 and best["pass@1"] == pytest.approx(0.5) and best["pass@2"] == 1.0
    assert best["mean_selection_tests"] == 3
    assert [r["selection_tests_passed"] for r in records["run"]] == [1, 3]


def test_best_of_ties_go_to_the_likelier_sample(rows, sandbox, metric) -> None:
    add = next(iter(rows.values()))
    first = Sample(add["task_id"], 0, "", _code(add, "return a - b"), logprob=-2.0, tests=["assert add(0, 0) == 0"])
    second = Sample(add["task_id"], 1, "", _code(add, "return a + b"), logprob=-0.5)
    summaries, _ = score_runs(sandbox, {add["task_id"]: add}, {"run": [first, second]},
                              ScoreConfig(best_of=2), metric)
    assert summaries["run"]["best_of"]["picked"] == {add["task_id"]: 1}
    assert summaries["run"]["best_of"]["pass_rate"] == 1.0


def test_best_of_reports_the_validity_of_the_pooled_tests(rows, sandbox, metric) -> None:
    add, sub = rows.values()
    tests = ["assert add(1, 2) == 3",              # valid
             "assert add(2, 2) == 5",              # fails on the reference
             "assert add(1, 1) is not None or True",  # passes on every stand-in: vacuous
             "assert 1 + 1 == 2",                  # never calls add
             "import os\nassert add(os.getpid(), 0) > 0"]  # reads a source of chance
    samples = [Sample(add["task_id"], 0, "", _code(add, "return a + b"), tests=tests[:3]),
               Sample(add["task_id"], 1, "", _code(add, "return a + b"), tests=tests[2:]),  # one repeated: pooled once
               Sample(sub["task_id"], 0, "", _code(sub, "return a - b"), tests=["assert subtract(3, 1) == 5"]),
               Sample(sub["task_id"], 1, "", _code(sub, "return a - b"))]
    summaries, _ = score_runs(sandbox, rows, {"run": samples}, ScoreConfig(ks=(1, 2), best_of=2), metric)
    assert summaries["run"]["best_of"]["tests"] == {
        "written": 6, "valid": 1, "validity": pytest.approx(1 / 6), "tasks_with_valid_test": 1, "tasks": 2,
        "invalid": {"chance_source": 1, "no_call": 1, "reference_failed": 2, "vacuous": 1}}
