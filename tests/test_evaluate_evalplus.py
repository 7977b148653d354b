"""evaluate.py on HumanEval+ / MBPP+: EvalPlus's sample format, base and plus pass@k side by side, where
the data comes from (the packaged copy by default, the override variable, an explicit file), and bad
input (exit code 2, one line). Model-free: completions files only."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from conftest import load_evaluate_cli
from datasets_build import evalplus_release
from datasets_build.evalplus_release import packaged_file

# The release files tracked in git under datasets_build/data/ (a missing one fails, never skips).
HE_FILE = packaged_file("humaneval+")
MBPP_FILE = packaged_file("mbpp+")


cli = load_evaluate_cli("duelcoder_evaluate_cli_plus")


@pytest.fixture(autouse=True)
def _no_evalplus_setup(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No developer's own evalplus setup leaks in: no override variables, an empty evalplus cache."""
    monkeypatch.delenv("HUMANEVAL_OVERRIDE_PATH", raising=False)
    monkeypatch.delenv("MBPP_OVERRIDE_PATH", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def release(path: Path, limit: int) -> list[dict]:
    return [json.loads(line) for line in gzip.open(path).read().splitlines()[:limit]]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_humaneval_plus_reports_base_and_plus_side_by_side(tmp_path: Path) -> None:
    """HumanEval/0..3: canonical solutions (both pass), an empty body (both fail) and, for HumanEval/0, a
    solution right on HumanEval's inputs only (threshold compared with <= instead of <)."""
    tasks = release(HE_FILE, 4)
    records = []
    for task in tasks:
        records.append({"task_id": task["task_id"], "solution": task["prompt"] + task["canonical_solution"]})
        if task["task_id"] == "HumanEval/0":
            subtle = ("def has_close_elements(numbers, threshold):\n    return any(abs(a - b) <= threshold\n"
                      "               for i, a in enumerate(numbers) for b in numbers[i + 1:])\n")
            records.append({"task_id": task["task_id"], "solution": subtle})
        else:
            records.append({"task_id": task["task_id"], "completion": "    pass\n"})
    out = tmp_path / "out"
    code = cli.main(["--benchmark", "humaneval+", "--evalplus_file", str(HE_FILE), "--limit", "4", "--completions",
                     str(write_jsonl(tmp_path / "samples.jsonl", records)), "--ks", "1", "2",
                     "--evalplus_cache", str(tmp_path / "cache"), "--output-dir", str(out)])
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    run = results["runs"]["completions"]
    assert results["evalplus_data"]["version"] == "v0.1.10"
    plus = run["evalplus"]
    # base: HumanEval/0 has 2 of 2 right, the others 1 of 2; plus: 1 of 2 everywhere.
    assert plus["base"]["pass@1"] == pytest.approx((1.0 + 0.5 * 3) / 4) == run["pass@1"]
    assert plus["plus"]["pass@1"] == pytest.approx(0.5)
    assert plus["gap"]["pass@1"] == pytest.approx(0.125)
    assert plus["statuses"] == {"pass/pass": 4, "pass/fail": 1, "fail/fail": 3}
    # per-task verdicts on both input sets, which evaluate.py --compare pairs
    assert [(t["num_correct"], t["num_correct_plus"]) for t in run["tasks"].values()] == [(2, 1), (1, 1), (1, 1), (1, 1)]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [s["evalplus"] for s in samples[:2]] == [{"base": "pass", "plus": "pass"}, {"base": "pass", "plus": "fail"}]
    report = (out / "report.md").read_text()
    assert "## EvalPlus: base and plus inputs" in report and "| base pass@1 | base pass@2 | plus pass@1" in report


def test_mbpp_plus_canonical_solutions_pass(tmp_path: Path) -> None:
    tasks = release(MBPP_FILE, 6)
    records = [{"task_id": t["task_id"], "solution": t["prompt"] + t["canonical_solution"]} for t in tasks]
    out = tmp_path / "out"
    assert cli.main(["--benchmark", "mbpp+", "--evalplus_file", str(MBPP_FILE), "--limit", "6", "--completions",
                     str(write_jsonl(tmp_path / "s.jsonl", records)), "--evalplus_cache", str(tmp_path / "c"),
                     "--output-dir", str(out)]) == 0
    run = json.loads((out / "results.json").read_text())["runs"]["completions"]
    assert run["evalplus"]["base"]["pass@1"] == run["evalplus"]["plus"]["pass@1"] == 1.0


@pytest.mark.parametrize(("args", "expected"), [
    (["--benchmark", "humaneval+", "--evalplus_file", str(MBPP_FILE)], "is MBPP+ v0.2.0 (md5"),
    (["--benchmark", "humaneval+", "--evalplus_file", "/nonexistent.jsonl"], "--evalplus_file"),
    (["--benchmark", "mbpp", "--evalplus_file", str(MBPP_FILE)], "--evalplus_file is for --benchmark humaneval+"),
    (["--benchmark", "mbpp++"], "unknown benchmark 'mbpp++'"),
])
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, args, expected) -> None:
    assert cli.main([*args, "--output-dir", str(tmp_path / "out")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("evaluate.py: error:")]
    assert len(errors) == 1 and expected in errors[0], errors


def test_samples_with_unknown_task_ids_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    samples = write_jsonl(tmp_path / "s.jsonl", [{"task_id": "HumanEval/999", "solution": "def f():\n    pass\n"}])
    assert cli.main(["--benchmark", "humaneval+", "--evalplus_file", str(HE_FILE), "--completions", str(samples),
                     "--output-dir", str(tmp_path / "out")]) == 2
    assert "task_id 'HumanEval/999' is not in the benchmark" in capsys.readouterr().err


def test_a_file_of_another_version_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    lines = gzip.open(HE_FILE).read().splitlines()
    changed = tmp_path / "HumanEvalPlus.jsonl"
    changed.write_bytes(b"\n".join(lines[:-1]) + b"\n")  # one task short: another version
    assert cli.main(["--benchmark", "humaneval+", "--evalplus_file", str(changed),
                     "--output-dir", str(tmp_path / "out")]) == 2
    assert "v0.1.10" in capsys.readouterr().err


def canonical_samples(tmp_path: Path, path: Path, limit: int) -> Path:
    return write_jsonl(tmp_path / "canonical.jsonl",
                       [{"task_id": t["task_id"], "solution": t["prompt"] + t["canonical_solution"]} for t in release(path, limit)])


def test_without_a_file_the_packaged_copy_is_read_and_the_override_variable_comes_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    samples = canonical_samples(tmp_path, HE_FILE, 2)
    common = ["--benchmark", "humaneval+", "--limit", "2", "--completions", str(samples), "--evalplus_cache", str(tmp_path / "c")]
    assert cli.main([*common, "--output-dir", str(tmp_path / "packaged")]) == 0
    results = json.loads((tmp_path / "packaged" / "results.json").read_text())
    assert results["evalplus_data"] == {"origin": f"file:{HE_FILE}", "version": "v0.1.10", "md5": "fe585eb4df8c88d844eeb463ea4d0302"}
    assert results["runs"]["completions"]["evalplus"]["plus"]["pass@1"] == 1.0
    override = tmp_path / "override" / "HumanEvalPlus-v0.1.10.jsonl"  # evalplus's variable names an uncompressed copy
    override.parent.mkdir()
    override.write_bytes(gzip.decompress(HE_FILE.read_bytes()))
    monkeypatch.setenv("HUMANEVAL_OVERRIDE_PATH", str(override))
    assert cli.main([*common, "--output-dir", str(tmp_path / "variable")]) == 0
    assert json.loads((tmp_path / "variable" / "results.json").read_text())["evalplus_data"]["origin"] == f"file:{override}"


def test_a_damaged_packaged_copy_exits_2_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture) -> None:
    damaged = tmp_path / "package" / HE_FILE.name
    damaged.parent.mkdir()
    damaged.write_bytes(HE_FILE.read_bytes()[:100_000])  # a truncated install
    monkeypatch.setattr(evalplus_release, "packaged_file", lambda name: damaged)
    assert cli.main(["--benchmark", "humaneval+", "--limit", "2", "--completions", str(canonical_samples(tmp_path, HE_FILE, 2)),
                     "--output-dir", str(tmp_path / "out")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("evaluate.py: error:")]
    assert len(errors) == 1 and f"{damaged}: the packaged HumanEval+ v0.1.10 release file is damaged (100000 bytes" in errors[0]
