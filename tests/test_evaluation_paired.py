"""Paired statistics of evaluate.py --compare (pipeline/evaluation/paired.py): known answers worked out by
hand or published, a brute-force enumeration of McNemar's null distribution, and the refusal of runs
that cannot be paired."""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any

import pytest

from pipeline.evaluation.compare import CompareError, merge_results
from pipeline.evaluation.paired import (
    PairingError,
    compare_verdicts,
    mcnemar_exact_p,
    newcombe_paired_interval,
    paired_statistics,
    wilson_interval,
)


def test_mcnemar_known_answers() -> None:
    # b = 2, c = 12: 2 * (C(14,0) + C(14,1) + C(14,2)) / 2**14 = 2 * 106 / 16384
    assert mcnemar_exact_p(2, 12) == float(Fraction(212, 16384))
    assert mcnemar_exact_p(12, 2) == mcnemar_exact_p(2, 12)
    assert mcnemar_exact_p(0, 5) == 0.0625  # 2 * 1/32
    assert mcnemar_exact_p(0, 6) == 0.03125  # 2 * 1/64: the smallest n where 0-vs-all is significant
    assert mcnemar_exact_p(3, 3) == 1.0  # doubling the tail would exceed 1: capped
    assert mcnemar_exact_p(0, 0) == 1.0  # no discordant task: no evidence at all
    assert mcnemar_exact_p(1, 0) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact_p(-1, 2)


@pytest.mark.parametrize("n", range(0, 13))
def test_mcnemar_equals_brute_force_enumeration(n: int) -> None:
    """Under the null every discordant task goes either way with probability 1/2: enumerate all 2**n
    ways and count those at least as uneven as the observed split."""
    outcomes = list(itertools.product((0, 1), repeat=n))
    for b in range(n + 1):
        c = n - b
        extreme = sum(abs(sum(o) - (n - sum(o))) >= abs(b - c) for o in outcomes)
        assert mcnemar_exact_p(b, c) == float(Fraction(extreme, len(outcomes))), (b, c)


def test_mcnemar_is_exact_for_large_tables() -> None:
    # 542 discordant tasks split evenly: p = 1 exactly; one-sided all: 2 / 2**542 (a float, not 0 from overflow)
    assert mcnemar_exact_p(271, 271) == 1.0
    assert mcnemar_exact_p(0, 542) == float(Fraction(2, 2 ** 542))
    assert 0 < mcnemar_exact_p(0, 542) < 1e-150


def test_wilson_known_answers() -> None:
    # 0 of 20: upper bound z^2 / (n + z^2) = 3.8415 / 23.8415
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(0.161125, abs=1e-6)
    low, high = wilson_interval(10, 20)
    assert (low + high) / 2 == pytest.approx(0.5) and high == pytest.approx(0.7007, abs=1e-4)


def test_newcombe_published_examples() -> None:
    """Newcombe (1998), Table II, method 10: (a) a=36, b=12, c=2, d=0 gives 0.0569 to 0.3404;
    (d) a=b=c=0, d=20 gives -0.1611 to 0.1611. Newcombe's theta = p1 - p2 is our 'after - before',
    so his b (1 only) is our second_only."""
    low, high = newcombe_paired_interval(both=36, first_only=2, second_only=12, neither=0)
    assert low == pytest.approx(0.0569, abs=5e-5) and high == pytest.approx(0.3404, abs=5e-5)
    low, high = newcombe_paired_interval(both=0, first_only=0, second_only=0, neither=20)
    assert low == pytest.approx(-0.1611, abs=5e-5) and high == pytest.approx(0.1611, abs=5e-5)


def test_newcombe_properties() -> None:
    for table in itertools.product(range(6), repeat=4):
        if sum(table) == 0:
            continue
        both, first_only, second_only, neither = table
        low, high = newcombe_paired_interval(*table)
        difference = (second_only - first_only) / sum(table)
        assert -1 <= low <= difference <= high <= 1, table
        assert low < high, table  # never a single point, even with no discordant task
        # swapping the evaluations mirrors the interval
        mirrored = newcombe_paired_interval(both, second_only, first_only, neither)
        assert mirrored == pytest.approx((-high, -low), abs=1e-12), table


def test_compare_verdicts_counts_the_table() -> None:
    before = {"t1": True, "t2": True, "t3": False, "t4": False, "t5": False}
    after = {"t1": True, "t2": False, "t3": True, "t4": True, "t5": False}
    result = compare_verdicts(before, after, first_label="boot", second_label="rl")
    assert (result.both, result.first_only, result.second_only, result.neither) == (1, 1, 2, 1)
    assert result.pass_first == 0.4 and result.pass_second == 0.6 and result.difference == pytest.approx(0.2)
    assert result.mcnemar_p == 1.0  # 2 * (1 + 3) / 8 capped
    assert result.ci_low < 0.2 < result.ci_high


