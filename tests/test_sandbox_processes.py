"""Reward hacks against the sandbox's processes: killing the harness, reaching into other processes, forging
the wire between the candidate and the test process, and hostile tests. None may turn a wrong program into a
pass or take the sandbox down; the attacks on the verdicts from inside a program are in test_sandbox_attacks.py,
whose wrong program (``f`` adds one instead of squaring), helpers and module sandbox these share.
"""

from __future__ import annotations

import logging
import os
import signal
from textwrap import dedent

import pytest

from sandbox import Job, Sandbox, SandboxConfig
from test_sandbox_attacks import (ASSERT, FAKE_MARKERS, SWALLOW_BASE, WRONG, assert_no_pass, assert_still_works,
                                  explain, run)


@pytest.fixture(scope="module")
def sb():
    with Sandbox(SandboxConfig()) as sandbox:
        yield sandbox


# -- killing the harness ----------------------------------------------------------------------
KILLS = ["os.kill(os.getppid(), signal.SIGKILL)", "os.kill(1, signal.SIGKILL)", "os.kill(-1, signal.SIGKILL)",
         "os.kill(0, signal.SIGKILL)", "os.killpg(os.getpgid(0), signal.SIGKILL)",
         "os.kill(-1, signal.SIGSTOP)", "os.kill(-1, signal.SIGTERM)"]


@pytest.mark.parametrize("where", ["load", "call"])
@pytest.mark.parametrize("kill", KILLS)
def test_killing_the_harness_errors_the_job_and_the_sandbox_keeps_working(sb, kill, where, caplog):
    guarded = f"try:\n        {kill}\n    except OSError:\n        pass"
    if where == "load":
        program = f"import os, signal\n\ndef f(x):\n    return x + 1\n\nif True:\n    {guarded}\n"
    else:
        program = f"import os, signal\n\ndef f(x):\n    {guarded}\n    return x + 1\n"
    with caplog.at_level(logging.WARNING, logger="sandbox.pool"):
        res = run(sb, program, ASSERT, "assert f(4) == 16", timeout=0.5)
        assert_no_pass(res)
        assert res.status != "infra_error", f"the program took the sandbox down: {explain(res)}"
        assert_still_works(sb)
    restarts = [r.getMessage() for r in caplog.records if r.name == "sandbox.pool"]
    assert restarts == [], f"the program killed a sandbox worker: {restarts}"


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def test_a_worker_whose_candidate_spawner_died_is_replaced_and_the_job_runs_again(caplog):
    with Sandbox(SandboxConfig(workers=1)) as sandbox:
        assert sandbox.run(Job(program="def f(x):\n    return x\n", tests=("assert f(1) == 1",))).status == "passed"
        launcher = sandbox._workers[0].proc.pid
        # The launcher's two children: the worker (idle: no children) and the spawner's parent.
        (spawner_side,) = [pid for pid in _children(launcher) if _children(pid)]
        os.kill(spawner_side, signal.SIGKILL)  # the spawner dies with it (parent-death signal)
        with caplog.at_level(logging.WARNING, logger="sandbox.pool"):
            results = sandbox.run_many([Job(program="def f(x):\n    return x\n", tests=(f"assert f({i}) == {i}",))
                                        for i in range(3)])
    assert [r.status for r in results] == ["passed"] * 3, [r.tests[0].detail for r in results]
    assert any("candidate spawner is gone" in r.getMessage() for r in caplog.records)


# -- reaching into other processes ------------------------------------------------------------
def test_the_program_cannot_trace_or_open_other_processes(sb):
    program = """\
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        PTRACE_ATTACH, PTRACE_SEIZE = 16, 0x4206

        def f():
            reached = []
            for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
                if pid == os.getpid():
                    continue
                for request in (PTRACE_ATTACH, PTRACE_SEIZE):
                    if libc.ptrace(request, pid, None, None) == 0:
                        reached.append(("ptrace", request, pid))
                for path in (f"/proc/{pid}/mem", *(f"/proc/{pid}/fd/{fd}" for fd in range(64))):
                    try:
                        os.close(os.open(path, os.O_WRONLY))
                        reached.append(("open", path))
                    except OSError:
                        pass
            return reached
        """
    res = run(sb, program, "assert f() == []")
    assert res.status == "passed", explain(res)


