"""Finding tasks shared by training and evaluation data."""

from __future__ import annotations

import logging

import pytest

from datasets_build import ContaminationConfig, ContaminationError, SourceConfig, check_contamination, find_overlaps
from datasets_build.sources import load_source



@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def _row(task_id: str, problem: str, solution: str, entry_point: str = "f", source: str = "s") -> dict:
    return {"task_id": task_id, "source": source, "problem": problem, "reference_solution": solution, "entry_point": entry_point}


def test_overlap_is_found_through_normalised_text_and_code_with_reasons():
    evaluation = [
        _row("E/0", "Return the SUM of a, b.", "def f(a, b):\n    return a + b\n"),
        _row("E/1", "Reverse a string.", 'def g(s):\n    """Doc."""\n    # comment\n    return s[::-1]\n', "g"),
        _row("E/2", "Something else entirely.", "def h():\n    return 1\n", "h"),
    ]
    train = [
        _row("T/0", "return the sum of a b", "def f(a,b): return a+b"),
        _row("T/1", "Flip the characters.", "def g(s):\n    return s[::-1]", "g"),
        _row("T/2", "Unrelated.", "def h():\n    return 2\n", "h"),
    ]
    overlaps = {(o.train_task, o.eval_task): o.reasons for o in find_overlaps(train, evaluation)}
    assert overlaps == {
        ("s:T/0", "s:E/0"): ("same problem text", "same reference solution"),
        ("s:T/1", "s:E/1"): ("same reference solution",),
    }
    with_names = find_overlaps(train, evaluation, ContaminationConfig(match_problem=False, match_solution=False, match_entry_point=True))
    assert {(o.train_task, o.eval_task) for o in with_names} == {("s:T/0", "s:E/0"), ("s:T/1", "s:E/1"), ("s:T/2", "s:E/2")}


def test_the_same_task_on_both_sides_always_overlaps():
    row = _row("E/0", "a", "def f(): pass")
    (overlap,) = find_overlaps([row], [row], ContaminationConfig(match_problem=False, match_solution=False))
    assert overlap.reasons == ("same task",)


def test_check_contamination_raises_listing_tasks_unless_allowed(caplog: pytest.LogCaptureFixture):
    train = [_row("T/9", "Count vowels.", "def f(s): return 0")]
    evaluation = [_row("E/4", "count vowels", "def f(s): return 1")]
    with pytest.raises(ContaminationError) as excinfo:
        check_contamination(train, evaluation)
    assert "s:T/9 ~ s:E/4 (same problem text)" in str(excinfo.value)
    assert excinfo.value.overlaps[0].eval_task == "s:E/4"
    with caplog.at_level(logging.WARNING, logger="datasets_build"):
        assert len(check_contamination(train, evaluation, allow=True)) == 1
    assert "allowed train/eval overlap" in caplog.text
    assert check_contamination(train, [_row("E/5", "Other.", "def f(s): return 2")]) == []


def test_mbpp_official_train_and_test_share_three_tasks():
    rows, origin = load_source("mbpp", SourceConfig(use_hub=False))  # the release packaged with datasets_build
    assert origin == "package:datasets_build/data/mbpp.jsonl.gz"
    train = [r for r in rows if r["split"] in ("train", "validation")]
    test = [r for r in rows if r["split"] == "test"]
    pairs = {(o.train_task, o.eval_task) for o in find_overlaps(train, test)}
    assert pairs == {("mbpp:MBPP/602", "mbpp:MBPP/217"), ("mbpp:MBPP/704", "mbpp:MBPP/248"), ("mbpp:MBPP/872", "mbpp:MBPP/216")}
