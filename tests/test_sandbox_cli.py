"""The sandbox's interface: the job and result schema, and ``python -m sandbox run``.

Bad jobs are untrusted input (dataset rows, model output): each must be refused before anything
runs, with a message that names the field (or the line, on the command line).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox import Job, JobError, Result, Sandbox, SandboxConfig
from sandbox import TestVerdict as Verdict  # not collected by pytest under this name

REPO = Path(__file__).resolve().parent.parent
SQUARE = {"program": "def f(x):\n    return x * x\n", "tests": ["assert f(3) == 9"], "entry_point": "f"}
STATUSES = {"passed", "failed", "error", "timeout", "infra_error"}


@pytest.fixture(scope="module")
def sb():
    with Sandbox(SandboxConfig()) as sandbox:
        yield sandbox


def cli(*args: str, stdin: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sandbox", "run", "--workers", "1", *args], input=stdin,
                          capture_output=True, text=True, cwd=REPO, timeout=120)


# -- result schema ----------------------------------------------------------------------------
def test_result_schema(sb):
    tests = ("assert f(1) == 1", "assert f(1) == 2", "f(", "import os\nos.kill(os.getpid(), 9)")
    job = Job(program="def f(x):\n    return x\n", tests=tests, entry_point="f", timeout=2.0)
    res = sb.run(job)
    data = res.to_dict()
    assert set(data) == {"status", "passed", "total", "tests", "isolation", "flags", "duration_s"}
    assert data["status"] in STATUSES and data["status"] == "error"
    assert (data["passed"], data["total"]) == (1, 4) and res.pass_rate == 0.25
    assert [t["status"] for t in data["tests"]] == ["passed", "failed", "error", "error"]
    assert all(set(t) == {"status", "detail", "duration_s"} and isinstance(t["detail"], str) for t in data["tests"])
    assert all(isinstance(t["duration_s"], float) and t["duration_s"] >= 0 for t in data["tests"])
    assert data["isolation"] == "namespaces"
    assert isinstance(data["flags"], list) and all(isinstance(f, str) for f in data["flags"])
    assert isinstance(data["duration_s"], float) and data["duration_s"] >= 0
    assert json.loads(json.dumps(data)) == data  # JSON-shaped all the way down


def test_job_round_trips_through_a_dict():
    job = Job.from_dict({**SQUARE, "setup": "y = 1", "timeout": 2})
    assert job.timeout == 2.0 and job.tests == ("assert f(3) == 9",)
    assert Job.from_dict(job.to_dict()) == job
    assert json.loads(json.dumps(job.to_dict())) == job.to_dict()


def test_run_many_keeps_order_and_accepts_dicts(sb):
    jobs = [{"program": f"def f():\n    return {i}\n", "tests": [f"assert f() == {i if i % 3 else -1}"]}
            for i in range(8)]
    seen = []
    results = sb.run_many(jobs, on_result=lambda i, r: seen.append(i))
    assert [r.status for r in results] == ["failed" if i % 3 == 0 else "passed" for i in range(8)]
    assert sorted(seen) == list(range(8))
    assert sb.run_many([]) == []


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"tests": ["assert True"]}, "program"),
        ({"program": 3, "tests": []}, "program"),
        ({"program": "", "tests": "assert True"}, "tests"),
        ({"program": "", "tests": ["ok", 3]}, "tests"),
        ({"program": "", "tests": [], "timeout": 0}, "timeout"),
        ({"program": "", "tests": [], "timeout": -1}, "timeout"),
        ({"program": "", "tests": [], "timeout": float("nan")}, "timeout"),
        ({"program": "", "tests": [], "timeout": float("inf")}, "timeout"),
        ({"program": "", "tests": [], "timeout": "5"}, "timeout"),
        ({"program": "", "tests": [], "timeout": True}, "timeout"),
        ({"program": "", "tests": [], "entry_point": "not valid"}, "entry_point"),
        ({"program": "", "tests": [], "entry_point": "f()"}, "entry_point"),
        ({"program": "", "tests": [], "entry_point": 7}, "entry_point"),
        ({"program": "", "tests": [], "setup": ["x = 1"]}, "setup"),
        ({"program": "", "tests": [], "language": "python"}, "language"),
        (["program", "tests"], "object"),
    ],
)
def test_bad_jobs_are_refused_naming_the_field(bad, message):
    with pytest.raises(JobError, match=message):
        Job.from_dict(bad)


def test_a_bad_job_in_a_batch_runs_nothing(sb):
    before = sb.jobs_run
    with pytest.raises(JobError, match="tests"):
        sb.run_many([SQUARE, {"program": "", "tests": "x"}])
    assert sb.jobs_run == before


@pytest.mark.parametrize("field, value", [("workers", 0), ("timeout_s", 0), ("job_timeout_s", -1), ("memory_bytes", 0),
                                          ("max_processes", 0), ("extra_env", {"HF_TOKEN": "x"})])
def test_bad_configs_are_refused(field, value):
    with pytest.raises(ValueError, match=field if field != "extra_env" else "token"):
        SandboxConfig(**{field: value})


def test_verdict_and_result_types_are_plain_data():
    res = Result.from_verdicts([Verdict("passed"), Verdict("timeout", "slow"), Verdict("failed")],
                               "namespaces", ["b", "a", "a"], 1.23456)
    assert (res.status, res.passed, res.total, res.flags, res.duration_s) == ("timeout", 1, 3, ["a", "b"], 1.2346)


# -- command line -----------------------------------------------------------------------------
def test_cli_runs_one_job():
    proc = cli(stdin=json.dumps(SQUARE))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1
    result = json.loads(lines[0])
    assert result["status"] == "passed" and result["total"] == 1 and result["isolation"] == "namespaces"


def test_cli_jsonl_keeps_the_order_of_jobs():
    jobs = [SQUARE, {**SQUARE, "tests": ["assert f(3) == 10"]}, {**SQUARE, "program": "def f(x)\n"}]
    proc = cli("--jsonl", stdin="\n".join(json.dumps(j) for j in jobs) + "\n\n")
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["status"] for r in results] == ["passed", "failed", "error"]
    assert "SyntaxError" in results[2]["tests"][0]["detail"]


def test_cli_malformed_json_names_the_line_and_runs_nothing():
    text = json.dumps(SQUARE) + "\n{\"program\": \n" + json.dumps(SQUARE) + "\n"
    proc = cli("--jsonl", stdin=text)
    assert proc.returncode == 2
    assert "line 2" in proc.stderr
    assert proc.stdout == ""


def test_cli_invalid_job_names_the_line_and_the_field():
    text = "\n".join([json.dumps(SQUARE), json.dumps(SQUARE), json.dumps({**SQUARE, "timeout": -3})])
    proc = cli("--jsonl", stdin=text)
    assert proc.returncode == 2
    assert "line 3" in proc.stderr and "timeout" in proc.stderr
    assert proc.stdout == ""


@pytest.mark.parametrize("stdin, args", [("", ()), ("not json", ()), ("", ("--jsonl",)),
                                         (json.dumps(SQUARE), ("--timeout", "0"))])
def test_cli_refuses_bad_input_with_exit_status_2(stdin, args):
    proc = cli(*args, stdin=stdin)
    assert proc.returncode == 2, proc
    assert proc.stderr.strip() and proc.stdout == ""
    assert "Traceback" not in proc.stderr


def test_cli_refuses_an_unknown_isolation_tier():
    proc = cli("--min-isolation", "containers", stdin=json.dumps(SQUARE))
    assert proc.returncode == 2 and "min-isolation" in proc.stderr