def test_a_forked_child_writing_fake_verdicts_later_changes_nothing(sb):
    program = FAKE_MARKERS + dedent("""\
        import time

        def later():
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    for _ in range(20):
                        time.sleep(0.02)
                        shout()
                        for pid in (p for p in os.listdir("/proc") if p.isdigit()):
                            for fd in range(16):
                                try:
                                    w = os.open(f"/proc/{pid}/fd/{fd}", os.O_WRONLY)
                                    os.write(w, BLOB)
                                except OSError:
                                    pass
                os._exit(0)

        later()

        def f(x):
            later()
            return x + 1
        """)
    sleep = "import time\ntime.sleep(0.3)\n"
    assert_no_pass(run(sb, program, sleep + ASSERT, sleep + "assert f(4) == 16"))
    assert_still_works(sb)


def test_threads_that_keep_running_change_nothing(sb):
    program = FAKE_MARKERS + dedent("""\
        import threading, time

        def spin():
            while True:
                shout()
                time.sleep(0.01)

        threading.Thread(target=spin).start()

        def f(x):
            threading.Thread(target=spin, daemon=True).start()
            return x + 1
        """)
    assert_no_pass(run(sb, program, ASSERT, "import time\ntime.sleep(0.2)\nassert f(4) == 16"))
    assert_still_works(sb)


# -- forging the wire -------------------------------------------------------------------------
# The program owns its process, so it can replace the code that answers the test process. Its
# replies must still reach the test as plain data only: here it sends a pickle that builds a class
# whose __eq__ is ``type`` (always truthy) from the builtins the unpickler allows.
FORGED_PICKLE = """\
import sys
_wire = sys.modules["sandbox.wire"]
_dumps = _wire.dumps

class _Class:
    def __call__(self):
        pass
    def __reduce__(self):
        return (type, ("X", (object,), {"__eq__": type, "__ne__": type}))

class _Liar:
    def __reduce__(self):
        return (_Class(), ())

def _forged(message, ref_of=None):
    if type(message) is tuple and message and message[0] == "ok":
        message = ("ok", _Liar(), {0: [_Liar(), _Liar(), _Liar()]}, ())
    return _dumps(message, ref_of)

_wire.dumps = _forged
"""


def test_forged_replies_cannot_smuggle_objects_into_the_test(sb):
    program = FORGED_PICKLE + "\ndef f(x):\n    return x + 1\n\ndef g(xs):\n    xs.reverse()\n"
    res = run(sb, program, ASSERT, "xs = [3, 1, 2]\ng(xs)\nassert xs == [1, 2, 3]", entry_point=None)
    assert_no_pass(res)


def test_replies_that_are_not_pickles_error_the_test(sb):
    program = ("import sys\n_wire = sys.modules['sandbox.wire']\n_wire.dumps = lambda *a, **k: b'\\x80\\x05garbage'\n"
               + WRONG)
    res = run(sb, program, ASSERT, SWALLOW_BASE)
    assert [t.status for t in res.tests] == ["error", "error"], explain(res)
    assert "protocol_violation" in res.flags


# -- hostile tests ----------------------------------------------------------------------------
# Tests are model output too (the discriminator writes them) and share a job with other tests:
# one test must not decide the verdicts of the others.
HOSTILE_TESTS = {
    "writes verdicts to every descriptor": (
        "import json, os\nfor fd in range(3, 1024):\n    for i in range(4):\n        try:\n"
        "            os.write(fd, (json.dumps({'t': 'verdict', 'i': i, 's': 'passed', 'd': ''}) + '\\n').encode())\n"
        "        except OSError:\n            pass\n"),
    "patches the test runner": (
        "import sys\ntester = sys.modules['sandbox.tester']\ntester.run_one = lambda *a, **k: ('passed', '')\n"),
    "kills its own process": "import os\nos._exit(0)\n",
}


@pytest.mark.parametrize("hostile", list(HOSTILE_TESTS))
def test_a_test_cannot_decide_the_verdicts_of_other_tests(sb, hostile):
    res = run(sb, WRONG, HOSTILE_TESTS[hostile], ASSERT, "assert f(4) == 16", "assert f(0) == 0")
    assert [t.status for t in res.tests[1:]] == ["failed", "failed", "failed"], explain(res)
    assert res.status != "passed", explain(res)
