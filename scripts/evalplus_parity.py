"""Verdict parity with EvalPlus: this project's judge against evalplus 0.3.1, sample for sample.

Takes the samples of ``scripts/evalplus_samples.py`` (canonical, empty, mutants, wrong kinds) and the
verdicts ``scripts/evalplus_reference.py`` got from the real evalplus on them, judges the same samples
with ``pipeline.evaluation.evalplus_judge``, and writes a Markdown report: agreement on "base passes"
and on "plus passes" (each input set on its own, as EvalPlus reports them) per kind of sample, and
every disagreement with its reason. Disagreements it knows the cause of are listed as such:

- ``lying_eq``: a returned object whose ``__eq__`` always says True. EvalPlus compares inside the
  candidate's process and passes it; this judge compares plain values outside and fails it, by design.
- HumanEval/32 (``find_zero``): EvalPlus 0.3.1 fails every solution, the canonical one included (its
  special oracle ``continue``s before recording the input as passed); this judge applies the oracle.
- ``--known`` TASK=REASON pairs: tasks where evalplus's own canonical solution failed in the same run
  for reasons outside the code (its 4 GiB memory cap applied to a process that already holds the
  ground truth; timing under load), found by ``scripts/evalplus_reference.py --raw_out``.

    .venv/bin/python scripts/evalplus_parity.py --dataset humaneval --samples S.jsonl --evalplus E.json \\
        --report docs/evalplus/parity-humaneval.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from datasets_build.evalplus import load_plus_rows  # noqa: E402
from datasets_build.evalplus_release import packaged_file  # noqa: E402
from pipeline.evaluation.evalplus_judge import (  # noqa: E402
    evalplus_sandbox_config, judge_programs, load_oracles, plus_task,
)
from sandbox import Sandbox  # noqa: E402

DEFAULT_FILES = {"humaneval": packaged_file("humaneval+"), "mbpp": packaged_file("mbpp+")}  # shipped in datasets_build/data/
BY_DESIGN = {"lying_eq": "returns an object whose __eq__ always says True: evalplus passes it, this judge "
                         "compares plain values and fails it (by design)"}
EVALPLUS_BUG = {"HumanEval/32": "evalplus 0.3.1 fails every find_zero solution, the canonical one included "
                                "(its special oracle skips recording the input as passed)"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=sorted(DEFAULT_FILES), required=True)
    parser.add_argument("--data", default=None)
    parser.add_argument("--samples", required=True, help="scripts/evalplus_samples.py's output")
    parser.add_argument("--evalplus", required=True, help="scripts/evalplus_reference.py's output on the same samples")
    parser.add_argument("--known", nargs="*", default=[], help="TASK=REASON: evalplus failures outside the code")
    parser.add_argument("--cache", default=str(Path.home() / ".cache" / "duelcoder" / "evalplus"))
    parser.add_argument("--report", required=True)
    args = parser.parse_args()

    name = "humaneval+" if args.dataset == "humaneval" else "mbpp+"
    data = load_plus_rows(name, args.data or DEFAULT_FILES[args.dataset], use_hub=False)
    tasks = {row["task_id"]: plus_task(row) for row in data.rows}
    samples = [json.loads(line) for line in Path(args.samples).read_text().splitlines() if line.strip()]
    reference = json.loads(Path(args.evalplus).read_text())
    if reference["dataset_hash"] != data.md5 or len(reference["verdicts"]) != len(samples):
        raise SystemExit("the evalplus verdicts are not of these samples or of this data version")
    known = dict(item.split("=", 1) for item in args.known)
    started = time.perf_counter()
    with Sandbox(evalplus_sandbox_config()) as sandbox:
        oracles, origin = load_oracles(list(tasks.values()), sandbox, args.cache)
        oracle_s = time.perf_counter() - started
        ours = judge_programs(tasks, oracles, [(s["task_id"], s["solution"]) for s in samples], sandbox)
    judge_s = time.perf_counter() - started - oracle_s

    table: dict[str, Counter] = defaultdict(Counter)
    differences = []
    for sample, verdict, (task_id, their_base, their_plus) in zip(samples, ours, reference["verdicts"]):
        assert task_id == sample["task_id"]
        kind = sample.get("kind", "?")
        pairs = {"base": (verdict.base == "pass", their_base == "pass"),
                 "plus": (verdict.plus == "pass", their_plus == "pass")}
        table[kind]["samples"] += 1
        for part, (mine, theirs) in pairs.items():
            table[kind][f"{part} pass (ours)"] += mine
            table[kind][f"{part} pass (evalplus)"] += theirs
            if mine != theirs:
                reason = BY_DESIGN.get(kind) or EVALPLUS_BUG.get(task_id) or known.get(task_id) or "UNEXPLAINED"
                differences.append((kind, task_id, part, mine, theirs, reason, sample.get("mutant", "")))
    unexplained = [d for d in differences if d[5] == "UNEXPLAINED"]
    columns = ["samples", "base pass (ours)", "base pass (evalplus)", "plus pass (ours)", "plus pass (evalplus)"]
    lines = [f"# Verdict parity: {name} ({data.version}, md5 {data.md5}) against evalplus {reference['evalplus_version']}",
             "", f"{len(samples)} samples on {len(tasks)} tasks, each judged on its base and its plus inputs "
             f"(as EvalPlus reports them: the plus set on its own). Expected outputs: {origin}.", "",
             f"Agreement: {2 * len(samples) - len(differences)} of {2 * len(samples)} verdicts; "
             f"{len(differences) - len(unexplained)} differences explained below, {len(unexplained)} unexplained.", "",
             "| kind | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for kind, counts in sorted(table.items()):
        lines.append(f"| {kind} | " + " | ".join(str(counts[c]) for c in columns) + " |")
    lines += ["", "## Differences, by reason", ""]
    by_reason: dict[str, list[tuple]] = defaultdict(list)
    for difference in differences:
        by_reason[difference[5]].append(difference)
    for reason, items in sorted(by_reason.items(), key=lambda kv: kv[0] == "UNEXPLAINED"):
        lines += [f"- **{reason}**: {len(items)} verdicts: " + "; ".join(
            f"{task_id} {part} ({kind}{': ' + mutant if mutant else ''}; ours {'pass' if mine else 'fail'}, "
            f"evalplus {'pass' if theirs else 'fail'})" for kind, task_id, part, mine, theirs, _, mutant in items)]
    if not differences:
        lines.append("None.")
    lines += ["", "## Times (same machine, not the same moment)", "",
              f"- this judge: expected outputs {oracle_s:.1f} s ({origin.split(':')[0]}), judging {judge_s:.1f} s",
              f"- evalplus: ground truth {reference['seconds']['ground_truth']:.1f} s "
              f"({'cached' if reference.get('ground_truth_cached') else 'computed'}), judging "
              f"{reference['seconds']['judging']:.1f} s (parallel {reference.get('parallel')})", ""]
    Path(args.report).parent.mkdir(parents=True, exist_ok=True)
    Path(args.report).write_text("\n".join(lines))
    print(f"{name}: {2 * len(samples) - len(differences)}/{2 * len(samples)} verdicts agree; "
          f"{len(unexplained)} unexplained differences; report {args.report}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
