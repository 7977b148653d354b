"""A pids cgroup per worker, where the machine lets us make one (typically when running as root).

RLIMIT_NPROC is what bounds a fork bomb for ordinary users, but the kernel does not apply it to
processes whose real uid is root (CI containers, many GPU boxes). There, a pids cgroup does the job:
the pool makes one per worker with ``pids.max`` set, the worker joins it at start, and everything it
forks stays inside.
"""

from __future__ import annotations

import os
import signal
import time

_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")  # cgroup v1 pids controller, or the v2 hierarchy


def make_pids_cgroup(name: str, limit: int) -> str | None:
    """Create cgroup ``name`` with ``pids.max = limit``; return its ``cgroup.procs`` path, or None."""
    for root in _ROOTS:
        if not os.path.exists(os.path.join(root, "pids.max" if root.endswith("pids") else "cgroup.controllers")):
            if not os.path.isdir(root) or not root.endswith("pids"):
                continue
        path = os.path.join(root, name)
        try:
            os.mkdir(path)
            with open(os.path.join(path, "pids.max"), "w") as f:
                f.write(str(limit))
            return os.path.join(path, "cgroup.procs")
        except OSError:
            try:
                os.rmdir(path)
            except OSError:
                pass
    return None


def remove_cgroup(procs_file: str | None) -> None:
    """Kill whatever is still in the cgroup and remove it."""
    if not procs_file:
        return
    for _ in range(200):
        try:
            with open(procs_file) as f:
                pids = [int(p) for p in f.read().split()]
        except OSError:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.rmdir(os.path.dirname(procs_file))
            return
        except OSError:
            time.sleep(0.005)  # killed processes leave the cgroup once their parents reap them
