"""Paired statistics for two evaluations of the same tasks: the difference in pass@1, its 95 % interval,
and an exact McNemar p-value.

Why paired: two evaluations of one model family on one benchmark share their tasks, and most tasks are
solved by both or by neither; only the *discordant* tasks (solved by one evaluation only) carry
information about which is better. Treating the two pass rates as independent samples throws that away
and gives intervals about twice as wide (issue 22: on 100 tasks a 4-point gain is "within noise" by the
unpaired reckoning; the paired one decides with the same data).

- **McNemar's exact test** (McNemar 1947; exact form: a two-sided binomial test of ``b`` successes in
  ``b + c`` trials with p = 1/2, where ``b`` and ``c`` are the two kinds of discordant tasks). Under
  the null hypothesis "both evaluations solve a task with the same probability", each discordant task
  is equally likely to go either way. The two-sided p-value doubles the smaller tail, capped at 1
  (the binomial(n, 1/2) is symmetric, so this equals "the probability of a split at least as
  uneven as the one seen").
- **Interval of the paired difference**: Newcombe's hybrid score interval for paired proportions
  (Newcombe 1998, "Improved confidence intervals for the difference between binomial proportions
  based on paired data", Statistics in Medicine 17, method 10): Wilson score intervals of both
  pass rates, combined with the (continuity-corrected) phi correlation of the 2x2 table. Chosen over the textbook Wald
  interval ``d +- 1.96 * se`` because Wald collapses to the single point 0 when no task is discordant
  (and undercovers when few are), which is exactly the regime of small models on hard benchmarks.

Written here with the standard library only (no SciPy in the project's dependencies): exact integer
arithmetic for the binomial tail, so the p-value is exact for any number of tasks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Any

# Two-sided 95 %: the 0.975 quantile of the standard normal.
Z_95 = 1.959963984540054


class PairingError(ValueError):
    """Two evaluations that cannot be paired task by task (different tasks, several samples per task)."""


def mcnemar_exact_p(first_only: int, second_only: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts: ``b`` tasks solved by the first
    evaluation only, ``c`` by the second only. 1.0 when there is no discordant task."""
    if first_only < 0 or second_only < 0:
        raise ValueError(f"discordant counts must be >= 0, got {first_only}, {second_only}")
    n = first_only + second_only
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(first_only, second_only) + 1))
    return float(min(Fraction(1), Fraction(2 * tail, 2 ** n)))


def wilson_interval(successes: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson's score interval of a proportion (Wilson 1927); (0, 1) for n = 0."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe_paired_interval(both: int, first_only: int, second_only: int, neither: int,
                             z: float = Z_95) -> tuple[float, float]:
    """Interval of ``p_second - p_first`` for paired binary outcomes (Newcombe 1998, method 10).

    The 2x2 table: ``both`` tasks solved by both evaluations, ``first_only`` / ``second_only`` by one,
    ``neither`` by none."""
    counts = (both, first_only, second_only, neither)
    if any(c < 0 for c in counts):
        raise ValueError(f"counts must be >= 0, got {counts}")
    n = sum(counts)
    if n == 0:
        return -1.0, 1.0
    # Newcombe's table is written for theta = p1 - p2; here "1" is the second evaluation (the later point),
    # so theta is the gain. a = both, b = second only (solved by 1 not 2), c = first only, d = neither.
    a, b, c, d = both, second_only, first_only, neither
    p1, p2 = (a + b) / n, (a + c) / n
    l1, u1 = wilson_interval(a + b, n, z)
    l2, u2 = wilson_interval(a + c, n, z)
    # phi, the correlation of the two verdicts, with Newcombe's continuity correction of a positive
    # correlation (numerator max(ad - bc - n/2, 0)): without it a table with no discordant task and
    # phi = 1 gives the degenerate interval [0, 0].
    denominator = (a + b) * (c + d) * (a + c) * (b + d)
    numerator = a * d - b * c
    if numerator > 0:
        numerator = max(numerator - n / 2, 0.0)
    phi = numerator / math.sqrt(denominator) if denominator else 0.0
    theta = p1 - p2
    lower = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    upper = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    return max(-1.0, theta - math.sqrt(max(0.0, lower))), min(1.0, theta + math.sqrt(max(0.0, upper)))


