"""Converting HumanEval, MBPP, HumanEval-mini and users' JSONL files to the one schema."""

from __future__ import annotations

import ast
import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from datasets_build import COLUMNS, DatasetFormatError, SourceConfig, UnknownSourceError, load_problems
from datasets_build.mini import MINI_CATEGORIES, mini_file
from datasets_build.sources import load_source



@pytest.fixture(scope="module")
def mbpp_rows(mbpp_file: Path) -> list[dict]:
    rows, origin = load_source("mbpp", SourceConfig(use_hub=False, mbpp_file=str(mbpp_file)))
    assert origin == f"file:{mbpp_file}"
    return rows


def test_humaneval_offline_comes_from_the_packaged_file_with_all_164_tasks():
    rows, origin = load_source("humaneval", SourceConfig())
    assert origin.startswith("file:") and origin.endswith("HumanEval.jsonl.gz")
    assert len(rows) == 164 and len({r["task_id"] for r in rows}) == 164
    assert all(set(r) == set(COLUMNS) and r["split"] == "test" and r["source"] == "humaneval" for r in rows)
    first = rows[0]
    assert first["signature"] == "def has_close_elements(numbers: List[float], threshold: float) -> bool:"
    assert first["problem"].startswith("Check if in given list of numbers")
    assert first["context"] == "from typing import List\n"
    assert first["tests"][0] == "assert has_close_elements([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True\n"
    # HumanEval/115 puts `import math` above its docstring; the statement is still found.
    assert rows[115]["problem"].startswith("You are given a rectangular grid of wells.")
    # HumanEval/38's helper encode_cyclic is context the solver is given.
    assert "def encode_cyclic" in rows[38]["context"] and rows[38]["entry_point"] == "decode_cyclic"
    for row in rows:
        compile(row["reference_solution"], row["task_id"], "exec")


def test_mbpp_keeps_official_splits_setup_and_challenge_tests(mbpp_rows: list[dict]):
    assert len(mbpp_rows) == 974
    assert Counter(r["split"] for r in mbpp_rows) == {"prompt": 10, "test": 500, "validation": 90, "train": 374}
    by_id = {r["task_id"]: r for r in mbpp_rows}
    assert by_id["MBPP/10"]["split"] == "prompt" and by_id["MBPP/11"]["split"] == "test"
    assert by_id["MBPP/511"]["split"] == "validation" and by_id["MBPP/601"]["split"] == "train"
    assert all("\r" not in r["reference_solution"] for r in mbpp_rows)
    assert by_id["MBPP/367"]["test_setup"].startswith("root = Node(1)")
    assert sum(bool(r["challenge_tests"]) for r in mbpp_rows) == 11
    # 601's asserts build Pair objects too; the function they test is the entry point.
    assert by_id["MBPP/601"]["entry_point"] == "max_chain_length"
    assert by_id["MBPP/1"]["signature"] == "def min_cost(cost, m, n):"
    assert by_id["MBPP/1"]["problem"].startswith("Write a function to find the minimum cost path")


def test_mbpp_prompt_is_a_completable_humaneval_style_prompt(mbpp_rows: list[dict]):
    for row in mbpp_rows:
        tree = ast.parse(row["prompt"] + "    pass\n")
        func = [n for n in tree.body if isinstance(n, ast.FunctionDef)][-1]
        assert func.name == row["entry_point"]
        assert row["problem"] in ast.get_docstring(func)


def test_humaneval_mini_has_20_checked_tasks_in_four_categories():
    rows, _ = load_source("humaneval-mini", SourceConfig())
    assert [r["task_id"] for r in rows] == [f"HumanEvalMini/{i}" for i in range(20)]
    assert set(Counter(r["category"] for r in rows)) == set(MINI_CATEGORIES)
    records = [json.loads(line) for line in mini_file().read_text().splitlines()]
    for record, row in zip(records, rows):
        check = next(n for n in ast.parse(record["test"]).body if isinstance(n, ast.FunctionDef))
        assert sum(isinstance(s, ast.Assert) for s in check.body) >= 5, record["task_id"]
        assert len(row["tests"]) >= 5 and row["problem"] and row["signature"].startswith("def ")


