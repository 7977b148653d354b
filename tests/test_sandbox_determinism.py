"""Chance sources are repeatable in the sandbox's processes, and each test's time is reported.

A test reads the values below and asserts they equal what the first run saw (carried in as
literals), so a value that changed between runs, or between two programs, fails the test.
"""

from __future__ import annotations

import json

import pytest

from sandbox import Job, Sandbox, SandboxConfig
from sandbox.link import started_at

PROGRAMS = ("def f(x):\n    return x\n", "import random\n\ndef f(x):\n    return [x][0]\n\nSEED = random.random()\n")
READ = {
    "random": "import random\nvalue = (random.random(), random.randint(0, 10**9))",
    "unseeded Random": "import random\nrandom.seed()\nvalue = (random.random(), random.Random().random())",
    "entropy": "import os, random\nvalue = (os.urandom(8).hex(), random.SystemRandom().random())",
    "uuid and secrets": "import uuid, secrets\nvalue = (str(uuid.uuid4()), secrets.token_hex(8))",
    "clock": "import time\nvalue = (time.time(), time.time_ns(), time.monotonic(), time.perf_counter_ns(), time.process_time())",
    "calendar": "import time, datetime\nvalue = (time.ctime(), time.strftime('%Y%m%d%H%M%S'), str(datetime.datetime.now()), str(datetime.date.today()))",
}


@pytest.fixture(scope="module")
def sb():
    with Sandbox(SandboxConfig(workers=2, min_isolation="process")) as sandbox:
        yield sandbox


def _probe(sb: Sandbox, program: str, read: str) -> object:
    """The value ``read`` computes in a test process, learned through a failing assertion."""
    test = f"{read}\nassert f(1) == 1\nassert False, repr(value)"
    verdict = sb.run(Job(program, (test,))).tests[0]
    assert verdict.status == "failed", verdict.detail
    return verdict.detail


@pytest.mark.parametrize("name", list(READ))
def test_test_processes_read_the_same_chance_every_run_and_for_every_program(sb, name):
    seen = {_probe(sb, program, READ[name]) for program in PROGRAMS for _ in range(3)}
    assert len(seen) == 1, seen


def test_calls_evaluated_in_the_programs_process_read_repeatable_chance(sb):
    calls = ["f(__import__('random').random())", "f(__import__('os').urandom(4).hex())", "f(__import__('time').time())"]
    for call in calls:
        verdicts = {sb.run(Job(program, (f"assert {call} == 'never'",))).tests[0].detail for program in PROGRAMS}
        assert len(verdicts) == 1, verdicts


def test_the_programs_objects_show_no_address(sb):
    program = "class Box:\n    pass\n\ndef f():\n    return Box()\n"
    test = "r = repr(f())\nassert ' at 0x0' in r and r.startswith('<') , r"
    assert sb.run(Job(program, (test,))).status == "passed"


def test_sleep_still_sleeps_and_each_test_reports_its_time(sb):
    program = "import time\n\ndef f(s):\n    time.sleep(s)\n    return s\n"
    tests = ("assert f(0.3) == 0.3", "import time\ntime.sleep(0.2)\nassert f(0) == 0", "assert f(0) == 0", "assert f(5) == 5")
    result = sb.run(Job(program, tests, timeout=1.0))
    quick, slow_test, instant, timed_out = result.tests
    assert [t.status for t in result.tests] == ["passed", "passed", "passed", "timeout"]
    # Lower bounds only (a sleep lasts at least its time; load can only add): no timing assertion.
    assert quick.duration_s >= 0.3 and slow_test.duration_s >= 0.2 and timed_out.duration_s >= 1.0
    assert 0 <= instant.duration_s < quick.duration_s
    assert json.loads(json.dumps(result.to_dict()))["tests"][0]["duration_s"] == round(quick.duration_s, 5)


@pytest.mark.parametrize("tests", [
    ("assert f(0) == 0", "assert f(0.3) == 0.3"),                    # judged by the worker (fast path)
    ("x = f(0)\nassert x == 0", "x = f(0.3)\nassert x == 0.3"),    # each in its own test process
], ids=["fast_path", "test_process"])
def test_a_test_is_timed_from_when_its_program_had_loaded(sb, tests):
    """A test's time starts when its program has loaded, which the candidate (fast path) or the test
    process stamps: the first fast test's calls go out before the load ends, and a test process's
    program loads after the fork, so timing from the ask or the fork would add the two seconds of
    loading below (timing from when the worker read the stamp missed 2 ms of a 0.3 s sleep on a
    loaded machine). Not a speed assertion: the instant test has those two seconds as margin."""
    program = "import time\ntime.sleep(2.0)\n\ndef f(s):\n    time.sleep(s)\n    return s\n"
    result = sb.run(Job(program, tests, timeout=3.0))
    assert [t.status for t in result.tests] == ["passed", "passed"]
    assert result.tests[0].duration_s < 2.0 and result.tests[1].duration_s >= 0.3


@pytest.mark.parametrize(("stamp", "expected"), [(5.0, 5.0), (1.0, 2.0), (9.0, 7.0), (None, 7.0), ("5", 7.0), (5, 7.0)])
def test_a_stamp_moves_a_start_only_within_the_ask_and_now(stamp, expected):
    """Known answers: asked at 2, read at 7; a forged or missing stamp cannot leave [2, 7]."""
    assert started_at(stamp, 2.0, 7.0) == expected
