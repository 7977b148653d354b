"""evaluate.py as a command: scoring completions files, its artefacts, its config file, and bad input
(exit code 2 with a one-line message). Model-free: every run here scores precomputed completions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import load_evaluate_cli

from datasets_build.mini import mini_file

ROOT = Path(__file__).resolve().parents[1]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


cli = load_evaluate_cli("duelcoder_evaluate_cli")


def mini_records() -> list[dict]:
    return [json.loads(line) for line in mini_file().read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture
def two_samples_per_task(tmp_path: Path) -> Path:
    """For every HumanEval-mini task: its canonical body, then a body returning None."""
    records = []
    for task in mini_records():
        records.append({"task_id": task["task_id"], "completion": task["canonical_solution"]})
        records.append({"task_id": task["task_id"], "completion": "    return None\n"})
    return write_jsonl(tmp_path / "samples.jsonl", records)


def test_completions_run_writes_results_samples_and_report(tmp_path: Path, two_samples_per_task: Path) -> None:
    out = tmp_path / "out"
    assert cli.main(["--benchmark", "humaneval-mini", "--completions", str(two_samples_per_task),
                     "--ks", "1", "2", "5", "--output-dir", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    run = results["runs"]["completions"]
    n_tasks = len(mini_records())
    assert results["num_tasks"] == run["num_tasks"] == n_tasks
    assert run["pass@1"] == pytest.approx(0.5) and run["pass@2"] == pytest.approx(1.0)
    assert "pass@5" not in run  # only 2 samples per task: pass@5 is undefined
    assert run["syntax_valid_rate"] == 1.0 and run["collapse_rate"] == 0.0
    assert {t["num_correct"] for t in run["tasks"].values()} == {1}
    categories = {task["category"] for task in mini_records()}
    assert set(run["per_category"]) == categories
    assert sum(c["tasks"] for c in run["per_category"].values()) == n_tasks
    assert all(c["pass@1"] == pytest.approx(0.5) for c in run["per_category"].values())

    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 2 * n_tasks
    assert [s["status"] == "passed" for s in samples[:2]] == [True, False]
    report = (out / "report.md").read_text()
    assert "| completions | 50.0% | 100.0% |" in report
    for image in ("pass_at_k.png", "per_category.png", "quality.png"):
        assert f"]({image})" in report
        assert (out / image).read_bytes()[:8] == PNG_MAGIC


def test_config_file_sets_fields(tmp_path: Path, two_samples_per_task: Path) -> None:
    config = tmp_path / "eval.yaml"
    out = tmp_path / "from_yaml"
    config.write_text(f"benchmark: humaneval-mini\ncompletions: {two_samples_per_task}\nks: [1]\n"
                      f"output_dir: {out}\n")
    assert cli.main(["--config", str(config)]) == 0
    run = json.loads((out / "results.json").read_text())["runs"]["completions"]
    assert "pass@1" in run and "pass@2" not in run


def test_script_runs_from_the_repository_root(tmp_path: Path, two_samples_per_task: Path) -> None:
    """`python evaluate.py` puts the repository first on sys.path, where evaluate.py shadows the Hugging
    Face library of the same name; the metric must still load through the library."""
    out = tmp_path / "script"
    proc = subprocess.run([sys.executable, "evaluate.py", "--benchmark", "humaneval-mini", "--completions",
                           str(two_samples_per_task), "--ks", "1", "2", "--output-dir", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "completions: pass@1 50.0%  pass@2 100.0%" in proc.stdout
    assert "sandbox scoring" in proc.stdout


def _bad_completions(tmp_path: Path, second_line: str) -> Path:
    first = json.dumps({"task_id": "HumanEvalMini/0", "completion": "    return a + b\n"})
    path = tmp_path / "bad.jsonl"
    path.write_text(first + "\n" + second_line + "\n")
    return path


def _ids_file(tmp: Path, text: str) -> Path:
    path = tmp / "ids.txt"
    path.write_text(text)
    return path


def test_task_ids_file_evaluates_the_listed_tasks_only(tmp_path: Path) -> None:
    """The listed tasks, in the benchmark's order, whatever the file's order; comments and blank lines ignored."""
    tasks = mini_records()
    good = write_jsonl(tmp_path / "good.jsonl", [{"task_id": t["task_id"], "completion": t["canonical_solution"]}
                                                 for t in tasks])
    chosen = [tasks[7]["task_id"], tasks[2]["task_id"]]
    ids = _ids_file(tmp_path, f"# chosen by hand\n{chosen[0]}  # a comment\n\n{chosen[1]}\n")
    assert cli.main(["--benchmark", "humaneval-mini", "--completions", str(good), "--task_ids_file", str(ids),
                     "--output_dir", str(tmp_path / "out")]) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["num_tasks"] == 2
    scored = [json.loads(line)["task_id"] for line in (tmp_path / "out" / "samples.jsonl").read_text().splitlines()]
    assert scored == [tasks[2]["task_id"], tasks[7]["task_id"]]


@pytest.mark.parametrize(
    ("make_args", "expected"),
    [
        (lambda tmp: ["--benchmark", "humaneval-plus"], "unknown benchmark 'humaneval-plus'"),
        (lambda tmp: ["--benchmark", str(tmp / "missing.jsonl")], "does not exist"),
        (lambda tmp: ["--completions", str(tmp / "none.jsonl")], "does not exist"),
        (lambda tmp: ["--completions", str(_bad_completions(tmp, "{not json"))], "bad.jsonl:2: not valid JSON"),
        (lambda tmp: ["--completions", str(_bad_completions(tmp, '{"task_id": "HumanEvalMini/0"}'))],
         "bad.jsonl:2: task_id and a completion (or solution) must both be strings"),
        (lambda tmp: ["--completions", str(_bad_completions(tmp, '{"task_id": "X/1", "completion": ""}'))],
         "bad.jsonl:2: task_id 'X/1' is not in the benchmark"),
        (lambda tmp: ["--adapter", str(tmp / "no_checkpoint"), "--limit", "1"], "--adapter"),
        (lambda tmp: ["--config", str(tmp / "missing.yaml")], "--config: no such file"),
        (lambda tmp: ["--mode", "chained"], "--mode must be one of"),
        (lambda tmp: ["--engine", "sglang"], "--engine must be transformers or vllm"),
        (lambda tmp: ["--engine_url", "http://127.0.0.1:9"], "--engine_url is the vLLM server's; add --engine vllm"),
        (lambda tmp: ["--engine", "vllm", "--engine_url", "http://127.0.0.1:9", "--limit", "1"],
         "vLLM server at http://127.0.0.1:9 is not reachable"),
        (lambda tmp: ["--num-samples", "3", "--temperature", "0"], "would repeat one greedy sample"),
        (lambda tmp: ["--mbpp-file", str(tmp / "mbpp.jsonl"), "--benchmark", "mbpp"], "--mbpp_file"),
        (lambda tmp: ["--split", "train"], "--split is for --benchmark mbpp"),
        (lambda tmp: ["--benchmark", "mbpp", "--split", "dev"], "--split takes MBPP splits"),
        (lambda tmp: ["--task_ids_file", str(tmp / "nowhere.txt")], "cannot read the task id list"),
        (lambda tmp: ["--task_ids_file", str(_ids_file(tmp, "HumanEvalMini/0\nHumanEval/999\n"))],
         "1 listed task id(s) are not among the 20 problems (first: 'HumanEval/999')"),
        (lambda tmp: ["--task_ids_file", str(_ids_file(tmp, "# nothing\n\n"))], "lists no task id"),
        (lambda tmp: ["--task_ids_file", str(_ids_file(tmp, "HumanEvalMini/0\nHumanEvalMini/0\n"))],
         "ids.txt:2: task id 'HumanEvalMini/0' is listed twice"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, make_args,
                                         expected: str) -> None:
    code = cli.main([*make_args(tmp_path), "--output-dir", str(tmp_path / "out")])
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("evaluate.py: error:")]
    assert code == 2
    assert len(errors) == 1 and expected in errors[0], errors
    assert not (tmp_path / "out" / "results.json").exists()


def test_adapter_folder_without_discriminator_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    checkpoint = tmp_path / "ckpt"
    (checkpoint / "generator").mkdir(parents=True)
    (checkpoint / "generator" / "adapter_config.json").write_text("{}")
    assert cli.main(["--adapter", str(checkpoint), "--limit", "1", "--output-dir", str(tmp_path / "o")]) == 2
    assert "discriminator/" in capsys.readouterr().err


def test_compare_puts_evaluations_side_by_side(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Two finished evaluations (every canonical body; every body returning None) become one report
    with a row and a bar per evaluation; evaluations that were run differently are refused."""
    tasks = mini_records()
    good = write_jsonl(tmp_path / "good.jsonl", [{"task_id": t["task_id"], "completion": t["canonical_solution"]}
                                                 for t in tasks])
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"task_id": t["task_id"], "completion": "    return None\n"}
                                               for t in tasks])
    for name, path in (("good", good), ("bad", bad)):
        assert cli.main(["--benchmark", "humaneval-mini", "--completions", str(path),
                         "--output_dir", str(tmp_path / name)]) == 0
    out = tmp_path / "side_by_side"
    assert cli.main(["--compare", str(tmp_path / "good"), str(tmp_path / "bad"), "--labels", "after", "before",
                     "--output_dir", str(out)]) == 0
    merged = json.loads((out / "results.json").read_text())
    assert list(merged["runs"]) == ["after", "before"]
    assert merged["runs"]["after"]["pass@1"] == 1.0 and merged["runs"]["before"]["pass@1"] == 0.0
    assert [c["label"] for c in merged["compared"]] == ["after", "before"]
    report = (out / "report.md").read_text()
    assert "| after | 100.0% |" in report and "| before | 0.0% |" in report and "## Evaluations compared" in report
    assert (out / "pass_at_k.png").read_bytes().startswith(PNG_MAGIC)
    # every task solved by "after" only: the paired difference is -100 points (before minus after order)
    (paired,) = merged["paired"]
    n = len(tasks)
    assert (paired["first"], paired["second"], paired["metric"]) == ("after", "before", "base")
    assert (paired["both"], paired["first_only"], paired["second_only"], paired["neither"]) == (0, n, 0, 0)
    assert paired["difference"] == -1.0 and paired["mcnemar_p"] == 2 / 2 ** n
    assert "## Paired differences" in report and "after -> before" in capsys.readouterr().out

    assert cli.main(["--benchmark", "humaneval-mini", "--completions", str(bad), "--limit", "5",
                     "--output_dir", str(tmp_path / "short")]) == 0
    capsys.readouterr()
    for args in (["--compare", str(tmp_path / "good"), str(tmp_path / "short")],
                 ["--compare", str(tmp_path / "good"), str(tmp_path / "nowhere")],
                 ["--compare", str(tmp_path / "good")],
                 ["--compare", str(tmp_path / "good"), str(tmp_path / "bad"), "--labels", "one"],
                 ["--labels", "one", "two"]):
        assert cli.main([*args, "--output_dir", str(tmp_path / "refused")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("evaluate.py: error:") and err.count("\n") == 1, err
