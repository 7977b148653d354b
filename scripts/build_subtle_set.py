"""Build the fixed set of subtly wrong HumanEval+ / MBPP+ programs the discriminator benchmark uses.

A subtly wrong program passes every base input of its task and fails a plus input: right on the
original benchmark's tests, wrong on the edge cases EvalPlus added. That is exactly the kind of bug
a discriminator's tests should catch and the original tests do not. The programs are single-edit
mutants of the canonical solutions (``rewards.mutation``: flipped comparisons, off-by-ones,
swapped operators, ...), judged by this project's EvalPlus judge (``evalplus_judge``), and kept
when base passes and plus fails; at most ``--per_task`` per task, in the mutation order.

The output is versioned (``evalplus-subtle-<dataset>-v<N>.jsonl.gz`` under datasets_build/data/) and
committed, so every evaluation of every model measures the same programs; rebuild only with a new
version number. Mutants are derived from EvalPlus's canonical solutions (Apache-2.0).

    .venv/bin/python scripts/build_subtle_set.py --dataset humaneval+ --version 1
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets_build.evalplus import load_plus_rows  # noqa: E402
from datasets_build.evalplus_release import packaged_file  # noqa: E402
from pipeline.evaluation.evalplus_judge import (  # noqa: E402
    evalplus_sandbox_config, judge_programs, load_oracles, plus_task,
)
from rewards.mutation import generate_mutants  # noqa: E402
from sandbox import Sandbox  # noqa: E402

DEFAULT_FILES = {"humaneval+": packaged_file("humaneval+"), "mbpp+": packaged_file("mbpp+")}  # shipped in datasets_build/data/


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DEFAULT_FILES), required=True)
    parser.add_argument("--data", default=None, help="the EvalPlus release file (default: the copy in datasets_build/data/)")
    parser.add_argument("--version", type=int, required=True, help="version number written into the file name")
    parser.add_argument("--mutants", type=int, default=12, help="mutants tried per task")
    parser.add_argument("--per_task", type=int, default=3, help="subtly wrong programs kept per task at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "duelcoder" / "evalplus"))
    parser.add_argument("--out_dir", default=str(ROOT / "datasets_build" / "data"))
    args = parser.parse_args()

    data = load_plus_rows(args.dataset, args.data or DEFAULT_FILES[args.dataset], use_hub=False)
    tasks = {row["task_id"]: plus_task(row) for row in data.rows}
    candidates = [(tid, m.source, m.description) for tid, task in tasks.items()
                  for m in generate_mutants(task.reference, args.mutants, seed=args.seed)]
    started = time.perf_counter()
    with Sandbox(evalplus_sandbox_config()) as sandbox:
        oracles, origin = load_oracles(list(tasks.values()), sandbox, args.cache)
        verdicts = judge_programs(tasks, oracles, [(tid, source) for tid, source, _ in candidates], sandbox)
    kept: dict[str, list[dict]] = {}
    for (tid, source, description), verdict in zip(candidates, verdicts):
        if verdict.base == "pass" and verdict.plus == "fail" and len(kept.setdefault(tid, [])) < args.per_task:
            kept[tid].append({"task_id": tid, "program": source, "mutation": description})
    records = [r for tid in tasks for r in kept.get(tid, [])]
    name = f"evalplus-subtle-{args.dataset.rstrip('+')}plus-v{args.version}.jsonl.gz"
    out = Path(args.out_dir) / name
    with gzip.GzipFile(out, "wb", mtime=0) as handle:  # mtime 0: the same programs give the same bytes
        handle.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records).encode())
    print(f"{args.dataset} ({data.version}, md5 {data.md5}): {len(candidates)} mutants judged in "
          f"{time.perf_counter() - started:.0f} s; {len(records)} subtly wrong programs on "
          f"{sum(1 for v in kept.values() if v)} of {len(tasks)} tasks -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