@dataclass(frozen=True)
class PairedComparison:
    """One paired comparison: ``second`` against ``first`` on the same tasks, for one metric."""

    first: str
    second: str
    metric: str
    num_tasks: int
    both: int
    first_only: int
    second_only: int
    neither: int
    pass_first: float
    pass_second: float
    difference: float  # pass_second - pass_first
    ci_low: float
    ci_high: float
    mcnemar_p: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_verdicts(first: Mapping[str, bool], second: Mapping[str, bool], *, first_label: str = "first",
                     second_label: str = "second", metric: str = "pass@1") -> PairedComparison:
    """Pair two evaluations task by task. Both must hold a verdict for exactly the same tasks: a task
    in one only is an error naming it (pairing it with nothing, or dropping it, would change the
    numbers without a trace)."""
    only_first = sorted(set(first) - set(second))
    only_second = sorted(set(second) - set(first))
    if only_first or only_second:
        parts = []
        if only_first:
            parts.append(f"{len(only_first)} task(s) only in {first_label!r} (e.g. {only_first[0]})")
        if only_second:
            parts.append(f"{len(only_second)} task(s) only in {second_label!r} (e.g. {only_second[0]})")
        raise PairingError(f"cannot pair {first_label!r} with {second_label!r} on {metric}: {'; '.join(parts)}")
    if not first:
        raise PairingError(f"cannot pair {first_label!r} with {second_label!r}: no tasks")
    table = {(True, True): 0, (True, False): 0, (False, True): 0, (False, False): 0}
    for task, verdict in first.items():
        table[(bool(verdict), bool(second[task]))] += 1
    both, first_only = table[(True, True)], table[(True, False)]
    second_only, neither = table[(False, True)], table[(False, False)]
    n = len(first)
    low, high = newcombe_paired_interval(both, first_only, second_only, neither)
    return PairedComparison(
        first=first_label, second=second_label, metric=metric, num_tasks=n, both=both, first_only=first_only,
        second_only=second_only, neither=neither, pass_first=(both + first_only) / n,
        pass_second=(both + second_only) / n, difference=(second_only - first_only) / n, ci_low=low, ci_high=high,
        mcnemar_p=mcnemar_exact_p(first_only, second_only))


def run_verdicts(summary: Mapping[str, Any], metric: str, label: str) -> dict[str, bool]:
    """Per-task verdicts of one run of an evaluate.py results.json: ``base`` = passed (EvalPlus's base
    inputs on HumanEval+/MBPP+, the benchmark's tests elsewhere), ``plus`` = passed base and plus inputs.
    Needs one sample per task (greedy pass@1): McNemar pairs one verdict per task."""
    tasks = summary.get("tasks")
    if not isinstance(tasks, Mapping) or not tasks:
        raise PairingError(f"{label!r} has no per-task verdicts (results.json without 'tasks')")
    key = {"base": "num_correct", "plus": "num_correct_plus"}[metric]
    verdicts = {}
    for task, record in tasks.items():
        if record.get("num_samples") != 1:
            raise PairingError(f"{label!r} has {record.get('num_samples')} samples of {task}: paired statistics "
                               "need one sample per task (greedy pass@1)")
        if key not in record:
            raise PairingError(f"{label!r} has no {key!r} for {task} (evaluated before per-task plus verdicts "
                               "were recorded: evaluate it again)")
        verdicts[task] = record[key] >= 1
    return verdicts


def has_plus_verdicts(summary: Mapping[str, Any]) -> bool:
    """Whether a run holds per-task verdicts on EvalPlus's plus inputs (results written since they are recorded)."""
    tasks = summary.get("tasks") or {}
    return "evalplus" in summary and bool(tasks) and all("num_correct_plus" in t for t in tasks.values())


def paired_statistics(runs: Mapping[str, Mapping[str, Any]], order: Sequence[str]) -> list[dict[str, Any]]:
    """Every pair of runs (earlier, later in ``order``) on every metric the runs share: ``base``
    always, ``plus`` when both hold per-task plus verdicts (``has_plus_verdicts``). Raises PairingError as
    ``compare_verdicts``."""
    out = []
    for i, first in enumerate(order):
        for second in order[i + 1:]:
            metrics = ["base"] + (["plus"] if has_plus_verdicts(runs[first]) and has_plus_verdicts(runs[second]) else [])
            for metric in metrics:
                out.append(compare_verdicts(run_verdicts(runs[first], metric, first),
                                            run_verdicts(runs[second], metric, second),
                                            first_label=first, second_label=second, metric=metric).to_dict())
    return out


def format_row(p: Mapping[str, Any]) -> list[str]:
    """One paired comparison as a report table row (percentages of tasks, p to three significant digits)."""
    return [f"{p['first']} -> {p['second']}", p["metric"], str(p["num_tasks"]),
            f"{100 * p['pass_first']:.1f}%", f"{100 * p['pass_second']:.1f}%",
            f"{100 * p['difference']:+.1f}", f"[{100 * p['ci_low']:+.1f}, {100 * p['ci_high']:+.1f}]",
            f"{p['first_only']} / {p['second_only']}", f"{p['mcnemar_p']:.3g}"]


PAIRED_HEADER = ["comparison", "inputs", "tasks", "pass@1 before", "pass@1 after", "difference (points)",
                 "95% interval (Newcombe)", "discordant (before only / after only)", "McNemar exact p"]
