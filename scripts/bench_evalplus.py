"""Speed of this project's EvalPlus judge against evalplus 0.3.1, same samples, same run, same machine.

Scores the 164 canonical HumanEval+ solutions (about 123k inputs) four ways, one after the other:
this judge with its expected outputs computed (a fresh cache) and then cached, and evalplus (in
.venv-evalplus, scripts/evalplus_env.sh) with its ground truth computed and then cached. Prints each
time, the ratios, the machine's load, and checks that every verdict passes (HumanEval/32 aside for
evalplus, which fails it: see scripts/evalplus_parity.py). Targets (issue "HumanEval+ and MBPP+"):
at most 30 s cached and 90 s with expected outputs computed, on 2 cores, and faster than evalplus.

    .venv/bin/python scripts/bench_evalplus.py [--dataset humaneval|mbpp] [--parallel 2]
"""

from __future__ import annotations

import argparse
import logging
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets_build.evalplus import load_plus_rows  # noqa: E402
from datasets_build.evalplus_release import packaged_file  # noqa: E402
from pipeline.evaluation.evalplus_judge import (  # noqa: E402
    evalplus_sandbox_config, judge_programs, load_oracles, plus_task,
)
from sandbox import Sandbox  # noqa: E402

FILES = {"humaneval": packaged_file("humaneval+"), "mbpp": packaged_file("mbpp+")}  # the release files datasets_build ships


def ours(tasks: dict, cache: Path, workers: int) -> tuple[float, float, int]:
    started = time.perf_counter()
    with Sandbox(evalplus_sandbox_config(workers=workers)) as sandbox:
        oracles, _ = load_oracles(list(tasks.values()), sandbox, cache)
        expected_s = time.perf_counter() - started
        verdicts = judge_programs(tasks, oracles, [(tid, t.reference) for tid, t in tasks.items()], sandbox)
    return expected_s, time.perf_counter() - started - expected_s, sum(v.passed_plus for v in verdicts)


def theirs(dataset: str, data: Path, samples: Path, cache: Path, parallel: int) -> dict:
    python = ROOT / ".venv-evalplus" / "bin" / "python"
    if not python.is_file():
        raise SystemExit(f"{python} missing: run scripts/evalplus_env.sh first")
    out = cache.parent / f"evalplus-{time.time_ns()}.json"
    subprocess.run([str(python), str(ROOT / "scripts" / "evalplus_reference.py"), "--dataset", dataset, "--data",
                    str(data), "--samples", str(samples), "--out", str(out), "--parallel", str(parallel),
                    "--cache_dir", str(cache)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(FILES), default="humaneval")
    parser.add_argument("--parallel", type=int, default=len(os.sched_getaffinity(0)),
                        help="workers for both (evalplus's processes, our sandbox workers)")
    args = parser.parse_args()
    name = "humaneval+" if args.dataset == "humaneval" else "mbpp+"
    data = load_plus_rows(name, FILES[args.dataset], use_hub=False)
    tasks = {row["task_id"]: plus_task(row) for row in data.rows}
    inputs = sum(len(t.base_inputs) + len(t.plus_inputs) for t in tasks.values())
    print(f"{name} {data.version}: {len(tasks)} canonical solutions, {inputs} inputs; {args.parallel} workers; "
          f"load before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-evalplus-") as tmp:
        tmp_dir = Path(tmp)
        samples = tmp_dir / "samples.jsonl"
        records = [json.loads(line) for line in gzip.open(FILES[args.dataset]).read().splitlines() if line.strip()]
        samples.write_text("".join(json.dumps({"task_id": r["task_id"], "solution": r["prompt"] + r["canonical_solution"]})
                                   + "\n" for r in records))
        logging.disable(logging.INFO)
        cold = ours(tasks, tmp_dir / "ours", args.parallel)
        warm = ours(tasks, tmp_dir / "ours", args.parallel)
        e_cold = theirs(args.dataset, FILES[args.dataset], samples, tmp_dir / "evalplus", args.parallel)
        e_warm = theirs(args.dataset, FILES[args.dataset], samples, tmp_dir / "evalplus", args.parallel)
    e_pass = [sum(b == p == "pass" for _, b, p in e["verdicts"]) for e in (e_cold, e_warm)]
    rows = [("this judge, expected outputs computed", cold[0], cold[1], cold[2]),
            ("this judge, expected outputs cached", warm[0], warm[1], warm[2]),
            ("evalplus 0.3.1, ground truth computed", e_cold["seconds"]["ground_truth"], e_cold["seconds"]["judging"], e_pass[0]),
            ("evalplus 0.3.1, ground truth cached", e_warm["seconds"]["ground_truth"], e_warm["seconds"]["judging"], e_pass[1])]
    print(f"{'':40s} {'expected s':>10s} {'judging s':>10s} {'total s':>8s} {'pass':>5s}")
    for label, expected_s, judging_s, passed in rows:
        print(f"{label:40s} {expected_s:10.1f} {judging_s:10.1f} {expected_s + judging_s:8.1f} {passed:5d}")
    total = [r[1] + r[2] for r in rows]
    print(f"ratios (evalplus / this judge): computed {total[2] / total[0]:.2f}x, cached {total[3] / total[1]:.2f}x; "
          f"load after: {os.getloadavg()[0]:.2f}")
    print(f"targets: cached {total[1]:.1f} s <= 30 s: {total[1] <= 30}; computed {total[0]:.1f} s <= 90 s: "
          f"{total[0] <= 90}; faster than evalplus: {total[0] < total[2] and total[1] < total[3]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
