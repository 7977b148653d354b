"""scripts/select_problems.py: RL training problems chosen by a measured solve rate, with known answers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import datasets_build

from conftest import load_module

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "select_problems.py"
sp = load_module("select_problems", SCRIPT)


def _samples(path: Path, statuses: dict[str, list[str]]) -> Path:
    lines = [json.dumps({"run": "adapter", "task_id": task, "index": i, "status": status})
             for task, results in statuses.items() for i, status in enumerate(results)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_pick_keeps_the_problems_solved_sometimes_and_says_how_often(tmp_path):
    samples = _samples(tmp_path / "samples.jsonl", {
        "MBPP/1": ["failed"] * 4,                             # never: no spread in a group
        "MBPP/2": ["passed", "failed", "error", "timeout"],   # 1 of 4
        "MBPP/3": ["passed"] * 4,                             # always: no spread either
        "MBPP/4": ["passed", "passed", "passed", "failed"],   # 3 of 4
    })
    out = tmp_path / "chosen.txt"
    assert sp.main(["pick", str(samples), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.splitlines()[:2] == ["# 2 of 4 problems with 1-3 passing samples",
                                     "# problems by passing samples: 0: 1, 1: 1, 3: 1, 4: 1"]
    assert datasets_build.read_task_ids(out) == ["MBPP/2", "MBPP/4"]  # the file train.py reads
    assert "MBPP/4  # 3/4 passed" in text


def test_pick_refuses_an_empty_choice_and_a_bad_record(tmp_path):
    samples = _samples(tmp_path / "samples.jsonl", {"MBPP/1": ["failed", "failed"]})
    with pytest.raises(SystemExit):
        sp.main(["pick", str(samples), "--out", str(tmp_path / "none.txt")])
    assert not (tmp_path / "none.txt").exists()
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"task_id": "MBPP/1", "status": "passed"}\n{"task_id": "MBPP/2"}\n')
    with pytest.raises(SystemExit, match="broken.jsonl:2: not an evaluate.py sample record"):
        sp.main(["pick", str(broken), "--out", str(tmp_path / "x.txt")])
