"""Scoring: every sample of every run through the sandbox in one batch, then the numbers of each run.

A run is a list of samples from one model (e.g. ``adapter`` and ``base``); all their jobs, the official
tests and the best-of-N selection tests alike, go to a single `Sandbox.run_many` so the pool stays busy
across the whole benchmark.

Best-of-N (the idea of CodeT, Chen et al. 2022, "CodeT: Code Generation with Generated Tests"): the
tests the discriminator wrote for any of a task's first N samples are pooled (de-duplicated), every one
of those N programs runs against the pool, and the program passing the most of them is picked; ties go
to the higher mean token log-probability, then to the earlier sample. The pick is then judged by the
task's official verdict.

HumanEval+ and MBPP+ (``plus``): the official verdict is EvalPlus's on the base inputs, and every
number is also given on base and plus inputs together (``plus_pass@k``, ``evalplus_judge.py``).
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Callable

from pipeline.evaluation.evalplus_judge import PlusVerdict
from prompts.collapse import DEFAULT_COLLAPSE, CollapseConfig, chain_text, collapse_score, is_collapsed
from pipeline.evaluation.programs import CompletionFormat, assemble_program, job_with_tests, make_job
from pipeline.evaluation.samples import Sample
from prompts.checks import never_calls, reads_chance, stand_ins
from prompts.parsing import compiles
from prompts.testcases import dedup_key
from sandbox import Job, Result

logger = logging.getLogger(__name__)

DEFAULT_KS = (1, 5, 10)
# Judges (task_id, program) pairs the EvalPlus way, in order (``evalplus_judge.judge_programs`` bound to its data).
PlusJudge = Callable[[Sequence[tuple[str, str]]], list[PlusVerdict]]


@dataclass(frozen=True)
class ScoreConfig:
    """ks: the k of each pass@k (reported when every task has at least k samples); best_of: N of best-of-N
    selection (None: off); timeout_s: seconds per test in the sandbox (None: the sandbox's default)."""

    completion_format: CompletionFormat = "auto"
    ks: tuple[int, ...] = DEFAULT_KS
    best_of: int | None = None
    timeout_s: float | None = None
    collapse: CollapseConfig = DEFAULT_COLLAPSE


@dataclass
class _Scored:
    sample: Sample
    program: str
    result: Result
    selection: Result | None = None  # against the pooled discriminator tests (best-of-N)
    selection_tests: int = 0
    plus: PlusVerdict | None = None  # HumanEval+ / MBPP+: EvalPlus's verdicts, which decide "passed"

    @property
    def passed(self) -> bool:
        return self.plus.passed_base if self.plus is not None else self.result.status == "passed"

    @property
    def passed_plus(self) -> bool:
        return self.plus is not None and self.plus.passed_plus


def _pooled_tests(candidates: Sequence[Sample]) -> list[str]:
    pooled: dict[str, str] = {}
    for sample in candidates:
        for test in sample.tests:
            pooled.setdefault(dedup_key(test), test)
    return list(pooled.values())


def score_runs(sandbox: Any, rows_by_id: Mapping[str, Mapping[str, Any]], runs: Mapping[str, Sequence[Sample]],
               config: ScoreConfig, pass_at_k_metric: Any, plus: PlusJudge | None = None,
               on_result: Callable[[int, Any], None] | None = None,
               ) -> tuple[dict[str, dict[str, Any]], dict[str, list[dict]]]:
    """Run every sample and summarise each run; returns (summary per run, sample records per run).

    `sandbox` is an open `sandbox.Sandbox`; `pass_at_k_metric` the loaded ``pass_at_k.py`` metric; `plus`
    judges HumanEval+ / MBPP+ samples; `on_result(index, result)` is called per sandbox job (progress).
    """
    jobs: list[Job] = []
    programs: dict[str, list[str]] = {}
    for name, samples in runs.items():
        programs[name] = [assemble_program(rows_by_id[s.task_id], s.code,
                                           "program" if s.is_program else config.completion_format) for s in samples]
        jobs += [make_job(rows_by_id[s.task_id], p, config.timeout_s) for s, p in zip(samples, programs[name])]
    selection_jobs: list[tuple[str, int, int]] = []  # (run, sample position, pooled test count)
    validity_jobs: list[tuple[str, str, list[str]]] = []  # (run, task, tests run on reference + stand-ins)
    static_invalid: dict[str, Counter] = defaultdict(Counter)  # run -> reason -> tests
    if config.best_of:
        for name, samples in runs.items():
            by_task: dict[str, list[int]] = defaultdict(list)
            for position, sample in enumerate(samples):
                if sample.index < config.best_of:
                    by_task[sample.task_id].append(position)
            for task_id, positions in by_task.items():
                pooled = _pooled_tests([samples[p] for p in positions])
                if not pooled:
                    continue
                entry_point = rows_by_id[task_id]["entry_point"]
                for p in positions:
                    jobs.append(job_with_tests(programs[name][p], pooled, entry_point, config.timeout_s))
                    selection_jobs.append((name, p, len(pooled)))
        for name, samples in runs.items():  # validity of the pooled tests, on the reference and the stand-ins
            by_task = defaultdict(list)
            for sample in samples:
                if sample.index < config.best_of:
                    by_task[sample.task_id].append(sample)
            for task_id, group in by_task.items():
                row = rows_by_id[task_id]
                runnable = []
                for test in _pooled_tests(group):
                    if never_calls(test, row["entry_point"], str(row.get("reference_solution") or "")):
                        static_invalid[name]["no_call"] += 1
                    elif reads_chance(test):
                        static_invalid[name]["chance_source"] += 1
                    else:
                        runnable.append(test)
                if runnable:
                    reference = str(row.get("reference_solution") or "")
                    standing = stand_ins(reference, row["entry_point"])
                    for program in (reference, *standing.programs):
                        jobs.append(Job(program=program, tests=tuple(runnable), setup=row.get("test_setup") or "",
                                        entry_point=row["entry_point"], timeout=config.timeout_s))
                    validity_jobs.append((name, task_id, runnable, standing))
    results = sandbox.run_many(jobs, on_result) if jobs else []

    scored: dict[str, list[_Scored]] = {}
    cursor = 0
    for name, samples in runs.items():
        scored[name] = [_Scored(s, p, r) for s, p, r in zip(samples, programs[name], results[cursor:])]
        cursor += len(samples)
        if plus is not None:
            for item, verdict in zip(scored[name], plus([(s.task_id, p) for s, p in zip(samples, programs[name])])):
                item.plus = verdict
    for (name, position, count), result in zip(selection_jobs, results[cursor:]):
        scored[name][position].selection = result
        scored[name][position].selection_tests = count
    cursor += len(selection_jobs)
    validity: dict[str, dict[str, Any]] = {}
    for name, task_id, tests, standing in validity_jobs:
        reference, *others = results[cursor: cursor + 1 + len(standing.programs)]
        cursor += 1 + len(standing.programs)
        entry = validity.setdefault(name, {"tasks": defaultdict(int), "reasons": Counter(static_invalid[name])})
        for index in range(len(tests)):
            verdict = reference.tests[index].status
            if verdict != "passed":
                entry["reasons"]["unknown" if verdict == "infra_error" else f"reference_{verdict}"] += 1
            elif standing.vacuous([other.tests[index].status == "passed" for other in others]):
                entry["reasons"]["vacuous"] += 1
            else:
                entry["tasks"][task_id] += 1

    summaries, records = {}, {}
    for name, items in scored.items():
        summaries[name] = summarize_run(items, rows_by_id, config, pass_at_k_metric)
        if config.best_of:
            found = validity.get(name, {"tasks": {}, "reasons": Counter(static_invalid[name])})
            summaries[name]["best_of"]["tests"] = test_validity(found["tasks"], found["reasons"],
                                                                 len(summaries[name]["tasks"]))
        records[name] = [_record(name, item, config.collapse) for item in items]
    return summaries, records


def test_validity(valid_per_task: Mapping[str, int], invalid: Mapping[str, int], num_tasks: int) -> dict[str, Any]:
    """The discriminator's pooled best-of-N tests judged as the rewards judge them (rewards/README.md, one
    run): valid = calls the entry point, reads no source of chance, passes on the reference solution and
    is not vacuous on the stand-ins (``prompts.checks.StandIns``). Invalid ones by reason."""
    valid = sum(valid_per_task.values())
    written = valid + sum(invalid.values())
    return {"written": written, "valid": valid, "validity": valid / written if written else 0.0,
            "tasks_with_valid_test": sum(1 for n in valid_per_task.values() if n), "tasks": num_tasks,
            "invalid": dict(sorted(invalid.items()))}


def _record(run: str, item: _Scored, collapse: CollapseConfig) -> dict[str, Any]:
    text = chain_text(item.sample.texts) or item.sample.completion
    record = {"run": run, **item.sample.to_dict(), "program": item.program,
              "syntax_valid": bool(item.sample.code.strip()) and compiles(item.program),
              "collapse_score": round(collapse_score(text, collapse), 4), "collapsed": is_collapsed(text, collapse),
              "status": item.result.status, "tests_passed": item.result.passed, "tests_total": item.result.total,
              "flags": item.result.flags}
    if item.plus is not None:
        record["evalplus"] = {"base": item.plus.base, "plus": item.plus.plus}
    if item.selection is not None:
        record["selection_tests_passed"] = item.selection.passed
        record["selection_tests_total"] = item.selection.total
    return record


def _pass_at_k(metric: Any, counts: Sequence[tuple[int, int]], ks: Sequence[int]) -> dict[str, float]:
    if not counts:
        return {}
    return metric.compute(num_samples=[n for n, _ in counts], num_correct=[c for _, c in counts], k=list(ks))


def _stage_means(values: Sequence[Sequence[float]]) -> list[float]:
    width = max((len(v) for v in values), default=0)
    means = []
    for stage in range(width):
        column = [v[stage] for v in values if len(v) > stage]
        means.append(sum(column) / len(column))
    return means


def _pick(items: Sequence[_Scored]) -> _Scored:
    """The best-of-N pick: most selection tests passed, then higher mean logprob, then earlier sample."""
    def key(item: _Scored) -> tuple[int, float, int]:
        passed = item.selection.passed if item.selection is not None else 0
        logprob = item.sample.logprob if item.sample.logprob is not None else float("-inf")
        return passed, logprob, -item.sample.index
    return max(items, key=key)


def summarize_run(items: Sequence[_Scored], rows_by_id: Mapping[str, Mapping[str, Any]], config: ScoreConfig,
                  metric: Any) -> dict[str, Any]:
    """All numbers of one run (docs/evaluation.md explains each)."""
    by_task: dict[str, list[_Scored]] = defaultdict(list)
    for item in items:
        by_task[item.sample.task_id].append(item)
    counts = {task: (len(group), sum(i.passed for i in group)) for task, group in by_task.items()}
    statuses = Counter(item.result.status for item in items)
    if statuses.get("infra_error"):
        logger.warning("%d sample(s) got infra_error from the sandbox: counted as not passed",
                       statuses["infra_error"])
    texts = [chain_text(i.sample.texts) or i.sample.completion for i in items]
    summary: dict[str, Any] = {
        "num_tasks": len(by_task),
        "num_samples": len(items),
        "samples_per_task": min(n for n, _ in counts.values()) if counts else 0,
        **_pass_at_k(metric, list(counts.values()), config.ks),
        "syntax_valid_rate": _mean([bool(i.sample.code.strip()) and compiles(i.program) for i in items]),
        "collapse_rate": _mean([is_collapsed(t, config.collapse) for t in texts]),
        "mean_collapse_score": _mean([collapse_score(t, config.collapse) for t in texts]),
        "test_pass_rate": _mean([i.result.pass_rate for i in items]),
        "status_counts": dict(sorted(statuses.items())),
        "mean_tokens_per_stage": _stage_means([i.sample.stage_tokens for i in items]),
        "mean_seconds_per_stage": _stage_means([i.sample.stage_seconds for i in items]),
    }
    if any(i.plus is not None for i in items):
        summary["evalplus"] = _evalplus_summary(by_task, config.ks, metric)
    categories: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for task, count in counts.items():
        category = rows_by_id[task].get("category") or ""
        if category:
            categories[category].append(count)
    if categories:
        summary["per_category"] = {cat: {"tasks": len(c), **_pass_at_k(metric, c, config.ks)}
                                   for cat, c in sorted(categories.items())}
    if config.best_of:
        summary["best_of"] = _best_of(by_task, config.best_of, metric)
    summary["tasks"] = {
        task: {"category": rows_by_id[task].get("category") or "", "num_samples": counts[task][0],
               "num_correct": counts[task][1],
               **({"num_correct_plus": sum(i.passed_plus for i in group)} if group[0].plus is not None else {}),
               "statuses": [i.result.status for i in group],
               "tests_passed": [i.result.passed for i in group], "tests_total": group[0].result.total}
        for task, group in by_task.items()
    }
    return summary


def _best_of(by_task: Mapping[str, list[_Scored]], n: int, metric: Any) -> dict[str, Any]:
    """The best-of-N pick of every task and, for reference, pass@1 and pass@N of the same N samples."""
    picks, counts = {}, []
    for task, group in by_task.items():
        candidates = [item for item in group if item.sample.index < n]
        picks[task] = _pick(candidates)
        counts.append((len(candidates), sum(item.passed for item in candidates)))
    tested = [p for p in picks.values() if p.selection is not None]
    plus = {}
    if any(p.plus is not None for p in picks.values()):
        plus = {"plus_pass_rate": _mean([p.passed_plus for p in picks.values()])}
    return {
        "n": n,
        "pass_rate": _mean([p.passed for p in picks.values()]),
        **plus,
        **_pass_at_k(metric, counts, sorted({1, n})),
        "tasks_with_tests": len(tested),
        "mean_selection_tests": _mean([p.selection_tests for p in tested]) if tested else 0.0,
        "picked": {task: p.sample.index for task, p in picks.items()},
    }


def _evalplus_summary(by_task: Mapping[str, list[_Scored]], ks: Sequence[int], metric: Any) -> dict[str, Any]:
    """pass@k on base inputs and on base + plus inputs (EvalPlus's HumanEval / HumanEval+ pair) and the gap:
    the share of pass@k lost to the added inputs, i.e. solutions that were right only on the original tests."""
    base = [(len(g), sum(i.passed for i in g)) for g in by_task.values()]
    plus = [(len(g), sum(i.passed_plus for i in g)) for g in by_task.values()]
    ks = [k for k in ks if all(n >= k for n, _ in base)]
    base_scores, plus_scores = _pass_at_k(metric, base, ks), _pass_at_k(metric, plus, ks)
    statuses = Counter(f"{i.plus.base}/{i.plus.plus}" for g in by_task.values() for i in g if i.plus is not None)
    return {"base": base_scores, "plus": plus_scores,
            "gap": {k: base_scores[k] - plus_scores[k] for k in base_scores if k in plus_scores},
            "statuses": dict(sorted(statuses.items()))}


def _mean(values: Sequence[float | bool]) -> float:
    return sum(values) / len(values) if values else 0.0
