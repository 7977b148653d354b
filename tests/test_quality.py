"""Training-time quality metrics (rewards/quality.py) on hand-made chains whose values are known."""

from __future__ import annotations

import pytest

from rewards.batch import parse_batch
from rewards.quality import code_identifiers, coherence, diversity, pseudocode_words, quality_metrics

RUNNING_MAX = """\
def running_max(numbers):
    best = numbers[0]
    maxima = []
    for item in numbers:
        best = max(best, item)
        maxima.append(best)
    return maxima
"""
RUNNING_MAX_PSEUDOCODE = """\
1. set best to the first element of numbers
2. for each item in numbers: best = max(best, item); append best to maxima
3. return maxima
"""
SPAN = "def span(start, end):\n    return end - start\n"
SPAN_PSEUDOCODE = "return end minus start"


def test_diversity_counts_tests_equal_up_to_formatting_comments_and_messages_once():
    tests = ["assert f(1) == 2", "assert f( 1 )==2  # again", "assert f(1) == 2, 'message'", "assert f(2) == 3"]
    assert diversity(tests) == pytest.approx(2 / 4)
    assert diversity(["assert f(1) == 2"]) == 1.0
    assert diversity([]) is None


def test_code_identifiers_keep_own_names_and_drop_builtins_short_names_and_stopwords():
    assert code_identifiers(RUNNING_MAX) == {"running_max", "numbers", "best", "maxima", "item", "append"}
    assert code_identifiers(SPAN) == {"span", "start"}  # `end` is a stopword
    assert code_identifiers("def f(x):\n    return len(x)\n") == set()  # f, x too short; len builtin
    assert code_identifiers("def broken(:\n") is None


def test_pseudocode_words_are_lowercased_and_filtered():
    assert pseudocode_words("Return the Maxima of NUMBERS, step by step") == {"maxima", "numbers"}


def test_coherence_is_the_share_of_code_identifiers_named_in_the_pseudocode():
    # running_max is never named; numbers, best, item, append and maxima are.
    assert coherence(RUNNING_MAX_PSEUDOCODE, RUNNING_MAX) == pytest.approx(5 / 6)
    assert coherence(SPAN_PSEUDOCODE, SPAN) == pytest.approx(1 / 2)
    assert coherence("", RUNNING_MAX) == 0.0
    assert coherence(RUNNING_MAX_PSEUDOCODE, "def f(x):\n    return x\n") is None  # nothing to match
    assert coherence(RUNNING_MAX_PSEUDOCODE, "def (") is None  # does not parse


def _stages(pseudocode: str) -> list[str]:
    return ["informal", "structured", pseudocode, "constraints", "code"]


def _batch() -> dict[str, list]:
    """Three episodes: two of task t1 (a GRPO group), one of t2."""
    rows = [
        {"task_id": "t1", "stage_texts": _stages(RUNNING_MAX_PSEUDOCODE), "final_code": RUNNING_MAX,
         "tests_by_stage": [["assert f(1) == 2", "assert f(2) == 3"], [], ["assert f(0) == 1"]]},
        {"task_id": "t1", "stage_texts": _stages("whatever"), "final_code": "def (",
         "tests_by_stage": [["assert f(1)==2  # same test", "assert f(5) == 6"], [], ["assert f(0) == 1, 'msg'"]]},
        {"task_id": "t2", "stage_texts": _stages(SPAN_PSEUDOCODE), "final_code": SPAN,
         "tests_by_stage": [["assert g([]) == []"]]},
    ]
    columns: dict[str, list] = {key: [row[key] for row in rows] for key in rows[0]}
    n = len(rows)
    columns.update(role=["discriminator", "generator", "discriminator"], train_stage=[0] * n, disc_rejections=[{}] * n,
                   entry_point=["f", "f", "g"], reference_solution=["def f(x):\n    return x + 1\n"] * n,
                   tests=[["assert f(1) == 2"]] * n, test_setup=[""] * n)
    return columns


EXPECTED = {
    # t1 stage 1: 4 tests, 3 distinct; t2 stage 1: 1 of 1
    "quality/diversity/stage1": (3 / 4 + 1.0) / 2,
    # t1 stage 3: the same assert twice (one with a message); t2 wrote nothing at stage 3
    "quality/diversity/stage3": 1 / 2,
    # every stage pooled: t1 6 tests, 4 distinct; t2 1 of 1
    "quality/diversity": (4 / 6 + 1.0) / 2,
    # 5/6 and 1/2; the unparsable code of episode 2 is left out
    "quality/coherence": (5 / 6 + 1 / 2) / 2,
}


def test_quality_metrics_from_reward_kwargs():
    metrics = quality_metrics(_batch())
    assert metrics.keys() == EXPECTED.keys()  # stages 2, 4, 5 had no tests: not logged as a made-up value
    for key, value in EXPECTED.items():
        assert metrics[key] == pytest.approx(value), key


def test_quality_metrics_from_parsed_samples_match():
    samples = parse_batch(_batch(), 5)
    assert quality_metrics(samples) == pytest.approx(quality_metrics(_batch()))
    assert quality_metrics([]) == {}
