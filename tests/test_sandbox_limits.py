"""Resource limits: runaway programs end as verdicts on themselves, never as sandbox failures.

Each limit is hit for real (a loop that never ends, a 4 GiB allocation, a 100 MB file, a burst of
forks, a crash). Besides the verdict, every test checks that the sandbox still runs the next job.
"""

from __future__ import annotations

import json
from textwrap import dedent

import pytest

from sandbox import Job, Result, Sandbox, SandboxConfig

CONFIG = SandboxConfig(workers=2)


@pytest.fixture(scope="module")
def sb():
    with Sandbox(CONFIG) as sandbox:
        yield sandbox


def run(sb: Sandbox, program: str, *tests: str, timeout: float = 3.0) -> Result:
    return sb.run(Job(program=dedent(program), tests=tuple(tests), entry_point="f", timeout=timeout))


def explain(result: Result) -> str:
    return f"{result.status} {result.flags}: " + "; ".join(f"{t.status}: {t.detail}" for t in result.tests)


def assert_still_works(sb: Sandbox) -> None:
    res = run(sb, "def f(x):\n    return x * x\n", "assert f(3) == 9", "assert f(3) == 10")
    assert [t.status for t in res.tests] == ["passed", "failed"], explain(res)


# -- time -------------------------------------------------------------------------------------
LOOP_ON_3 = "def f(x):\n    while x == 3:\n        pass\n    return x\n"


def test_an_endless_loop_times_out_and_the_other_tests_still_run(sb):
    res = run(sb, LOOP_ON_3, "assert f(1) == 1", "assert f(3) == 3", "assert f(4) == 4", "assert f(5) == 6",
              timeout=1.0)
    assert [t.status for t in res.tests] == ["passed", "timeout", "passed", "failed"], explain(res)
    assert res.status == "timeout"
    # Not cut short, and not left to run on (generous bound: this machine is shared).
    assert 1.0 <= res.duration_s < 10.0, res.duration_s


def test_an_endless_loop_while_loading_times_out_every_test(sb):
    res = run(sb, "while True:\n    pass\n\ndef f(x):\n    return x\n", "assert f(1) == 1", "assert f(2) == 2",
              timeout=1.0)
    assert [t.status for t in res.tests] == ["timeout", "timeout"], explain(res)


def test_ignoring_signals_does_not_escape_the_time_limit(sb):
    program = """\
        import signal
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGALRM, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_IGN)

        def f(x):
            while x == 3:
                try:
                    pass
                except BaseException:
                    pass
            return x
        """
    res = run(sb, program, "assert f(3) == 3", "assert f(1) == 1", timeout=1.0)
    assert [t.status for t in res.tests] == ["timeout", "passed"], explain(res)
    assert_still_works(sb)


def test_a_test_that_loops_by_itself_times_out(sb):
    res = run(sb, "def f(x):\n    return x\n", "while True:\n    pass\n", "assert f(2) == 2", timeout=1.0)
    assert [t.status for t in res.tests] == ["timeout", "passed"], explain(res)


def test_the_job_time_limit_times_out_the_tests_not_reached():
    # Tests take 0.5 s each against a 2 s job limit: the first two finish with time to spare, the
    # last two could only finish after 2.5 s and 3 s.
    program = "import time\n\ndef f(x):\n    time.sleep(0.5)\n    return x\n"
    tests = tuple(f"assert f({i}) == {i}" for i in range(6))
    with Sandbox(SandboxConfig(workers=1, job_timeout_s=2.0)) as sandbox:
        res = sandbox.run(Job(program=program, tests=tests, entry_point="f", timeout=1.5))
        assert [t.status for t in res.tests[:2]] == ["passed", "passed"], explain(res)
        assert [t.status for t in res.tests[4:]] == ["timeout", "timeout"], explain(res)
        assert all("job" in t.detail for t in res.tests if t.status == "timeout"), explain(res)
        assert res.status == "timeout" and res.duration_s < 10.0
        assert_still_works(sandbox)


# -- memory and disk --------------------------------------------------------------------------
def test_allocating_4_gib_is_a_memory_error(sb):
    res = run(sb, "def f():\n    return len(bytearray(4 * 2**30))\n", "assert f() == 4 * 2**30")
    assert res.tests[0].status == "error" and "MemoryError" in res.tests[0].detail, explain(res)
    assert_still_works(sb)


def test_growing_memory_step_by_step_is_stopped(sb):
    program = "def f():\n    chunks = []\n    while True:\n        chunks.append(bytearray(64 * 2**20))\n"
    res = run(sb, program, "assert f() == 1", timeout=5.0)
    assert res.tests[0].status == "error", explain(res)
    assert_still_works(sb)


def test_a_test_allocating_too_much_errors_only_itself(sb):
    res = run(sb, "def f(x):\n    return x\n", "big = bytearray(4 * 2**30)\nassert f(1) == 1", "assert f(2) == 2")
    assert [t.status for t in res.tests] == ["error", "passed"], explain(res)


