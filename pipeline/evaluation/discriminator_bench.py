"""The discriminator benchmark: how good are the tests it writes, on HumanEval+ / MBPP+?

For each task the discriminator's tests (written during the staged chains, or from the problem
alone in direct mode; pooled over the task's samples, duplicates removed) are judged three ways:

- validity: the share of its tests that call the function, read no source of chance
  (``prompts.checks``) and pass on the canonical solution;
- the share of tasks with at least one valid test;
- the catch rate on subtly wrong programs: programs that pass every base input and fail a plus
  input (a fixed, versioned set built by ``scripts/build_subtle_set.py`` from mutants of the
  canonical solutions and checked by the EvalPlus judge). A program is caught when one of its
  task's valid tests fails on it. The original HumanEval / MBPP tests catch none of them by
  construction, so this is the number a trained discriminator has to move.

Also counted: valid tests that the stand-ins pass (``vacuous``, ``prompts.checks.StandIns``: they cannot tell
a right answer from a constant, or from a wrong answer of the same type), and valid tests that only restate the task's own asserts
(``restates_own_test``: nothing a copy of the problem's tests does not say), which the rewards would
not pay for. Both stay inside ``validity`` so that it compares with runs 1-2; ``valid_counted`` is what
is left without them, the share the rewards would count.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline.evaluation.samples import Sample
from prompts.checks import never_calls, own_assert_keys, reads_chance, restates_own_tests, stand_ins
from prompts.testcases import dedup_key
from sandbox import Job, Result


@dataclass(frozen=True)
class SubtleProgram:
    """A program right on the base inputs and wrong on a plus input (``mutation``: the edit that made it)."""

    task_id: str
    program: str
    mutation: str = ""


def pooled_tests(samples: Sequence[Sample]) -> dict[str, list[str]]:
    """The tests of each task's samples, pooled, duplicates removed (first occurrence kept)."""
    pooled: dict[str, dict[str, str]] = defaultdict(dict)
    for sample in samples:
        for test in sample.tests:
            pooled[sample.task_id].setdefault(dedup_key(test), test)
    return {task_id: list(tests.values()) for task_id, tests in pooled.items()}


def discriminator_benchmark(sandbox: Any, rows_by_id: Mapping[str, Mapping[str, Any]],
                            tests: Mapping[str, Sequence[str]], subtle: Sequence[SubtleProgram],
                            timeout_s: float | None = None) -> dict[str, Any]:
    """Validity, tasks with a valid test and the catch rate of one run's tests per task (module docstring)."""
    subtle_by_task: dict[str, list[SubtleProgram]] = defaultdict(list)
    for program in subtle:
        if program.task_id in rows_by_id:
            subtle_by_task[program.task_id].append(program)
    invalid: Counter = Counter()
    runnable: dict[str, list[str]] = {}
    for task_id in rows_by_id:
        row = rows_by_id[task_id]
        kept = []
        for test in dict.fromkeys(tests.get(task_id, ())):
            if never_calls(test, row["entry_point"], str(row["reference_solution"])):
                invalid["no_call"] += 1
            elif reads_chance(test):
                invalid["chance_source"] += 1
            else:
                kept.append(test)
        if kept:
            runnable[task_id] = kept
    standing = {task_id: stand_ins(str(rows_by_id[task_id]["reference_solution"]), rows_by_id[task_id]["entry_point"])
                for task_id in runnable}
    jobs = [Job(program=program, tests=tuple(tests), setup=rows_by_id[task_id].get("test_setup") or "",
                entry_point=rows_by_id[task_id]["entry_point"], timeout=timeout_s)
            for task_id, tests in runnable.items()
            for program in (str(rows_by_id[task_id]["reference_solution"]), *standing[task_id].programs)]
    results: list[Result] = sandbox.run_many(jobs) if jobs else []
    valid: dict[str, list[str]] = {}
    vacuous = restated = counted = cursor = 0
    for task_id, tests in runnable.items():
        reference, *others = results[cursor: cursor + 1 + len(standing[task_id].programs)]
        cursor += 1 + len(standing[task_id].programs)
        valid[task_id] = []
        own = rows_by_id[task_id].get("tests") or []
        own_keys = own_assert_keys([own] if isinstance(own, str) else own)
        for index, test in enumerate(tests):
            status = reference.tests[index].status
            if status != "passed":
                invalid["unknown" if status == "infra_error" else f"reference_{status}"] += 1
                continue
            valid[task_id].append(test)
            is_vacuous = standing[task_id].vacuous([other.tests[index].status == "passed" for other in others])
            is_restated = restates_own_tests(test, own_keys)
            vacuous += is_vacuous
            restated += is_restated
            counted += not (is_vacuous or is_restated)
    catch_jobs = [(program, Job(program=program.program, tests=tuple(valid[task_id]),
                                setup=rows_by_id[task_id].get("test_setup") or "",
                                entry_point=rows_by_id[task_id]["entry_point"], timeout=timeout_s))
                  for task_id, programs in subtle_by_task.items() if valid.get(task_id) for program in programs]
    catch_results = sandbox.run_many([job for _, job in catch_jobs]) if catch_jobs else []
    caught = Counter(program.task_id for (program, _), result in zip(catch_jobs, catch_results)
                     if result.status not in ("passed", "infra_error"))
    num_valid = sum(len(v) for v in valid.values())
    written = num_valid + sum(invalid.values())
    num_subtle = sum(len(v) for v in subtle_by_task.values())
    return {
        "tasks": len(rows_by_id),
        "written": written,
        "valid": num_valid,
        "validity": num_valid / written if written else 0.0,
        "valid_but_vacuous": vacuous,
        "valid_but_restated": restated,
        "valid_counted": counted,
        "tasks_with_valid_test": sum(1 for v in valid.values() if v),
        "tasks_with_valid_test_rate": sum(1 for v in valid.values() if v) / len(rows_by_id) if rows_by_id else 0.0,
        "subtle_programs": num_subtle,
        "subtle_tasks": len(subtle_by_task),
        "subtle_caught": sum(caught.values()),
        "catch_rate": sum(caught.values()) / num_subtle if num_subtle else 0.0,
        "invalid": dict(sorted(invalid.items())),
    }