def _write_jsonl(path: Path, records: list[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


GOOD = {
    "task_id": "Mine/0",
    "prompt": 'def double(x: int) -> int:\n    """Return twice x."""\n',
    "entry_point": "double",
    "canonical_solution": "    return 2 * x\n",
    "test": "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(0) == 0\n",
}


def test_any_humaneval_format_jsonl_loads_by_path(tmp_path: Path):
    path = _write_jsonl(tmp_path / "my_tasks.jsonl", [GOOD, {**GOOD, "task_id": "Mine/1", "split": "train", "category": "arithmetic"}])
    dataset = load_problems(path)
    assert dataset.num_rows == 2 and dataset[0]["source"] == "my_tasks"
    assert dataset[0]["tests"] == ["assert double(2) == 4\n", "assert double(0) == 0\n"]
    assert load_problems(path, split="train")["task_id"] == ["Mine/1"]
    gz = tmp_path / "packed.jsonl.gz"
    with gzip.open(gz, "wt") as handle:
        handle.write(json.dumps(GOOD) + "\n")
    assert load_problems(gz)[0]["task_id"] == "Mine/0"


def test_an_mbpp_format_jsonl_path_is_read_as_mbpp(tmp_path: Path, mbpp_file: Path):
    lines = mbpp_file.read_text().splitlines()[600:603]
    dataset = load_problems(_write_jsonl(tmp_path / "few.jsonl", lines))
    assert dataset["task_id"] == ["MBPP/601", "MBPP/602", "MBPP/603"] and set(dataset["split"]) == {"train"}


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([GOOD, {k: v for k, v in GOOD.items() if k != "entry_point"}], ":2: field 'entry_point': missing"),
        ([GOOD, "{not json"], ":2: not valid JSON"),
        (["[", '  {"task_id": "x"}', "]"], "expected one object per line"),
        (["[1, 2]"], ":1: expected a JSON object per line, got list"),
        ([{**GOOD, "test": 5}], ":1: field 'test': must be str, got int"),
        ([{**GOOD, "test": "def check(candidate):\n    assert candidate(1 ==\n"}], ":1: field 'test': does not compile"),
        ([{**GOOD, "entry_point": "triple"}], ":1: field 'entry_point': no top-level function 'triple'"),
        ([{**GOOD, "canonical_solution": "  return x\n"}], ":1: field 'canonical_solution': prompt + canonical_solution does not compile"),
        ([{**GOOD, "difficulty": "trivial"}], ":1: field 'difficulty': must be one of"),
        ([GOOD, GOOD], ":2: field 'task_id': duplicate task_id 'Mine/0' (first at"),
        ([{**GOOD, "test": "assert double(1) == 2\n"}], ":1: field 'test': must define check(candidate)"),
        ([{**GOOD, "split": "dev set"}], ":1: field 'split': source 'bad' / split 'dev set' must use only"),
    ],
)
def test_bad_humaneval_format_rows_name_the_line_and_field(tmp_path: Path, lines: list, message: str):
    path = _write_jsonl(tmp_path / "bad.jsonl", lines)
    with pytest.raises(DatasetFormatError) as excinfo:
        load_problems(path)
    assert str(excinfo.value).startswith(str(path)) and message in str(excinfo.value)


def test_bad_mbpp_rows_name_the_line_and_field(tmp_path: Path, mbpp_file: Path):
    good = json.loads(mbpp_file.read_text().splitlines()[700])
    cases = [
        ({k: v for k, v in good.items() if k != "test_list"}, "field 'test_list': missing"),
        ({**good, "task_id": "701"}, "field 'task_id': must be int, got str"),
        ({**good, "task_id": 2000}, "field 'task_id': 2000 is outside MBPP's ids 1-974"),
        ({**good, "code": "def broken(:\n"}, "field 'code': does not compile"),
        ({**good, "test_list": ["assert nothing_defined(1) == 1"]}, "field 'test_list': calls none of the functions"),
    ]
    for record, message in cases:
        path = _write_jsonl(tmp_path / "mbpp.jsonl", [good, record])
        with pytest.raises(DatasetFormatError) as excinfo:
            load_source("mbpp", SourceConfig(use_hub=False, mbpp_file=str(path)))
        assert f"{path}:2: {message}" in str(excinfo.value)


def test_files_that_are_not_jsonl_and_unknown_sources_are_rejected(tmp_path: Path):
    binary = tmp_path / "data.jsonl"
    binary.write_bytes(b"PAR1\xff\xfe\x00binary")
    with pytest.raises(DatasetFormatError, match="not a UTF-8 JSON Lines file"):
        load_problems(binary)
    with pytest.raises(UnknownSourceError, match="unknown source: expected one of"):
        load_problems("humaneval-plus")
    with pytest.raises(UnknownSourceError):
        load_problems(tmp_path / "missing.jsonl")
    csv = tmp_path / "tasks.csv"
    csv.write_text("task_id,prompt\n")
    with pytest.raises(UnknownSourceError):
        load_problems(csv)


def test_mbpp_without_hub_or_file_reads_the_packaged_release_and_sanitized_says_what_to_pass():
    rows, origin = load_source("mbpp", SourceConfig())  # the tests run with HF_HUB_OFFLINE=1
    assert origin == "package:datasets_build/data/mbpp.jsonl.gz" and len(rows) == 974
    with pytest.raises(DatasetFormatError, match="--mbpp-sanitized-file"):
        load_source("mbpp-sanitized", SourceConfig())


def test_a_packaged_release_that_is_not_the_original_is_refused(tmp_path, monkeypatch):
    import gzip

    from datasets_build import mbpp

    changed = tmp_path / "mbpp.jsonl.gz"
    original = gzip.decompress(mbpp.packaged_release().read_bytes())
    changed.write_bytes(gzip.compress(original.replace(b"Write a function", b"Write a funktion", 1)))
    monkeypatch.setattr(mbpp, "packaged_release", lambda: changed)
    with pytest.raises(DatasetFormatError, match="not the original release's"):
        load_source("mbpp", SourceConfig(use_hub=False))
