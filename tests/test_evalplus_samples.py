"""scripts/evalplus_samples.py: the parity sample sets for HumanEval+ / MBPP+ (no judging here)."""

from __future__ import annotations

import ast
import gzip
import json
import sys
from collections import Counter
from pathlib import Path

import pytest

from conftest import load_module
from datasets_build.evalplus_release import packaged_file

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "evalplus_samples.py"
# The release files tracked in git under datasets_build/data/ (a missing one fails, never skips).
RELEASES = {"humaneval": packaged_file("humaneval+"), "mbpp": packaged_file("mbpp+")}
# Some MBPP+ solutions have invalid escapes in plain strings ("\w"): they warn when compiled.
pytestmark = pytest.mark.filterwarnings("ignore:invalid escape sequence")


es = load_module("evalplus_samples", SCRIPT)

HE_TASKS = [
    {
        "task_id": "HumanEval/0",
        "entry_point": "add",
        "prompt": 'def helper(x):\n    return x\n\n\ndef add(a: int, b: int) -> int:\n    """Sum.\n    >>> add(1, 2)\n    3\n    """\n',
        "canonical_solution": "    if a < 0:\n        return helper(a) + b\n    return a + b\n",
    },
    {
        "task_id": "HumanEval/1",
        "entry_point": "first",
        "prompt": 'def first(xs):\n    """The first element, or None."""\n',
        "canonical_solution": "    return xs[0] if len(xs) > 0 else None\n",
    },
]  # fmt: skip
MBPP_TASKS = [
    {
        "task_id": "Mbpp/2",
        "entry_point": "similar_elements",
        "prompt": '"""\nShared elements.\nassert set(similar_elements((3, 4), (4, 5))) == set((4,))\n"""\n',
        "canonical_solution": "\ndef similar_elements(a, b):\n    return tuple(set(a) & set(b))\n",
    },
    {
        "task_id": "Mbpp/3",
        "entry_point": "is_not_prime",
        "prompt": '"""\nNon-primes.\nassert is_not_prime(2) == False\n"""\n',
        "canonical_solution": "\ndef is_not_prime(n):\n    for i in range(2, n):\n        if n % i == 0:\n            return True\n    return n < 2\n",
    },
]  # fmt: skip
SYNTHETIC = {"humaneval": HE_TASKS, "mbpp": MBPP_TASKS}


def _defined(solution: str, entry_point: str):
    namespace: dict = {}
    exec(compile(solution, "<sample>", "exec"), namespace)
    return namespace[entry_point]


def _normalised(source: str) -> str:
    return ast.unparse(ast.parse(source))


def _check_sample_set(tasks: list[dict], samples: list[dict]) -> None:
    assert {s["kind"] for s in samples} <= set(es.KINDS)
    by_task: dict[str, Counter] = {}
    for s in samples:
        by_task.setdefault(s["task_id"], Counter())[s["kind"]] += 1
        assert set(s) == {"task_id", "solution", "kind", "mutant"}
        assert bool(s["mutant"]) == (s["kind"] == "mutant")
        compile(s["solution"], s["task_id"], "exec")
    assert list(by_task) == [t["task_id"] for t in tasks]  # task by task, in file order
    for counts in by_task.values():
        assert counts["canonical"] == 1 and counts["empty"] == 1
    canonical = {t["task_id"]: _normalised(es.canonical_solution(t)) for t in tasks}
    for s in samples:
        if s["kind"] == "mutant":
            assert _normalised(s["solution"]) != canonical[s["task_id"]]


@pytest.mark.parametrize("dataset", ["humaneval", "mbpp"])
def test_synthetic_sets_have_every_kind_per_task_and_are_deterministic(dataset: str) -> None:
    tasks = SYNTHETIC[dataset]
    samples = es.build_samples(tasks, dataset, per_task=3, seed=0)
    _check_sample_set(tasks, samples)
    assert samples == es.build_samples(tasks, dataset, per_task=3, seed=0)
    assert sum(s["kind"] == "mutant" for s in samples) >= 4
    per_task = Counter(s["task_id"] for s in samples if s["kind"] == "mutant")
    assert max(per_task.values()) <= 3
    assert not any(s["kind"] == "mutant" for s in es.build_samples(tasks, dataset, per_task=0))


def test_canonical_is_prompt_plus_canonical_solution() -> None:
    task = HE_TASKS[0]
    assert es.canonical_solution(task) == task["prompt"] + task["canonical_solution"]
    assert _defined(es.canonical_solution(task), "add")(2, 3) == 5


