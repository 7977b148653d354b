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


def test_pick_with_eight_samples_keeps_the_band_and_refuses_missing_samples(tmp_path):
    statuses = {f"MBPP/{k}": ["passed"] * k + ["failed"] * (8 - k) for k in range(9)}  # 0..8 of 8
    out = tmp_path / "chosen.txt"
    assert sp.main(["pick", str(_samples(tmp_path / "s.jsonl", statuses)), "--samples", "8",
                    "--min_passed", "1", "--max_passed", "7", "--out", str(out)]) == 0
    assert datasets_build.read_task_ids(out) == [f"MBPP/{k}" for k in range(1, 8)]
    assert out.read_text().splitlines()[0] == "# 7 of 9 problems with 1-7 passing samples"
    statuses["MBPP/3"] = statuses["MBPP/3"][:7]  # one sample missing: the band would shift without a trace
    with pytest.raises(SystemExit, match=r"1 task\(s\) have another number of samples than --samples 8 \(e.g. MBPP/3: 7\)"):
        sp.main(["pick", str(_samples(tmp_path / "t.jsonl", statuses)), "--samples", "8", "--out", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()


def _row(source: str, task_id: str, problem: str, solution: str) -> dict:
    return {"source": source, "task_id": task_id, "problem": problem, "reference_solution": solution,
            "entry_point": "f"}


def test_candidates_hold_out_every_task_the_held_out_benchmark_evaluates():
    """Toy rows: MBPP/1 is MBPP+'s Mbpp/1 (same task), MBPP/2 has another id but MBPP+'s problem text of
    Mbpp/9, MBPP/3 another id but Mbpp/8's reference solution (reformatted, with a docstring); MBPP/4 is new."""
    train = [_row("mbpp", "MBPP/1", "Add one.", "def f(x):\n    return x + 1\n"),
             _row("mbpp", "MBPP/2", "Reverse  a list!", "def f(x):\n    return x[::-1]\n"),
             _row("mbpp", "MBPP/3", "Double it.", "def f(x):\n    return 2 * x\n"),
             _row("mbpp", "MBPP/4", "Square it.", "def f(x):\n    return x * x\n")]
    held_out = [_row("mbpp+", "Mbpp/1", "Add 1 to x.", "def f(y):\n    return y + 1\n"),
                _row("mbpp+", "Mbpp/9", "reverse a list", "def f(xs):\n    return list(reversed(xs))\n"),
                _row("mbpp+", "Mbpp/8", "Twice x.", 'def f(x):\n    """Twice."""\n    return 2*x\n')]
    kept, dropped = sp.decontaminate(train, held_out)
    assert kept == ["MBPP/4"]
    assert dropped == {"MBPP/1": "mbpp+:Mbpp/1 (same task)", "MBPP/2": "mbpp+:Mbpp/9 (same problem text)",
                       "MBPP/3": "mbpp+:Mbpp/8 (same reference solution)"}


def test_candidates_hold_out_mbpp_plus_from_the_real_training_splits():
    """The packaged MBPP against the EvalPlus MBPP+ release: every MBPP+ task drawn from MBPP's train or
    validation split is held out (148 of the 464 candidates, with release v0.2.0)."""
    from datasets_build.evalplus_release import locate_plus_file

    found = locate_plus_file("mbpp+")  # the release file ships with datasets_build: never absent
    assert found is not None and found[0].is_file(), "the packaged MBPP+ release file is missing"
    plus_file = found[0]
    rows = datasets_build.load_problems("mbpp", split=["train", "validation"]).to_list()
    kept, dropped = sp.decontaminate(rows, sp.held_out_rows(str(plus_file)))
    plus_ids = {int(r["task_id"].split("/")[1]) for r in sp.held_out_rows(str(plus_file))}
    assert not any(int(t.split("/")[1]) in plus_ids for t in kept)
    assert len(kept) + len(dropped) == len(rows) == 464 and len(dropped) == 148
