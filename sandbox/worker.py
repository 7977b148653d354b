"""A sandbox worker: sets up isolation once, then runs jobs one at a time for the pool.

Process layout in the ``namespaces`` tier (the strongest):

    pool (trusted, the caller's namespaces)
     └─ launcher: new user, mount, network, IPC and UTS namespaces; whole file system read-only
         ├─ worker: PID 1 of PID namespace A; reads jobs on stdin, writes results on stdout;
         │   │      judges ``assert CALL == LITERAL`` tests itself (see ``fastpath``)
         │   └─ test process, one per other test: runs that test, reports its verdict
         └─ (helper) └─ spawner: PID 1 of PID namespace B; never sees a test (see ``spawner``)
                          └─ candidate process: runs the program, answers calls and evaluations

Candidates and tests live in sibling PID namespaces, each with its own /proc and its own fresh
tmpfs per child: they cannot see, signal or trace each other. After each test (or each run of
fast tests) every process in both namespaces except the two PID 1s is SIGKILLed, so nothing a
program or a test started survives. All wall-clock limits are enforced by the worker.

This module sets a worker up (namespaces, PID 1, the spawner) and holds its entry point, which
the pool runs as a program; ``runner.Worker`` then serves the jobs, enforcing those limits.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
import sys

from . import linux, spawner
from .config import CPU_ENV, SandboxConfig
from .runner import Worker

# Modules most programs and tests import, loaded once so that children need not. ``random`` (and
# ``datetime``) come with ``determinism``, which seeds and freezes them in every child; threading
# stays out: its after-fork hook would run in every child of this process.
PRELOAD = ("math", "re", "collections", "itertools", "functools", "heapq", "bisect", "string", "typing",
           "operator", "copy")


def enter_namespaces() -> None:
    """New user, mount, network, IPC and UTS namespaces; a read-only mount tree (OSError if refused)."""
    uid, gid = os.getuid(), os.getgid()
    linux.unshare(linux.CLONE_NEWUSER | linux.CLONE_NEWNS | linux.CLONE_NEWNET | linux.CLONE_NEWIPC
                  | linux.CLONE_NEWUTS)
    linux.write_id_maps(uid, gid)
    linux.mount("none", "/", None, linux.MS_REC | linux.MS_PRIVATE)
    linux.make_tree_readonly("/")


def become_pid_one() -> None:
    """Fork into a new PID and mount namespace; the parent waits and exits with the child.

    Returns in the child, PID 1 of the new namespace with its own /proc. Its bounding set is then
    emptied: it keeps its capabilities (for mounting scratch) but no descendant can regain any.
    """
    linux.unshare(linux.CLONE_NEWPID | linux.CLONE_NEWNS)
    pid = os.fork()
    if pid:
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(devnull, fd)
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    linux.mount("proc", "/proc", "proc", linux.MS_NOSUID | linux.MS_NODEV)
    linux.limit_future_capabilities()


def main() -> None:
    """Entry point: ``python -s -c 'from sandbox.worker import main; main()' CONFIG_JSON SCRATCH [CGROUP]``."""
    config = SandboxConfig(**json.loads(sys.argv[1]))
    scratch = sys.argv[2]
    cpu = os.environ.pop(CPU_ENV, None)
    if cpu is not None:
        try:
            os.sched_setaffinity(0, {int(cpu)})  # inherited by the spawner, the candidates and the tests
        except (OSError, ValueError):
            pass  # a CPU this machine no longer lets us use: run unpinned
    if len(sys.argv) > 3:
        with open(sys.argv[3], "w") as f:  # a pids cgroup the pool made for this worker
            f.write(str(os.getpid()))
    for name in PRELOAD:
        __import__(name)
    # Children share these pages copy-on-write; a garbage collection in a child would touch (and
    # copy) every object's header, which doubled the cost of a job before this.
    gc.collect()
    gc.freeze()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin, stdout = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1):
        os.dup2(devnull, fd)
    why_weak = ""
    try:
        enter_namespaces()
        strong = True
    except OSError as exc:
        strong, why_weak = False, f"namespaces unavailable ({exc})"
    ctl, ctl_child = socket.socketpair()
    spawner_pid = os.fork()
    if spawner_pid == 0:  # the candidate side: it must not hold the pool's pipes
        os.close(stdin)
        os.close(stdout)
        ctl.close()
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        if strong:
            become_pid_one()
        else:
            linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        linux.prctl(linux.PR_SET_DUMPABLE, 0)
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
        spawner.main(ctl_child, config, scratch, strong)
    ctl_child.close()
    if strong:
        become_pid_one()
    else:
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
    Worker(config, scratch, ctl, strong, None if strong else spawner_pid).serve(stdin, stdout, why_weak)
    os._exit(0)
