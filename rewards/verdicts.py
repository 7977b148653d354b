"""From a batch's raw runs to what its rewards read: each generated test's status, the final
code's verdict per test, and which mutants each valid test kills.

Kept apart from ``rewards.sandbox_calls`` because nothing here executes: it only reads runs, so the
validity checks (in the order rewards/README.md lists them) and the rule that a pair's runs must
agree live in one place, and a change to either cannot change what the sandbox is asked to run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from prompts.testcases import dedup_key
from rewards.engine import Verdict
from rewards.sandbox_calls import BatchRuns, Task

# Why a generated test is invalid, by its verdict on the reference solution.
_REFERENCE_REASONS = {"failed": "reference_failed", "error": "reference_error", "timeout": "reference_timeout"}
# A pair whose runs disagree: the test decides by chance, not by the program.
_DISAGREE = "disagree"


@dataclass(frozen=True)
class GeneratedTest:
    """One test as the discriminator wrote it, at one stage.

    ``status`` is ``valid`` (the reference passes it in every run, no flag raised, it calls the
    function and fails without it, it repeats), ``invalid`` (``reason`` says why) or ``unknown``
    (the sandbox failed: counted in metrics, in neither fraction).
    """

    stage: int
    test: str
    status: str
    reason: str | None = None


def _combine(runs: Sequence[Verdict]) -> Verdict:
    """One verdict from a pair's runs: the sandbox failed in one (``infra_error``), all passed, all
    did not (the first run's status), or they disagree (``_DISAGREE``). Flags of every run."""
    flags = tuple(sorted({f for v in runs for f in v.flags}))
    duration = max((v.duration_s for v in runs), default=0.0)
    statuses = [v.status for v in runs]
    if "infra_error" in statuses:
        status = "infra_error"
    elif all(s == "passed" for s in statuses):
        status = "passed"
    elif any(s == "passed" for s in statuses):
        status = _DISAGREE
    else:
        status = statuses[0]
    return Verdict(status, flags, duration)


def _judged(batch: BatchRuns, task: Task, test: str, runs: Sequence[Verdict]) -> Verdict:
    """A (candidate or mutant, test) pair's verdict from its runs. A timeout where the reference
    took more than ``limit / time_factor`` on the test is left unjudged (``infra_error``): it
    says more about the machine's load than about the program."""
    verdict = _combine(runs)
    if verdict.status == "timeout":
        if task.reference_time(test) * batch.config.time_factor > batch.limit(task, test):
            return Verdict("infra_error", verdict.flags, verdict.duration_s)
    return verdict


def conclude(batch: BatchRuns) -> tuple[list[list[GeneratedTest]], list[dict[str, Verdict]]]:
    """Statuses of every generated test, combined verdicts, mutant kills.

    Returns per sample its ``GeneratedTest`` records (every test it wrote, in stage order) and its
    final code's verdicts on the problem's tests and its valid generated tests; marks each task's
    ``flaky`` tests and fills its ``kills`` and ``killable`` in place.
    """
    for i, sample in enumerate(batch.samples):
        task = batch.task_of(i)
        for test, runs in batch.code_runs[i].items():
            if test in batch.candidates[i] and _combine(runs).status == _DISAGREE:
                task.flaky.add(test)
    for task in batch.tasks.values():
        for (index, test), runs in task.mutant_runs.items():
            if test not in task.own_tests and _combine(runs).status == _DISAGREE:
                task.flaky.add(test)
        for test in task.vacuous:
            if _combine(task.reference_runs[test]).status == _DISAGREE:
                task.flaky.add(test)
    all_records: list[list[GeneratedTest]] = []
    code_verdicts: list[dict[str, Verdict]] = []
    for i, sample in enumerate(batch.samples):
        task = batch.task_of(i)
        candidates = set(batch.candidates[i])
        records: list[GeneratedTest] = []
        seen: set[str] = set()  # dedup_key: a repeat reformatted, or with a new message, is still a repeat
        for stage_id, stage_tests in enumerate(sample.tests_by_stage, start=1):
            for test in stage_tests:
                if not test.strip():
                    records.append(GeneratedTest(stage_id, test, "invalid", "empty"))
                elif dedup_key(test) in seen:
                    records.append(GeneratedTest(stage_id, test, "invalid", "duplicate"))
                else:
                    seen.add(dedup_key(test))
                    records.append(GeneratedTest(stage_id, test, *_status(batch, i, task, test, candidates)))
        all_records.append(records)
        valid = {r.test for r in records if r.status == "valid"}
        code_verdicts.append({
            test: _judged(batch, task, test, runs) for test, runs in batch.code_runs[i].items()
            if test in task.own_tests or test in valid
        })  # fmt: skip
    for task in batch.tasks.values():
        valid = {r.test for i, records in enumerate(all_records) if batch.task_of(i) is task
                 for r in records if r.status == "valid"}
        for (index, test), runs in task.mutant_runs.items():
            if test in task.own_tests or test in valid:
                if _judged(batch, task, test, runs).status not in ("passed", "infra_error"):
                    task.kills.setdefault(test, set()).add(index)
                    task.killable.add(index)
    return all_records, code_verdicts


def _status(batch: BatchRuns, index: int, task: Task, test: str, candidates: set[str]) -> tuple[str, str | None]:
    """Why a distinct generated test of sample ``index`` is (in)valid, in the order of the checks."""
    if test in batch.static[index]:  # it never ran
        return "invalid", batch.static[index][test]
    if batch.reference_flags[index]:
        return "invalid", "sandbox_flag"
    first = task.reference_runs[test][0]
    if first.status == "infra_error":
        return "unknown", None
    if not first.passed:
        return "invalid", _REFERENCE_REASONS.get(first.status, first.status)
    if task.reference_time(test) > batch.config.too_slow_share * batch.config.reference_timeout:
        return "invalid", "too_slow"
    if task.vacuous[test]:
        return "invalid", "vacuous"
    if test in task.flaky:
        return "invalid", "nondeterministic"
    reference = _combine(task.reference_runs[test])
    code = _combine(batch.code_runs[index].get(test, ()))
    if reference.status == "infra_error" or code.status == "infra_error" or test not in candidates:
        return "unknown", None
    return "valid", None
