"""Building the DatasetDict: verification in the real sandbox, filters, decontamination, CLI."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from datasets_build import FEATURES, BuildConfig, DatasetFormatError, DefaultSplits, SourceConfig, build_with_report, check_contamination, load_problems
from datasets_build.cli import main
from sandbox import SandboxConfig

SANDBOX = SandboxConfig(timeout_s=10.0, job_timeout_s=120.0, min_isolation="process")


def _task(task_id: str, body: str, *, split: str = "train") -> dict:
    return {
        "task_id": task_id,
        "prompt": 'def halve(n: int) -> int:\n    """Return n divided by two, rounded down."""\n',
        "entry_point": "halve",
        "canonical_solution": body,
        "test": "def check(candidate):\n    assert candidate(4) == 2\n    assert candidate(5) == 2\n    assert candidate(0) == 0\n",
        "split": split,
    }


@pytest.fixture
def custom_file(tmp_path: Path) -> Path:
    path = tmp_path / "custom.jsonl"
    tasks = [_task("Custom/0", "    return n // 2\n"), _task("Custom/1", "    return n / 2\n"), _task("Custom/2", "    return n >> 1\n", split="test")]
    path.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    return path


def test_references_failing_their_tests_are_dropped_with_the_reason(tmp_path: Path, custom_file: Path):
    out = tmp_path / "built"
    config = BuildConfig(sources=("humaneval-mini", str(custom_file)), out=str(out), sandbox=SANDBOX, progress=False)
    built, report = build_with_report(config)
    assert sorted(built) == ["custom_test", "custom_train", "humaneval_mini_test"]
    assert built["humaneval_mini_test"].num_rows == 20 and built["custom_train"]["task_id"] == ["Custom/0"]
    (dropped,) = report.removed["failed"]
    assert dropped.task_id == "Custom/1"
    assert "test 1 `assert halve(5) == 2`: failed" in dropped.reason
    table = report.table()
    assert "Custom/1: failed: test 1" in table
    assert "custom          train" in table and "humaneval-mini  test" in table

    reloaded = load_problems(out, split="humaneval_mini_test")
    assert reloaded.features == FEATURES and reloaded.to_list() == built["humaneval_mini_test"].to_list()
    assert load_problems(out, split="train")["task_id"] == ["Custom/0"]
    assert load_problems(out).num_rows == 22
    with pytest.raises(DatasetFormatError, match="available: "):
        load_problems(out, split="mbpp_train")
    with pytest.raises(DatasetFormatError, match="not a folder written by save_to_disk"):
        load_problems(tmp_path)


def test_curriculum_filters_count_what_they_remove(tmp_path: Path):
    config = BuildConfig(sources=("humaneval-mini",), verify=False, max_reference_lines=2, categories=("arithmetic", "conditionals"))
    built, report = build_with_report(config)
    rows = built["humaneval_mini_test"].to_list()
    assert rows and all(r["reference_lines"] <= 2 and r["category"] in ("arithmetic", "conditionals") for r in rows)
    assert len(rows) + len(report.removed["filtered"]) == 20
    reasons = Counter(d.reason for d in report.removed["filtered"])
    assert set(reasons) == {"reference_lines > 2", "category not in ['arithmetic', 'conditionals']"}

    easy, _ = build_with_report(BuildConfig(sources=("humaneval-mini",), verify=False, difficulties=("easy",)))
    assert set(easy["humaneval_mini_test"]["difficulty"]) == {"easy"}


def test_default_splits_are_decontaminated(mbpp_file: Path):
    config = BuildConfig(verify=False, source=SourceConfig(mbpp_file=str(mbpp_file)))
    built, report = build_with_report(config)
    splits = DefaultSplits()
    assert set(splits.train + splits.evaluation) <= set(built)
    assert sorted(d.task_id for d in report.removed["overlap"]) == ["MBPP/602", "MBPP/704", "MBPP/872"]
    train = [row for key in splits.train for row in built[key]]
    evaluation = [row for key in splits.evaluation for row in built[key]]
    assert check_contamination(train, evaluation) == []


def test_build_config_rejects_bad_options():
    with pytest.raises(ValueError, match="difficulties"):
        BuildConfig(difficulties=("trivial",))
    with pytest.raises(ValueError, match="max_reference_lines"):
        BuildConfig(max_reference_lines=0)
    with pytest.raises(ValueError, match="twice"):
        BuildConfig(sources=("mbpp", "mbpp"))


def test_cli_builds_and_prints_the_summary(tmp_path: Path, custom_file: Path, capsys: pytest.CaptureFixture):
    out = tmp_path / "cli-out"
    code = main(["--sources", f"humaneval-mini,{custom_file}", "--out", str(out), "--no-progress", "--min-isolation", "process"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "total" in printed.out and "Custom/1: failed" in printed.out
    assert load_problems(out, split="custom_test")["task_id"] == ["Custom/2"]


def test_cli_reports_bad_input_as_an_error_message(tmp_path: Path, capsys: pytest.CaptureFixture):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task_id": "x"}\n')
    assert main(["--sources", str(bad), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert f"{bad}:1: field 'prompt': missing" in capsys.readouterr().err
    assert main(["--sources", "nope", "--out", str(tmp_path / "o")]) == 2
    assert "unknown source" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--sources", "humaneval-mini"])  # neither --out nor --push-to-hub


@pytest.mark.slow
def test_offline_build_of_all_sources_keeps_every_humaneval_task(tmp_path: Path, mbpp_file: Path):
    config = BuildConfig(out=str(tmp_path / "all"), source=SourceConfig(mbpp_file=str(mbpp_file)), sandbox=SANDBOX, progress=False)
    built, report = build_with_report(config)
    assert built["humaneval_test"].num_rows == 164
    assert built["humaneval_mini_test"].num_rows == 20
    mbpp = sum(built[k].num_rows for k in ("mbpp_prompt", "mbpp_test", "mbpp_validation", "mbpp_train"))
    assert mbpp >= 950
    assert mbpp + len(report.removed["failed"]) + len(report.removed["overlap"]) == 974
    assert all(d.reason for d in report.removed["failed"])


def test_a_split_whose_every_reference_fails_is_left_out_and_shown_in_the_summary(tmp_path: Path):
    path = tmp_path / "custom.jsonl"
    tasks = [_task("Custom/0", "    return n // 2\n"), _task("Custom/2", "    return n / 2\n", split="test")]
    path.write_text("".join(json.dumps(t) + "\n" for t in tasks))
    out = tmp_path / "built"
    built, report = build_with_report(BuildConfig(sources=(str(path),), out=str(out), sandbox=SANDBOX, progress=False))
    assert sorted(built) == ["custom_train"] and built["custom_train"].features == FEATURES
    assert [row.task_id for row in report.removed["failed"]] == ["Custom/2"]
    assert ["custom", "test", "1", "0", "0", "1", "0"] in [line.split() for line in report.table().splitlines()]
    assert load_problems(out, split="train")["task_id"] == ["Custom/0"]


def test_runs_building_the_cached_datasets_at_once_all_get_the_one_complete_folder(tmp_path: Path, mbpp_file: Path):
    """dataset_folder builds into a staging folder of its own and renames it into place: jobs starting together on
    one machine (or pytest-xdist workers) all end up with the one complete folder, nothing half-written. Processes,
    as in use (threads would also race CPython 3.11's ast.parse, which is not thread-safe). A race: with the shared
    staging folder of before, this failed in 2 of 3 tries."""
    import subprocess
    import sys
    import time

    from datasets_build.selection import TrainingData, dataset_folder

    cache, go = tmp_path / "cache", tmp_path / "go"
    jobs = 3
    # Each job imports, says it is ready, and waits for the go: all then find no folder and build at once.
    job = ("import sys, time\nfrom pathlib import Path\nfrom datasets_build.selection import TrainingData, dataset_folder\n"
           "Path(sys.argv[3] + '.ready' + sys.argv[4]).touch()\n"
           "while not Path(sys.argv[3]).exists():\n    time.sleep(0.01)\n"
           "print(dataset_folder(TrainingData(mbpp_file=sys.argv[1], dataset_cache_dir=sys.argv[2]), Path('unused')))")
    runs = [subprocess.Popen([sys.executable, "-c", job, str(mbpp_file), str(cache), str(go), str(k)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=Path(__file__).resolve().parents[1]) for k in range(jobs)]
    deadline = time.monotonic() + 120
    while not all((tmp_path / f"go.ready{k}").exists() for k in range(jobs)) and time.monotonic() < deadline:
        time.sleep(0.05)
    go.touch()
    outputs = [run.communicate(timeout=300) for run in runs]
    assert [run.returncode for run in runs] == [0] * jobs, [err[-2000:] for _, err in outputs]
    folders = [Path(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert len(set(folders)) == 1 and folders[0].parent == cache
    assert [p.name for p in cache.iterdir()] == [folders[0].name]  # no staging folder left
    assert load_problems(folders[0], split="humaneval_test").num_rows == 164
    data = TrainingData(mbpp_file=str(mbpp_file), dataset_cache_dir=str(cache))
    built = (folders[0] / "dataset_dict.json").stat().st_mtime_ns
    assert dataset_folder(data, tmp_path / "unused") == folders[0]  # built once: the next run reuses it
    assert (folders[0] / "dataset_dict.json").stat().st_mtime_ns == built
