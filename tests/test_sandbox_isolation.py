"""What a job can reach: no network, no writes outside its scratch, no secrets, no leftovers.

The sandbox here is started with a fake token in this process's environment, as a training run
would have ``HF_TOKEN`` set; nothing the program can read may contain it. One worker, so that
consecutive jobs run in the same worker (the case where leftovers would show).
"""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path
from textwrap import dedent

import pytest

from sandbox import Job, Result, Sandbox, SandboxConfig

SECRET = "secret-xyz"
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sb():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_TOKEN", SECRET)
        mp.setenv("OPENAI_API_KEY", SECRET)
        with Sandbox(SandboxConfig(workers=1)) as sandbox:
            yield sandbox


def run(sb: Sandbox, program: str, *tests: str, timeout: float = 3.0) -> Result:
    return sb.run(Job(program=dedent(program), tests=tuple(dedent(t) for t in tests), entry_point="f",
                      timeout=timeout))


def explain(result: Result) -> str:
    return f"{result.status} {result.flags}: " + "; ".join(f"{t.status}: {t.detail}" for t in result.tests)


def test_the_sandbox_reports_namespace_isolation(sb):
    assert sb.isolation == "namespaces"
    res = run(sb, "def f():\n    return 1\n", "assert f() == 1")
    assert (res.status, res.isolation) == ("passed", "namespaces")


def test_an_unknown_isolation_tier_is_refused():
    with pytest.raises(ValueError, match="min_isolation"):
        SandboxConfig(min_isolation="containers")
    with pytest.raises(ValueError, match="min_isolation"):
        SandboxConfig(min_isolation="")


# -- network ----------------------------------------------------------------------------------
def test_no_network(sb):
    program = """\
        import socket

        def f(host, port):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(1.0)
            try:
                s.connect((host, port))
                return "connected"
            except OSError as exc:
                return type(exc).__name__
            finally:
                s.close()

        def resolve(name):
            try:
                return socket.getaddrinfo(name, 443)
            except OSError:
                return []

        def udp(host):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                return s.sendto(b"x", (host, 53))
            except OSError:
                return -1
        """
    res = run(sb, program, "assert f('1.1.1.1', 443) != 'connected'", "assert f('8.8.8.8', 53) != 'connected'",
              "assert f('127.0.0.1', 22) != 'connected'", "assert resolve('pypi.org') == []",
              "assert udp('8.8.8.8') == -1")
    assert res.status == "passed", explain(res)
    assert "network" in res.flags


# -- file system ------------------------------------------------------------------------------
WRITER = """\
    import os, shutil

    def f(path):
        try:
            with open(path, "w") as fh:
                fh.write("pwned")
            return "wrote"
        except OSError as exc:
            return type(exc).__name__

    def remove(path):
        for attempt in (os.remove, lambda p: os.rename(p, p + ".moved"), lambda p: os.chmod(p, 0),
                        lambda p: open(p, "w").close(), lambda p: os.truncate(p, 0),
                        lambda p: shutil.rmtree(os.path.dirname(p))):
            try:
                attempt(path)
                return "changed"
            except OSError:
                pass
        return "intact"
    """


def test_cannot_write_outside_the_scratch(sb, tmp_path):
    canary = tmp_path / "canary.txt"
    canary.write_text("original")
    outside = [str(tmp_path / "new.txt"), "/tmp/pwned.txt", str(REPO / "pwned.txt"), "/dev/shm/pwned",
               "/var/tmp/pwned", str(REPO / "sandbox" / "__init__.py"), "/etc/passwd"]
    tests = [f"assert f({p!r}) != 'wrote'" for p in outside]
    tests += [f"assert remove({str(path)!r}) == 'intact'" for path in (canary, REPO / "pyproject.toml")]
    res = run(sb, WRITER, *tests)
    assert res.status == "passed", explain(res)
    assert canary.read_text() == "original"
    assert not (tmp_path / "new.txt").exists() and not (REPO / "pwned.txt").exists()
    assert (REPO / "pyproject.toml").is_file() and (REPO / "sandbox" / "__init__.py").read_text().startswith('"""')