def test_empty_stub_humaneval_keeps_the_prompt_and_its_helpers() -> None:
    task = HE_TASKS[0]
    empty = es.stub_solution(task, "humaneval", ["pass"])
    assert empty == task["prompt"] + "    pass\n"
    namespace: dict = {}
    exec(empty, namespace)
    assert namespace["add"](1, 2) is None and namespace["helper"](7) == 7


def test_empty_stub_mbpp_is_a_star_args_function() -> None:
    assert es.stub_solution(MBPP_TASKS[0], "mbpp", ["pass"]) == "def similar_elements(*args):\n    pass\n"
    with pytest.raises(ValueError):
        es.stub_solution(MBPP_TASKS[0], "apps", ["pass"])


@pytest.mark.parametrize("dataset", ["humaneval", "mbpp"])
def test_handmade_bodies_do_what_they_say(dataset: str) -> None:
    task = SYNTHETIC[dataset][0]
    args = (1, 2) if dataset == "humaneval" else ((3, 4), (4, 5))
    assert _defined(es.stub_solution(task, dataset, es.HANDMADE_BODIES["none"]), task["entry_point"])(*args) is None
    with pytest.raises(RuntimeError):
        _defined(es.stub_solution(task, dataset, es.HANDMADE_BODIES["raise"]), task["entry_point"])(*args)
    liar = _defined(es.stub_solution(task, dataset, es.HANDMADE_BODIES["lying_eq"]), task["entry_point"])(*args)
    assert liar == 3 and liar == [1] and liar == None  # noqa: E711 (the lie is the point)
    loop = es.stub_solution(task, dataset, es.HANDMADE_BODIES["loop"])
    assert "while True:\n        pass\n" in loop
    compile(loop, "<loop>", "exec")


@pytest.mark.parametrize("n_tasks", [1, 3, 164, 378])
def test_handmade_kinds_spread(n_tasks: int) -> None:
    kinds = Counter(k for i in range(n_tasks) for k in es.handmade_kinds(i, n_tasks))
    assert kinds["loop"] == min(es.LOOP_TASKS, n_tasks)
    for offset, kind in enumerate(("none", "raise", "lying_eq")):
        assert kinds[kind] == len(range(offset, n_tasks, es.EVERY))


def test_cli_writes_jsonl_and_prints_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    data = tmp_path / "he.jsonl.gz"
    with gzip.open(data, "wt", encoding="utf-8") as f:
        for task in HE_TASKS:
            f.write(json.dumps(task) + "\n")
    out = tmp_path / "out" / "samples.jsonl"
    argv = ["evalplus_samples.py", "--dataset", "humaneval", "--data", str(data), "--out", str(out), "--per_task", "2"]
    monkeypatch.setattr(sys, "argv", argv)
    assert es.main() == 0
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == es.build_samples(HE_TASKS, "humaneval", per_task=2, seed=0)
    printed = capsys.readouterr().out
    assert "canonical 2" in printed and "empty 2" in printed


@pytest.fixture(scope="module", params=sorted(RELEASES))
def release(request) -> tuple[str, list[dict], list[dict]]:
    tasks = es.load_tasks(RELEASES[request.param])
    return request.param, tasks, es.build_samples(tasks, request.param)


def test_release_sets_are_complete_and_have_enough_wrong_samples(release) -> None:
    dataset, tasks, samples = release
    assert len(tasks) == {"humaneval": 164, "mbpp": 378}[dataset]
    _check_sample_set(tasks, samples)
    counts = Counter(s["kind"] for s in samples)
    assert counts["mutant"] >= 300
    assert sum(counts[k] for k in es.WRONG_KINDS) >= 300
    assert counts["loop"] == es.LOOP_TASKS  # a handful: each costs EvalPlus a time limit
    assert counts["lying_eq"] > 0


def test_release_sets_are_deterministic(release) -> None:
    dataset, tasks, samples = release
    assert es.build_samples(tasks, dataset) == samples
    assert es.build_samples(tasks, dataset, seed=1) != samples


def test_release_stubs_define_the_entry_point(release) -> None:
    dataset, tasks, samples = release
    entry = {t["task_id"]: t["entry_point"] for t in tasks}
    for s in samples:
        if s["kind"] in ("empty", "none", "raise", "loop", "lying_eq"):
            defs = [n for n in ast.parse(s["solution"]).body if isinstance(n, ast.FunctionDef)]
            assert defs and defs[-1].name == entry[s["task_id"]], s["task_id"]
