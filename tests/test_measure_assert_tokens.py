"""scripts/measure_assert_tokens.py (the measurement behind run 3's discriminator budgets), with a word-count
tokenizer so that every number is worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import load_module

mt = load_module("measure_assert_tokens", Path(__file__).resolve().parents[1] / "scripts" / "measure_assert_tokens.py")


def words(text: str) -> int:
    return len(text.split())


ROWS = [  # "assert f(x) == y" is 4 words; the fence adds 2 ("```python" and "```")
    {"tests": ["assert f(1) == 1\n", "assert f(2) == 2 and True\n", "assert f(3) == 3\n"]},  # 4, 6, 4
    {"tests": ["assert g([1, 2]) == 3\n"]},  # 5
    {"tests": []},  # no asserts: left out
]


def test_distributions_have_hand_worked_values():
    stats = mt.measure(ROWS, words)
    assert stats["assert"] == {"n": 4, "median": 4, "p90": 6, "max": 6}  # 4 4 5 6: nearest rank
    assert stats["problem_longest_assert"] == {"n": 2, "median": 5, "p90": 6, "max": 6}
    assert stats["fenced_1_asserts"] == {"n": 2, "median": 6, "p90": 7, "max": 7}  # 4+2, 5+2
    assert stats["fenced_3_asserts"] == {"n": 1, "median": 16, "p90": 16, "max": 16}  # 4+6+4+2


def test_budget_shares_and_quantiles():
    shares = mt.fits(ROWS, words, [7, 8, 16])
    assert shares[7] == {"longest_assert": 0.5, "three_asserts": 0.5}  # fenced longest: 8 and 7; three: 16 and 7
    assert shares[8] == {"longest_assert": 1.0, "three_asserts": 0.5}
    assert shares[16] == {"longest_assert": 1.0, "three_asserts": 1.0}
    assert [mt.quantile(list(range(1, 11)), q) for q in (0.5, 0.9, 1.0)] == [5, 9, 10]
    with pytest.raises(ValueError):
        mt.quantile([], 0.5)