def test_attempts_to_write_outside_the_scratch_are_flagged(sb):
    res = run(sb, WRITER, "assert f('/tmp/pwned.txt') != 'wrote'")
    assert res.status == "passed", explain(res)
    assert "fs_write" in res.flags, explain(res)


def test_cannot_remount_the_file_system_writable(sb, tmp_path):
    program = """\
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        MS_REMOUNT, MS_BIND, MS_REC = 32, 4096, 16384

        def f(path):
            changed = []
            for nested in (False, True):
                if nested and libc.unshare(0x10000000 | 0x00020000) != 0:  # a user namespace of its own
                    break
                for target in ("/", path):
                    for flags in (MS_REMOUNT, MS_REMOUNT | MS_BIND, MS_REMOUNT | MS_BIND | MS_REC):
                        if libc.mount(b"none", target.encode(), None, flags, None) == 0:
                            changed.append((nested, target, flags))
                try:
                    open(os.path.join(path, "pwned"), "w").close()
                    changed.append((nested, "wrote"))
                except OSError:
                    pass
            return changed
        """
    res = run(sb, program, f"assert f({str(tmp_path)!r}) == []")
    assert res.status == "passed", explain(res)
    assert not (tmp_path / "pwned").exists()


def test_the_scratch_is_writable_within_a_job(sb):
    program = """\
        import os

        def f(name, text):
            with open(name, "w") as fh:
                fh.write(text)
            with open(os.path.join(os.path.expanduser("~"), name + ".home"), "w") as fh:
                fh.write(text)
            os.makedirs("sub/dir", exist_ok=True)
            with open("sub/dir/x", "w") as fh:
                fh.write(text)
            return open(name).read() + open("sub/dir/x").read()
        """
    res = run(sb, program, "assert f('note.txt', 'hi') == 'hihi'", "assert f('other.txt', 'yo') == 'yoyo'")
    assert res.status == "passed", explain(res)
    assert "fs_write" not in res.flags, explain(res)


def test_the_scratch_is_fresh_for_every_job(sb):
    name = f"left-by-job-one-{os.getpid()}.txt"
    writer = f"def f():\n    open({name!r}, 'w').write('x')\n    return 1\n"
    assert run(sb, writer, "assert f() == 1").status == "passed"
    reader = "import os\n\ndef f():\n    return sorted(os.listdir('.')) + sorted(os.listdir(os.path.expanduser('~')))\n"
    res = run(sb, reader, "assert f() == [], f()")
    assert res.status == "passed", explain(res)
    # Nor does it reach the host's directory behind the scratch mount.
    assert glob.glob(os.path.join(tempfile.gettempdir(), "duelcoder-sandbox-*", name)) == []


# -- secrets in the environment ---------------------------------------------------------------
FIND_SECRET = """\
    import os, re
    NEEDLE = re.compile(rb"secre[t]-xyz|HF_TOKE[N]|OPENAI_API_KE[Y]")

    def f():
        found = []
        blobs = {"os.environ": "\\n".join(f"{k}={v}" for k, v in os.environ.items()).encode()}
        for pid in ["self"] + [p for p in os.listdir("/proc") if p.isdigit()]:
            for name in ("environ", "cmdline"):
                try:
                    with open(f"/proc/{pid}/{name}", "rb") as fh:
                        blobs[f"/proc/{pid}/{name}"] = fh.read()
                except OSError:
                    pass
        for where, blob in blobs.items():
            if NEEDLE.search(blob):
                found.append(where)
        return found, sorted(blobs)

    def memory():
        found = []
        with open("/proc/self/maps") as fh:
            maps = [line.split() for line in fh]
        with open("/proc/self/mem", "rb", 0) as mem:
            for fields in maps:
                if "r" not in fields[1] or (len(fields) > 5 and fields[5].startswith("[v")):
                    continue
                lo, hi = (int(p, 16) for p in fields[0].split("-"))
                try:
                    mem.seek(lo)
                    if NEEDLE.search(mem.read(hi - lo)):
                        found.append(fields[0])
                except (OSError, OverflowError, ValueError, MemoryError):
                    pass
        return found
    """


