"""Choose RL training problems by a measured solve rate (docs/learning.md).

A GRPO group whose samples all pass, or all fail, has zero reward spread on the pass rate and teaches nothing
from execution. So before RL, sample each candidate problem a few times with the adapters RL starts from, and
train on the problems the model solves sometimes, not never and not always:

    # 1. the recipe's training problems (its filters, without its train_task_ids_file)
    .venv/bin/python scripts/select_problems.py candidates --config configs/rl_learn.yaml \
        --out outputs/solve_rates/candidates.txt
    # 2. four staged samples of each, as RL samples them
    .venv/bin/python evaluate.py --benchmark mbpp --split train validation \
        --task_ids_file outputs/solve_rates/candidates.txt --mode staged --num_samples 4 --temperature 0.8 \
        --generator_tokens 16 16 16 16 128 --adapter outputs/bootstrap_learn/final --output_dir outputs/solve_rates/eval
    # 3. the problems with 1 to 3 passing samples of 4, with their counts as comments
    .venv/bin/python scripts/select_problems.py pick outputs/solve_rates/eval/samples.jsonl \
        --min_passed 1 --max_passed 3 --out configs/rl_learn_problems.txt

The recipe then names the file (``train_task_ids_file``). A sample passes when every test of the problem passes
(status ``passed``), as in pass@k.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def candidates(config: str, extra: list[str]) -> list[str]:
    """The task ids of the recipe's training problems, in its order, ignoring its train_task_ids_file."""
    import train

    data = train.parse_config(["--config", config, *extra])[0]
    data.train_task_ids_file = None
    return list(train.training_problems(data)["task_id"])


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
    choose = sub.add_parser("pick", help="write the ids whose passing samples lie in [min_passed, max_passed]")
    choose.add_argument("samples", type=Path)
    choose.add_argument("--min_passed", type=int, default=1)
    choose.add_argument("--max_passed", type=int, default=3)
    choose.add_argument("--out", type=Path, required=True)
    args, extra = parser.parse_known_args(argv)
    if args.command == "candidates":
        ids = candidates(args.config, extra)
        lines = [f"# the {len(ids)} training problems of {args.config}", *ids]
    else:
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if not 0 <= args.min_passed <= args.max_passed:
            parser.error("need 0 <= --min_passed <= --max_passed")
        lines = pick(pass_counts(args.samples), args.min_passed, args.max_passed)
        if len(lines) == 2:
            parser.error(f"no problem of {args.samples} has {args.min_passed}-{args.max_passed} passing samples")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:2]), f"-> {args.out}", sep="\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
