"""Choose RL training problems by a measured solve rate (docs/learning.md).

A GRPO group whose samples all pass, or all fail, has zero reward spread on the pass rate and teaches nothing
from execution. So before RL, sample each candidate problem a few times with the adapters RL starts from, and
train on the problems the model solves sometimes, not never and not always. Run 3 (issue 22) samples every
candidate 8 times and keeps the band 1-in-8 .. 7-in-8:

    # 1. every candidate: the recipe's training problems (its filters, without its train_task_ids_file), minus
    #    every task MBPP+ evaluates (held out: MBPP+ takes tasks from MBPP's train and validation splits too)
    .venv/bin/python scripts/select_problems.py candidates --config configs/rl_learn.yaml \
        --out outputs/learning_full/candidates.txt
    # 2. eight staged samples of each, as RL samples them
    .venv/bin/python evaluate.py --benchmark mbpp --split train validation \
        --task_ids_file outputs/learning_full/candidates.txt --mode staged --num_samples 8 --temperature 0.8 \
        --generator_tokens 16 16 16 16 128 --adapter outputs/learning_full/bootstrap_disc/final \
        --output_dir outputs/learning_full/solve_rates
    # 3. the problems with 1 to 7 passing samples of 8, with their counts as comments
    .venv/bin/python scripts/select_problems.py pick outputs/learning_full/solve_rates/samples.jsonl \
        --samples 8 --min_passed 1 --max_passed 7 --out outputs/learning_full/problems.txt

The recipe then names the file (``train_task_ids_file``). A sample passes when every test of the problem passes
(status ``passed``), as in pass@k. A task with another number of samples than ``--samples`` is an error that
names it (a missing sample would shift the band without a trace).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def candidates(config: str, extra: list[str]) -> list[dict]:
    """The recipe's training problems (rows), in its order, ignoring its train_task_ids_file."""
    import train

    argv = ["--config", config, *extra]
    parse = {"sft": train.parse_sft_config, "bootstrap": train.parse_bootstrap_config}.get(train.recipe_job(argv),
                                                                                             train.parse_config)
    data = parse(argv)[0]  # every job's recipe starts with its TrainingData
    data.train_task_ids_file = None
    return train.training_problems(data).to_list()


def held_out_rows(mbpp_plus_file: str | None) -> list[dict]:
    """MBPP+'s rows (the held-out benchmark), from ``--mbpp_plus_file`` or where ``datasets_build.evalplus``
    finds its release file; a clear error when there is none (the selection must not go on unchecked)."""
    from datasets_build import DatasetFormatError
    from datasets_build.evalplus import load_plus_rows

    try:
        return load_plus_rows("mbpp+", mbpp_plus_file, use_hub=False).rows
    except (DatasetFormatError, OSError, ValueError) as err:
        raise SystemExit(f"candidates: MBPP+ is needed to hold its tasks out of training ({err}); pass "
                         "--mbpp_plus_file PATH (EvalPlus's MbppPlus release file)") from None


def decontaminate(rows: list[dict], held_out: list[dict]) -> tuple[list[str], dict[str, str]]:
    """The task ids of ``rows`` that overlap no held-out row (``datasets_build.find_overlaps``: the same task
    whatever the variant, the same problem text, or the same reference solution), and why each other was
    dropped."""
    from datasets_build.contamination import find_overlaps, task_name

    dropped: dict[str, list[str]] = {}
    for overlap in find_overlaps(rows, held_out):
        dropped.setdefault(overlap.train_task, []).append(f"{overlap.eval_task} ({', '.join(overlap.reasons)})")
    kept = [row["task_id"] for row in rows if task_name(row) not in dropped]
    why = {row["task_id"]: "; ".join(dropped[task_name(row)]) for row in rows if task_name(row) in dropped}
    return kept, why


def check_sample_counts(counts: dict[str, tuple[int, int]], samples: int) -> None:
    """Every task must have exactly ``samples`` samples; otherwise exit naming how many and one of them."""
    wrong = {t: n for t, (_, n) in counts.items() if n != samples}
    if wrong:
        task, n = next(iter(wrong.items()))
        raise SystemExit(f"pick: {len(wrong)} task(s) have another number of samples than --samples {samples} "
                         f"(e.g. {task}: {n})")


def pass_counts(samples_file: Path) -> dict[str, tuple[int, int]]:
    """{task_id: (passing samples, samples)} of an evaluate.py samples.jsonl, in the file's order."""
    passed: Counter = Counter()
    total: Counter = Counter()
    for number, line in enumerate(samples_file.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            task_id, status = str(record["task_id"]), record["status"]
        except (ValueError, KeyError, TypeError) as err:
            raise SystemExit(f"{samples_file}:{number}: not an evaluate.py sample record ({err})") from None
        total[task_id] += 1
        passed[task_id] += status == "passed"
    return {task_id: (passed[task_id], n) for task_id, n in total.items()}


def pick(counts: dict[str, tuple[int, int]], min_passed: int, max_passed: int) -> list[str]:
    """The lines of the selection file: a header with the histogram, then one id per chosen problem."""
    histogram = Counter(p for p, _ in counts.values())
    chosen = [(t, p, n) for t, (p, n) in counts.items() if min_passed <= p <= max_passed]
    lines = [f"# {len(chosen)} of {len(counts)} problems with {min_passed}-{max_passed} passing samples",
             "# problems by passing samples: " + ", ".join(f"{p}: {histogram[p]}" for p in sorted(histogram))]
    return lines + [f"{t}  # {p}/{n} passed" for t, p, n in chosen]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    cand = sub.add_parser("candidates", help="write the recipe's training task ids")
    cand.add_argument("--config", required=True)
    cand.add_argument("--out", type=Path, required=True)
    cand.add_argument("--mbpp_plus_file", default=None,
                      help="EvalPlus's MbppPlus release file (default: where datasets_build.evalplus finds it)")
    choose = sub.add_parser("pick", help="write the ids whose passing samples lie in [min_passed, max_passed]")
    choose.add_argument("samples", type=Path)
    choose.add_argument("--min_passed", type=int, default=1)
    choose.add_argument("--max_passed", type=int, default=3)
    choose.add_argument("--samples", dest="samples_per_task", type=int, default=None,
                        help="samples every task must have (e.g. 8); unset: not checked")
    choose.add_argument("--out", type=Path, required=True)
    args, extra = parser.parse_known_args(argv)
    if args.command == "candidates":
        rows = candidates(args.config, extra)
        ids, dropped = decontaminate(rows, held_out_rows(args.mbpp_plus_file))
        lines = [f"# {len(ids)} candidates: the {len(rows)} training problems of {args.config}, less {len(dropped)} "
                 "that MBPP+ evaluates (held out)", *ids]
        if not ids:
            parser.error("no candidate is left after holding out MBPP+'s tasks")
        lines += [f"# held out {task}: overlaps {why}" for task, why in dropped.items()]
    else:
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if not 0 <= args.min_passed <= args.max_passed:
            parser.error("need 0 <= --min_passed <= --max_passed")
        counts = pass_counts(args.samples)
        if args.samples_per_task is not None:
            check_sample_counts(counts, args.samples_per_task)
        lines = pick(counts, args.min_passed, args.max_passed)
        if len(lines) == 2:
            parser.error(f"no problem of {args.samples} has {args.min_passed}-{args.max_passed} passing samples")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:2]), f"-> {args.out}", sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