def test_the_callers_secrets_are_invisible(sb):
    res = run(sb, FIND_SECRET,
              "found, read = f()\nassert found == [], found",
              "found, read = f()\nassert {'os.environ', '/proc/self/environ', '/proc/1/cmdline'} <= set(read), read",
              "assert memory() == []")
    assert res.status == "passed", explain(res)
    assert SECRET not in str(res.to_dict())


def test_the_environment_is_minimal(sb):
    program = "import os\n\ndef f():\n    return dict(os.environ)\n"
    res = run(sb, program, "env = f()\nassert set(env) <= {'PATH', 'HOME', 'TMPDIR', 'LANG', 'LC_ALL'}, sorted(env)",
              "import os\nassert f()['HOME'] == os.getcwd()")
    assert res.status == "passed", explain(res)


# -- processes --------------------------------------------------------------------------------
LIST_PROCESSES = """\
    import os

    def f():
        out = []
        for pid in sorted(int(p) for p in os.listdir("/proc") if p.isdigit()):
            try:
                with open(f"/proc/{pid}/stat") as fh:
                    out.append((pid, fh.read().split(")")[0].split("(")[-1]))
            except OSError:
                pass
        return out
    """


def test_only_the_jobs_own_processes_are_visible(sb):
    # The candidate's PID namespace holds the candidate spawner (PID 1) and the candidate itself;
    # the worker and the test process live in a sibling namespace it cannot see.
    res = run(sb, LIST_PROCESSES, "procs = f()\nassert len(procs) == 2 and procs[0][0] == 1, procs")
    assert res.status == "passed", explain(res)


def test_nothing_a_job_started_survives_it(sb):
    spawner = """\
        import os, subprocess, threading, time

        def sleeper():
            while True:
                time.sleep(0.05)

        def f():
            threading.Thread(target=sleeper, daemon=False).start()
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.closerange(0, 1024)
                    sleeper()
                os._exit(0)
            subprocess.Popen(["sleep", "30"], start_new_session=True)
            time.sleep(0.1)
            return len([p for p in os.listdir("/proc") if p.isdigit()])
        """
    first = run(sb, spawner, "assert f() >= 5")
    assert first.status == "passed", explain(first)
    res = run(sb, LIST_PROCESSES, "procs = f()\nassert len(procs) == 2, procs",
              "assert not any(name == 'sleep' for _, name in f()), f()")
    assert res.status == "passed", explain(res)


AFFINITY = "import os\n\ndef cpus():\n    return sorted(os.sched_getaffinity(0))\n"


@pytest.mark.parametrize("pin", [True, False])
def test_workers_are_pinned_one_cpu_each_round_robin_unless_told_not_to(pin):
    allowed = sorted(os.sched_getaffinity(0))
    workers = 2 * len(allowed)
    # every process of a job (here the candidate) runs where its worker runs
    test = "assert len(cpus()) == 1" if pin else f"assert cpus() == {allowed}"
    with Sandbox(SandboxConfig(workers=workers, pin_workers=pin)) as sandbox:
        pinned = [sorted(os.sched_getaffinity(worker.proc.pid)) for worker in sandbox._workers]
        seen = sandbox.run_many([Job(program=AFFINITY, tests=(test,))] * workers)
    assert all(r.status == "passed" for r in seen), [r.tests[0].detail for r in seen]
    assert pinned == ([[allowed[i % len(allowed)]] for i in range(workers)] if pin else [allowed] * workers)
