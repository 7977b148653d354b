"""Verdicts of the real EvalPlus judge (evalplus 0.3.1) on a set of samples: the reference for parity.

Runs under .venv-evalplus's python (scripts/evalplus_env.sh), never the project's: standard library
and evalplus only, nothing of this repository is imported.

    PY=$(scripts/evalplus_env.sh | tail -1)
    $PY scripts/evalplus_reference.py --dataset humaneval \\
        --data datasets_build/data/HumanEvalPlus-v0.1.10.jsonl.gz \\
        --samples /tmp/evalplus_parity/humaneval_samples.jsonl \\
        --out /tmp/evalplus_parity/humaneval_evalplus.json --parallel 2 [--cache_dir DIR]

What it does, and why:
- the release file is written uncompressed into a fresh temp dir and named by HUMANEVAL_OVERRIDE_PATH
  or MBPP_OVERRIDE_PATH (read by evalplus at import time, so set before importing it): evalplus never
  downloads, and its dataset hash is the md5 of exactly those bytes;
- XDG_CACHE_HOME points at --cache_dir (default: a temp dir, so a cold cache): evalplus caches the
  canonical solution's outputs and times as <cache_dir>/evalplus/<dataset hash>.pkl; keep a
  --cache_dir between runs to time the warm case;
- the samples (`task_id` and `solution`, a full program) are copied into a fresh temp dir: evalplus
  would otherwise reload an existing <samples>_eval_results.json instead of judging, or ask on stdin;
- evalplus.evaluate.evaluate(dataset, samples=..., parallel=N) runs in-process, with
  evalplus.evaluate.get_groundtruth wrapped to time the ground-truth step on its own.

--out gets {"evalplus_version", "dataset", "dataset_hash", "n_samples", "parallel", "ground_truth_cached",
"limits": {"min_time_limit", "gt_time_limit_factor"}, "seconds": {"ground_truth", "judging", "total"},
"verdicts": [[task_id, base_status, plus_status], ...]} with the verdicts in the order of the input
samples ("pass", "fail" or "timeout"). "total" is the evaluate() call; "judging" is total less
ground truth. evalplus needs at least one sample for every task of the dataset. --raw_out keeps
evalplus's own <samples>_eval_results.json (the last failing input of each failed sample).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import types
from collections import defaultdict


def _read_jsonl(path: str) -> list[dict]:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _write_data(src: str, dst_dir: str) -> str:
    """The release file, uncompressed, byte for byte (its md5 is evalplus's dataset hash)."""
    name = os.path.basename(src)
    name = name[: -len(".gz")] if name.endswith(".gz") else name
    dst = os.path.join(dst_dir, name if name.endswith(".jsonl") else name + ".jsonl")
    opener = gzip.open if src.endswith(".gz") else open
    with opener(src, "rb") as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dst


def _load_samples(path: str, task_ids: set[str]) -> list[tuple[str, str]]:
    samples = []
    for n, record in enumerate(_read_jsonl(path), 1):
        if not isinstance(record.get("task_id"), str) or not isinstance(record.get("solution"), str):
            raise SystemExit(f"{path} line {n}: a sample needs a string `task_id` and `solution`")
        if record["task_id"] not in task_ids:
            raise SystemExit(f"{path} line {n}: task {record['task_id']!r} is not in the dataset")
        samples.append((record["task_id"], record["solution"]))
    missing = task_ids - {task_id for task_id, _ in samples}
    if missing:
        raise SystemExit(f"evalplus needs a sample for every task; none for {len(missing)}: {sorted(missing)[:10]}")
    return samples


def _verdicts_in_input_order(samples: list[tuple[str, str]], results: dict) -> list[list]:
    """evalplus groups results by task, each group sorted by completion_id, which counts a task's
    samples in input order: the k-th result of a task is the k-th input sample of that task."""
    per_task = results["eval"]
    seen: dict[str, int] = defaultdict(int)
    verdicts = []
    for task_id, solution in samples:
        k = seen[task_id]
        seen[task_id] += 1
        result = per_task[task_id][k]
        if result["task_id"] != task_id or result["solution"] != solution:
            raise RuntimeError(f"result {k} of {task_id} is not the input's sample {k} of that task")
        verdicts.append([task_id, result["base_status"], result["plus_status"]])
    for task_id, group in per_task.items():
        if len(group) != seen[task_id]:
            raise RuntimeError(f"{task_id}: {len(group)} results for {seen[task_id]} samples")
    return verdicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["humaneval", "mbpp"], required=True)
    parser.add_argument("--data", required=True, help="the release file, .jsonl.gz or .jsonl")
    parser.add_argument("--samples", required=True, help="jsonl of {task_id, solution}")
    parser.add_argument("--out", required=True, help="the verdicts and times (json)")
    parser.add_argument("--parallel", type=int, default=None, help="evalplus's workers (its default: cpus // 2)")
    parser.add_argument(
        "--cache_dir", default=None,
        help="XDG_CACHE_HOME for evalplus (ground truth in <dir>/evalplus/<hash>.pkl); default: a fresh temp dir",
    )  # fmt: skip
    parser.add_argument("--raw_out", default=None, help="also keep evalplus's own results json (failing inputs)")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="evalplus_reference_")
    try:
        data_dir, samples_dir = os.path.join(tmp, "data"), os.path.join(tmp, "samples")
        os.makedirs(data_dir)
        os.makedirs(samples_dir)
        data_path = _write_data(args.data, data_dir)
        task_ids = {task["task_id"] for task in _read_jsonl(data_path)}
        samples = _load_samples(args.samples, task_ids)
        samples_path = os.path.join(samples_dir, "samples.jsonl")
        with open(samples_path, "w", encoding="utf-8") as f:
            for task_id, solution in samples:
                f.write(json.dumps({"task_id": task_id, "solution": solution}) + "\n")

        cache_home = os.path.abspath(args.cache_dir) if args.cache_dir else os.path.join(tmp, "cache")
        os.makedirs(cache_home, exist_ok=True)
        # Both are read when evalplus is imported.
        os.environ["HUMANEVAL_OVERRIDE_PATH" if args.dataset == "humaneval" else "MBPP_OVERRIDE_PATH"] = data_path
        os.environ["XDG_CACHE_HOME"] = cache_home

        import evalplus
        import evalplus.evaluate as ev

        expected_cache = os.path.join(cache_home, "evalplus")
        if os.path.abspath(ev.CACHE_DIR) != expected_cache:
            raise RuntimeError(f"evalplus caches in {ev.CACHE_DIR}, not {expected_cache}")

        timing: dict[str, float] = {}
        cached: list[bool] = []
        get_groundtruth = ev.get_groundtruth

        def timed_groundtruth(problems, hashcode, tasks_only_output_not_none):
            cached.append(os.path.exists(os.path.join(ev.CACHE_DIR, f"{hashcode}.pkl")))
            start = time.perf_counter()
            try:
                return get_groundtruth(problems, hashcode, tasks_only_output_not_none)
            finally:
                timing["ground_truth"] = time.perf_counter() - start

        ev.get_groundtruth = timed_groundtruth
        # evalplus's "stuck" watchdog is a non-daemon thread sleeping 20 s at a time: as a daemon it
        # cannot hold the process open for up to 20 s after the work is done.
        ev.threading = types.SimpleNamespace(Thread=lambda *a, **k: threading.Thread(*a, daemon=True, **k))

        start = time.perf_counter()
        ev.evaluate(args.dataset, samples=samples_path, parallel=args.parallel)
        total = time.perf_counter() - start
        if "ground_truth" not in timing:
            raise RuntimeError("evalplus did not compute its ground truth (did it reload old results?)")

        results_path = os.path.join(samples_dir, "samples_eval_results.json")
        with open(results_path, encoding="utf-8") as f:
            results = json.load(f)
        if args.raw_out:
            os.makedirs(os.path.dirname(os.path.abspath(args.raw_out)), exist_ok=True)
            shutil.copyfile(results_path, args.raw_out)
        verdicts = _verdicts_in_input_order(samples, results)
        report = {
            "evalplus_version": evalplus.__version__,
            "dataset": args.dataset,
            "dataset_hash": results["hash"],
            "n_samples": len(samples),
            "parallel": args.parallel,
            "ground_truth_cached": cached[0],
            "limits": {
                "min_time_limit": ev.DEFAULT_MIN_TIME_LIMIT,
                "gt_time_limit_factor": ev.DEFAULT_GT_TIME_LIMIT_FACTOR,
            },
            "seconds": {
                "ground_truth": round(timing["ground_truth"], 3),
                "judging": round(total - timing["ground_truth"], 3),
                "total": round(total, 3),
            },
            "verdicts": verdicts,
        }
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    base = sum(v[1] == "pass" for v in verdicts)
    plus = sum(v[1] == "pass" and v[2] == "pass" for v in verdicts)
    s = report["seconds"]
    print(
        f"evalplus {report['evalplus_version']} {args.dataset} ({report['dataset_hash']}): {len(verdicts)} samples, "
        f"base pass {base}, base+plus pass {plus}; ground truth {s['ground_truth']:.1f} s "
        f"({'cached' if report['ground_truth_cached'] else 'computed'}), judging {s['judging']:.1f} s, "
        f"total {s['total']:.1f} s -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