def test_writing_a_100_mb_file_is_an_error(sb):
    program = """\
        def f():
            with open("big.bin", "wb") as fh:
                for _ in range(100):
                    fh.write(b"x" * 2**20)
            return 1
        """
    res = run(sb, program, "assert f() == 1")
    assert res.tests[0].status == "error", explain(res)
    assert "File too large" in res.tests[0].detail or "No space" in res.tests[0].detail, explain(res)
    assert_still_works(sb)


def test_filling_the_scratch_with_many_files_is_an_error(sb):
    program = """\
        def f():
            for i in range(100):
                with open(f"part{i}.bin", "wb") as fh:
                    fh.write(b"x" * 8 * 2**20)
            return 1
        """
    res = run(sb, program, "assert f() == 1")
    assert res.tests[0].status == "error" and "No space" in res.tests[0].detail, explain(res)
    assert_still_works(sb)


# -- processes --------------------------------------------------------------------------------
def test_a_burst_of_forks_is_bounded(sb):
    # Guarded: each child sleeps then exits, so even an unbounded run cannot take the machine down.
    program = """\
        import os, time

        def f(n):
            started = 0
            for _ in range(n):
                try:
                    pid = os.fork()
                except OSError:
                    break
                if pid == 0:
                    time.sleep(5)
                    os._exit(0)
                started += 1
            return started
        """
    res = run(sb, program, f"n = f(200)\nassert n < {CONFIG.max_processes}, n", timeout=5.0)
    assert res.status == "passed", explain(res)
    assert "process_spawn" in res.flags
    assert_still_works(sb)


# -- output and values ------------------------------------------------------------------------
def test_huge_output_does_not_bloat_the_result(sb):
    program = """\
        import sys

        def f():
            for _ in range(200):
                sys.stdout.write("x" * 10**6)
                sys.stderr.write("y" * 10**6)
            return 1
        """
    res = run(sb, program, "assert f() == 1", "assert f() == 2", timeout=10.0)
    assert [t.status for t in res.tests] == ["passed", "failed"], explain(res)
    assert len(json.dumps(res.to_dict())) < 10_000


def test_huge_failure_messages_are_cut(sb):
    res = run(sb, "def f():\n    return 'z' * 10**6\n", "assert f() == 'a', f()")
    assert res.tests[0].status == "failed"
    assert len(res.tests[0].detail) <= CONFIG.max_detail_chars
    assert len(json.dumps(res.to_dict())) < 10_000


def test_a_huge_return_value_is_an_error_naming_the_limit(sb):
    res = run(sb, "def f():\n    return list(range(10**7))\n", "assert len(f()) == 10**7", timeout=10.0)
    verdict = res.tests[0]
    assert verdict.status in ("passed", "error"), explain(res)
    if verdict.status == "error":
        assert "too large" in verdict.detail or "limit" in verdict.detail, explain(res)
    assert_still_works(sb)


def test_a_huge_argument_from_the_test_is_an_error_not_a_crash(sb):
    res = run(sb, "def f(xs):\n    return len(xs)\n", "assert f(list(range(5 * 10**6))) == 5 * 10**6",
              "assert f([1]) == 1", timeout=10.0)
    assert res.tests[0].status in ("passed", "error") and res.tests[1].status == "passed", explain(res)


# -- crashes ----------------------------------------------------------------------------------
def test_a_segfault_is_an_error(sb):
    res = run(sb, "import ctypes\n\ndef f(x):\n    if x:\n        ctypes.string_at(0)\n    return x\n",
              "assert f(1) == 1", "assert f(0) == 0")
    assert [t.status for t in res.tests] == ["error", "passed"], explain(res)


def test_a_segfault_while_loading_errors_every_test(sb):
    program = "import ctypes\nctypes.string_at(0)\n\ndef f(x):\n    return x\n"
    res = run(sb, program, "assert f(1) == 1", "assert f(0) == 0")
    assert [t.status for t in res.tests] == ["error", "error"], explain(res)
    assert_still_works(sb)


def test_infinite_recursion_is_a_recursion_error(sb):
    res = run(sb, "def f():\n    return f()\n", "assert f() == 1")
    assert res.tests[0].status == "error" and "RecursionError" in res.tests[0].detail, explain(res)


def test_deep_recursion_with_a_raised_limit_is_an_error(sb):
    program = "import sys\nsys.setrecursionlimit(10**6)\n\ndef f(n=0):\n    return f(n + 1)\n"
    res = run(sb, program, "assert f() == 1", timeout=5.0)
    assert res.tests[0].status in ("error", "timeout"), explain(res)
    assert_still_works(sb)


def test_deeply_nested_return_values_are_an_error_not_a_crash(sb):
    program = "def f():\n    x = []\n    for _ in range(100000):\n        x = [x]\n    return x\n"
    res = run(sb, program, "assert f() == []", "assert 1 == 1")
    assert res.tests[0].status == "error" and res.tests[1].status == "passed", explain(res)