def test_tasks_in_one_run_only_are_an_error_that_names_them() -> None:
    with pytest.raises(PairingError, match=r"1 task\(s\) only in 'rl' \(e\.g\. t9\)"):
        compare_verdicts({"t1": True}, {"t1": True, "t9": False}, first_label="boot", second_label="rl")
    with pytest.raises(PairingError, match=r"only in 'boot' \(e\.g\. t2\).*only in 'rl' \(e\.g\. t3\)"):
        compare_verdicts({"t1": True, "t2": True}, {"t1": True, "t3": False}, first_label="boot", second_label="rl")
    with pytest.raises(PairingError, match="no tasks"):
        compare_verdicts({}, {})


def run(verdicts: dict[str, tuple[bool, bool]] | dict[str, bool], plus: bool = False, samples: int = 1
        ) -> dict[str, Any]:
    """A results.json run summary with per-task verdicts (base[, plus])."""
    tasks = {}
    for task, verdict in verdicts.items():
        base, plus_ok = verdict if isinstance(verdict, tuple) else (verdict, verdict)
        tasks[task] = {"num_samples": samples, "num_correct": int(base) * samples,
                       **({"num_correct_plus": int(plus_ok) * samples} if plus else {})}
    summary: dict[str, Any] = {"num_tasks": len(tasks), "num_samples": samples * len(tasks),
                               "samples_per_task": samples, "pass@1": 0.0, "tasks": tasks}
    if plus:
        summary["evalplus"] = {}
    return summary


def results(summary: dict[str, Any]) -> dict[str, Any]:
    return {"benchmark": "mbpp+", "mode": "staged", "num_tasks": summary["num_tasks"], "greedy": True,
            "config": {}, "runs": {"adapter": summary}}


def test_paired_statistics_on_base_and_plus_inputs() -> None:
    before = run({"a": (True, True), "b": (True, False), "c": (False, False)}, plus=True)
    after = run({"a": (True, True), "b": (True, True), "c": (True, False)}, plus=True)
    stats = paired_statistics({"boot": before, "rl": after}, ["boot", "rl"])
    by_metric = {s["metric"]: s for s in stats}
    assert set(by_metric) == {"base", "plus"}
    assert (by_metric["base"]["first_only"], by_metric["base"]["second_only"]) == (0, 1)
    assert (by_metric["plus"]["both"], by_metric["plus"]["second_only"]) == (1, 1)
    assert by_metric["plus"]["pass_first"] == pytest.approx(1 / 3) and by_metric["plus"]["pass_second"] == pytest.approx(2 / 3)


def test_three_points_give_every_pair_in_order() -> None:
    points = {name: run({"a": ok, "b": False}) for name, ok in (("base", False), ("boot", True), ("rl", True))}
    stats = paired_statistics(points, ["base", "boot", "rl"])
    assert [(s["first"], s["second"]) for s in stats] == [("base", "boot"), ("base", "rl"), ("boot", "rl")]


def test_merge_results_pairs_runs_and_refuses_different_tasks() -> None:
    merged = merge_results([results(run({"a": False, "b": True})), results(run({"a": True, "b": True}))],
                           ["boot", "rl"], ["x", "y"])
    (stat,) = merged["paired"]
    assert (stat["first"], stat["second"], stat["second_only"], stat["difference"]) == ("boot", "rl", 1, 0.5)
    # same number of tasks, different tasks: refused, not silently paired on the intersection
    with pytest.raises(CompareError, match=r"only in 'boot' \(e\.g\. a\)"):
        merge_results([results(run({"a": False, "b": True})), results(run({"c": True, "b": True}))],
                      ["boot", "rl"], ["x", "y"])


def test_several_samples_per_task_get_no_paired_statistics_and_say_why() -> None:
    merged = merge_results([results(run({"a": True}, samples=4)), results(run({"a": False}, samples=4))],
                           ["boot", "rl"], ["x", "y"])
    assert "paired" not in merged and "one sample per task" in merged["paired_skipped"]


def test_plus_verdicts_missing_from_an_old_results_file_are_skipped_and_said() -> None:
    """Results written before per-task plus verdicts were recorded: base inputs are paired, plus inputs are not,
    and the merged results say which run lacks them; asked for directly, the verdicts are an error."""
    from pipeline.evaluation.paired import run_verdicts

    old = run({"a": True, "b": False}, plus=True)
    for task in old["tasks"].values():
        del task["num_correct_plus"]
    merged = merge_results([results(old), results(run({"a": True, "b": True}, plus=True))], ["boot", "rl"], ["x", "y"])
    assert [(p["metric"], p["second_only"]) for p in merged["paired"]] == [("base", 1)]
    assert "boot predate per-task plus verdicts" in merged["paired_skipped"]
    with pytest.raises(PairingError, match="num_correct_plus"):
        run_verdicts(old, "plus", "boot")
