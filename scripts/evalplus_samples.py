"""Parity sample sets for HumanEval+ / MBPP+: solutions to judge with both EvalPlus and our own judge.

    .venv/bin/python scripts/evalplus_samples.py --dataset humaneval \\
        --data datasets_build/data/HumanEvalPlus-v0.1.10.jsonl.gz \\
        --out /tmp/evalplus_parity/humaneval_samples.jsonl [--per_task 3] [--seed 0]

For every task of the release file:
- ``canonical``: prompt + canonical_solution (what EvalPlus itself runs for the expected outputs);
- ``empty``: the function with a body of ``pass`` (HumanEval+: the prompt then ``    pass``; MBPP+,
  whose prompt is only a docstring: ``def <entry_point>(*args): pass``);
- ``mutant``: up to --per_task single-edit mutants of the canonical solution
  (rewards.mutation.generate_mutants, deterministic for a seed); some may be equivalent to it.
Hand-made wrong kinds on some tasks, each the same stub as ``empty`` with another body:
- ``none`` (returns None) and ``raise`` (raises), each on every fifth task;
- ``lying_eq`` (returns an object whose ``__eq__`` always says True), on every fifth task: EvalPlus
  compares with ``out == expected`` and passes it where no special oracle intervenes; our judge fails
  it by design, so these are expected differences in a parity report;
- ``loop`` (``while True: pass``) on a handful of tasks only, for the time limits without a slow run.
Each record: {"task_id", "solution", "kind", "mutant": the mutant's edit, or ""}.
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rewards.mutation import generate_mutants  # noqa: E402

KINDS = ("canonical", "empty", "mutant", "none", "raise", "loop", "lying_eq")
WRONG_KINDS = ("mutant", "none", "raise", "loop")  # lying_eq is wrong too, but EvalPlus passes most of them
HANDMADE_BODIES: dict[str, list[str]] = {
    "none": ["return None"],
    "raise": ['raise RuntimeError("wrong on purpose")'],
    "loop": ["while True:", "    pass"],
    "lying_eq": ["class A:", "    def __eq__(s, o):", "        return True", "return A()"],
}
EVERY = 5  # none, raise and lying_eq: one task in EVERY each, at offsets 0, 1, 2
LOOP_TASKS = 5  # loop: this many tasks, spread over the dataset


def load_tasks(path: str | Path) -> list[dict]:
    """The release file's records (.jsonl.gz or .jsonl), in file order."""
    path = str(path)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def canonical_solution(task: dict) -> str:
    return task["prompt"] + task["canonical_solution"]


def stub_solution(task: dict, dataset: str, body: list[str]) -> str:
    """The task's function with ``body`` (lines, indented here). HumanEval+ prompts end with the
    entry point's signature and docstring (after any helpers); MBPP+ prompts are only a docstring."""
    text = "".join(f"    {line}\n" for line in body)
    if dataset == "humaneval":
        prompt = task["prompt"]
        return prompt + ("" if prompt.endswith("\n") else "\n") + text
    if dataset == "mbpp":
        return f"def {task['entry_point']}(*args):\n" + text
    raise ValueError(f"unknown dataset {dataset!r}")


def handmade_kinds(index: int, n_tasks: int) -> list[str]:
    """The hand-made wrong kinds of the index-th of n_tasks tasks."""
    kinds = [kind for offset, kind in enumerate(("none", "raise", "lying_eq")) if index % EVERY == offset]
    if n_tasks <= LOOP_TASKS:
        loops = set(range(n_tasks))
    else:  # the middles of LOOP_TASKS equal stretches
        loops = {(2 * k + 1) * n_tasks // (2 * LOOP_TASKS) for k in range(LOOP_TASKS)}
    if index in loops:
        kinds.append("loop")
    return kinds


def build_samples(tasks: list[dict], dataset: str, per_task: int = 3, seed: int = 0) -> list[dict]:
    """The parity samples of every task, task by task in file order."""
    samples: list[dict] = []

    def add(task: dict, solution: str, kind: str, mutant: str = "") -> None:
        samples.append({"task_id": task["task_id"], "solution": solution, "kind": kind, "mutant": mutant})

    for index, task in enumerate(tasks):
        canonical = canonical_solution(task)
        add(task, canonical, "canonical")
        add(task, stub_solution(task, dataset, ["pass"]), "empty")
        for m in generate_mutants(canonical, per_task, seed):
            add(task, m.source if m.source.endswith("\n") else m.source + "\n", "mutant",
                f"{m.operator} (line {m.line}): {m.description}")  # fmt: skip
        for kind in handmade_kinds(index, len(tasks)):
            add(task, stub_solution(task, dataset, HANDMADE_BODIES[kind]), kind)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["humaneval", "mbpp"], required=True)
    parser.add_argument("--data", required=True, help="the release file (.jsonl.gz or .jsonl)")
    parser.add_argument("--out", required=True, help="the samples (jsonl)")
    parser.add_argument("--per_task", type=int, default=3, help="most mutants per task")
    parser.add_argument("--seed", type=int, default=0, help="the mutants' seed")
    args = parser.parse_args()
    if args.per_task < 0:
        parser.error("--per_task must be >= 0")
    tasks = load_tasks(args.data)
    samples = build_samples(tasks, args.dataset, args.per_task, args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w", encoding="utf-8") as f:
        for sample in samples:
            f.write(json.dumps(sample) + "\n")
    counts = Counter(sample["kind"] for sample in samples)
    wrong = sum(counts[kind] for kind in WRONG_KINDS)
    print(
        f"{args.dataset}: {len(tasks)} tasks, {len(samples)} samples ("
        + ", ".join(f"{kind} {counts[kind]}" for kind in KINDS)
        + f"; wrong {wrong}) -> {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
