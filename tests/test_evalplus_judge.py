"""EvalPlus judging (pipeline/evaluation/evalplus_judge.py): the comparison rules with worked
answers, and whole tasks of the real release files in the real sandbox."""

from __future__ import annotations

import json

import pytest

from pipeline.evaluation.evalplus_judge import (
    PlusTask, _SetState, evalplus_sandbox_config, judge_programs, load_oracles, mbpp_inputs, output_passes,
    plus_task,
)
from sandbox import Sandbox
from sandbox.types import CallOutcome, Fingerprint


def task(entry_point: str = "f", dataset: str = "humaneval", atol: float = 0.0) -> PlusTask:
    return PlusTask("T/0", dataset, entry_point, "", "", (), (), atol)  # type: ignore[arg-type]


def ok(value) -> CallOutcome:
    return CallOutcome("ok", value)


def passes(t: PlusTask, out, exp, inp=(), state=None) -> bool:
    return output_passes(t, inp, ok(out), exp, state or _SetState(t.atol))


def test_exact_values_pass_and_wrong_ones_fail():
    assert passes(task(), [1, 2], [1, 2]) and passes(task(), 1.0, 1)  # == as Python has it
    assert not passes(task(), [1, 2], (1, 2)) and not passes(task(), "1", 1)


def test_floats_get_a_tolerance_of_1e6_that_then_stays_for_the_set():
    assert passes(task(), 0.1 + 1e-7, 0.1)
    assert not passes(task(), 0.1 + 1e-5, 0.1)
    state = _SetState(0.0)
    assert passes(task(), 2.0, 2.0, state=state) and state.atol == 1e-6
    assert passes(task(), [1, 2 + 1e-7], [1, 2], state=state)  # ints now compared with the tolerance too
    assert not passes(task(), [1, 2 + 1e-7], [1, 2])  # a fresh set: exact


def test_a_tolerance_needs_the_same_type_and_length():
    assert passes(task(atol=1e-4), [1.00001, 2.0], [1.0, 2.0])
    assert not passes(task(atol=1e-4), (1.00001, 2.0), [1.0, 2.0])
    assert not passes(task(atol=1e-4), [1.0], [1.0, 2.0])
    assert not passes(task(atol=1e-4), 1, 1.00001)
    assert not passes(task(atol=1e-4), "x", 1.0)  # numpy refuses: a fail, not a crash


def test_special_oracles():
    xs = (-6.0, 11.0, -6.0, 1.0)  # (x - 1)(x - 2)(x - 3)
    assert passes(task("find_zero", atol=1e-4), 2.0, 1.0, inp=(list(xs),))  # any root
    assert not passes(task("find_zero", atol=1e-4), 2.5, 1.0, inp=(list(xs),))
    assert passes(task("similar_elements", "mbpp"), (3, 4), (4, 3))
    assert not passes(task("similar_elements", "mbpp"), (3, 5), (4, 3))
    assert passes(task("check_str", "mbpp"), "a match", True) and not passes(task("check_str", "mbpp"), None, True)
    assert passes(task("check_str", "mbpp"), False, False) and not passes(task("check_str", "mbpp"), True, False)
    assert output_passes(task("check_str", "mbpp"), (), CallOutcome("opaque"), True, _SetState(0))
    assert not output_passes(task("f"), (), CallOutcome("opaque"), True, _SetState(0))
    assert passes(task("are_equivalent", "mbpp"), False, True)
    assert passes(task("sum_div", "mbpp"), 0, 7) and not passes(task("sum_div", "mbpp"), 1, 7)
    assert passes(task("digit_distance_nums", "mbpp"), 3, 9, inp=(123, 21))  # 123 vs 021: 1 + 0 + 2
    assert passes(task("surface_Area", "mbpp", atol=1e-4), 35, 1, inp=(3, 4))  # 9 + 6 * sqrt(18.25) = 34.6


def test_fingerprints_compare_by_equality():
    from sandbox.fingerprint import fingerprint

    assert passes(task(), Fingerprint(fingerprint("ab" * 9)), "ab" * 9)
    assert not passes(task(), Fingerprint(fingerprint("ab" * 9)), "ab" * 8)
    assert not passes(task(), Fingerprint(None), "x")


def test_mbpp_inputs_are_converted_like_evalplus():
    assert mbpp_inputs("Mbpp/2", [[[3, 4], [5, 6]]]) == [[(3, 4), (5, 6)]]
    assert mbpp_inputs("Mbpp/124", [[3, "1+2j"]]) == [(3.0, 1 + 2j)]
    assert mbpp_inputs("Mbpp/115", [[[[1], [], {}]]]) == [[[{1}, {}, {}]]]
    assert mbpp_inputs("Mbpp/580", [[[1, [2, 3]], 4]]) == [((1, (2, 3)), 4)]
    assert mbpp_inputs("Mbpp/3", [[5]]) == [[5]]


HIDDEN = """
def f(x):
    return x * 2
"""


def test_a_lying_eq_fails_and_a_right_answer_passes_in_the_sandbox(tmp_path):
    row = {"source": "humaneval+", "task_id": "T/1", "entry_point": "f", "prompt": "", "reference_solution": HIDDEN,
           "base_inputs": json.dumps([[1], [2]]), "plus_inputs": json.dumps([[3], [10 ** 6]]), "atol": 0.0}
    t = plus_task(row)
    liar = "class A:\n    def __eq__(self, o):\n        return True\ndef f(x):\n    return A()\n"
    half = "def f(x):\n    return x * 2 if x < 3 else x\n"
    with Sandbox(evalplus_sandbox_config()) as sb:
        oracles, origin = load_oracles([t], sb, tmp_path)
        assert origin == "computed" and oracles["T/1"].plus.outputs == [6, 2 * 10 ** 6]
        verdicts = judge_programs({"T/1": t}, oracles, [("T/1", HIDDEN), ("T/1", liar), ("T/1", half),
                                                        ("T/1", "def f(x):\n    while True: pass\n")], sb)
        assert load_oracles([t], sb, tmp_path)[1].startswith("cache:")
    assert [(v.base, v.plus) for v in verdicts] == [("pass", "pass"), ("fail", "fail"), ("pass", "fail"),
                                                    ("timeout", "timeout")]
    assert [v.passed_plus for v in verdicts] == [True, False, False, False]


def test_canonical_solutions_pass_and_a_known_subtle_bug_fails_only_plus(tmp_path):
    """HumanEval/32 (find_zero) included: EvalPlus 0.3.1 fails even the canonical solution there."""
    from datasets_build.evalplus import load_plus_rows
    from datasets_build.evalplus_release import packaged_file

    rows = {r["task_id"]: r for r in load_plus_rows("humaneval+", packaged_file("humaneval+"), use_hub=False).rows}
    tasks = {tid: plus_task(rows[tid]) for tid in ("HumanEval/0", "HumanEval/32", "HumanEval/53", "HumanEval/2")}
    # HumanEval/53 add(x, y): right on HumanEval's small inputs, wrong on large ones.
    subtle = "def add(x: int, y: int):\n    return (x + y) if abs(x) < 1000 and abs(y) < 1000 else 0\n"
    with Sandbox(evalplus_sandbox_config()) as sb:
        oracles, _ = load_oracles(list(tasks.values()), sb, tmp_path)
        programs = [(tid, t.reference) for tid, t in tasks.items()] + [("HumanEval/53", subtle)]
        verdicts = judge_programs(tasks, oracles, programs, sb)
    assert [(v.base, v.plus) for v in verdicts[:4]] == [("pass", "pass")] * 4
    assert (verdicts[4].base, verdicts[4].plus) == ("pass", "fail")
