"""Starting the sandbox: the zygote's rehearsal, the pool's restart counter, and the start-up stress.

A worker restart reruns the job on a fresh worker, so the verdict usually survives it; but a
verdict must not depend on a restart going well, so starting must never need one.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import sandbox.__main__ as cli
from sandbox import Job, Sandbox, SandboxConfig, candidate, wire

REPO = Path(__file__).resolve().parent.parent
SQUARE = Job(program="def f(x):\n    return x * x\n", tests=("assert f(3) == 9", "assert f(2) == 5"), entry_point="f")


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("part_after_s", [0.0, None])
def test_rehearsal_sends_its_parts_to_a_valid_descriptor(monkeypatch, part_after_s):
    """The bug: the stand-in candidate had fd -1, and when its calls took longer than PART_AFTER_S
    (a loaded machine) ``handle`` sent a "part" through it: EBADF killed the spawner and the pool
    restarted the worker, one start in 12 to 30. With PART_AFTER_S 0 that path is always taken."""
    if part_after_s is not None:
        monkeypatch.setattr(candidate, "PART_AFTER_S", part_after_s)
    configured = candidate.PART_AFTER_S
    sent: list[tuple[int, str]] = []
    real_send = wire.send

    def spy(fd: int, payload: bytes) -> None:
        sent.append((fd, wire.loads(payload, lambda rid: None)[0]))
        real_send(fd, payload)  # raises EBADF on an invalid descriptor, as in the zygote

    monkeypatch.setattr(wire, "send", spy)
    before = _open_fds()
    candidate.rehearse()
    assert "part" in [op for _, op in sent]  # the part path runs on every start, loaded or not
    assert [op for _, op in sent][-1] == "ok" and all(fd >= 0 for fd, _ in sent)
    assert _open_fds() == before  # its /dev/null descriptor is closed again
    assert candidate.PART_AFTER_S == configured  # and the threshold restored


def _kill_worker(sb: Sandbox, slot: int = 0) -> None:
    worker = sb._workers[slot]
    os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait()


def test_restarts_counts_a_replaced_worker_and_the_verdict_survives():
    with Sandbox(SandboxConfig(workers=1)) as sb:
        assert sb.restarts == 0
        first = sb.run(SQUARE)
        assert (first.status, first.passed, first.total) == ("failed", 1, 2) and sb.restarts == 0
        _kill_worker(sb)
        again = sb.run(SQUARE)
        assert (again.status, again.passed, again.total) == ("failed", 1, 2)
        assert sb.restarts == 1
        assert sb.run(SQUARE).status == "failed" and sb.restarts == 1  # the fresh worker keeps working


def test_cli_reports_restarts_on_stderr_and_keeps_stdout_results_only(monkeypatch, capsys):
    class KillsItsWorker(Sandbox):
        def run_many(self, jobs, on_result=None):
            _kill_worker(self)
            return super().run_many(jobs, on_result)

    monkeypatch.setattr(cli, "Sandbox", KillsItsWorker)
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"program": "def f(x):\\n    return x", "tests": ["assert f(1) == 1"]}'))
    assert cli.main(["run", "--workers", "1"]) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 1 and '"status": "passed"' in out
    assert "warning: sandbox: 1 worker restart(s) during this run" in err


def test_cli_says_nothing_about_restarts_when_there_were_none():
    done = subprocess.run([sys.executable, "-m", "sandbox", "run", "--workers", "1"], input=json.dumps(SQUARE.to_dict()),
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0 and "restart" not in done.stderr


@pytest.mark.slow
def test_start_up_stress_has_no_worker_restarts():
    """``python -m sandbox.stress`` on a small scale (the acceptance run is 300 starts, README)."""
    done = subprocess.run([sys.executable, "-m", "sandbox.stress", "--starts", "20", "--load", "2"],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    last = done.stdout.strip().splitlines()[-1]
    assert "stress: 20 starts" in last and "restarts=0 wrong_verdicts=0 failed_starts=0" in last, done.stdout
    assert done.returncode == 0, done.stdout + done.stderr
