"""What every forked child (candidate or test runner) does before touching untrusted code.

Kept to the minimum on purpose: this runs twice per job, and each Python-level step in a freshly
forked child touches (and so copies) shared pages. Settings that are inherited across ``fork`` -
the environment, non-dumpability, no-new-privileges, the capability bounding set - are made once
in the worker instead (see ``worker.main`` and ``runner.Worker.__init__``).
"""

from __future__ import annotations

import os
import resource
from typing import Any

from . import linux


def harden_child(keep_fds: tuple[int, ...], devnull: int, memory_bytes: int, file_size_bytes: int,
                 max_processes: int, strong: bool) -> None:
    """Close inherited descriptors, set limits and, in the namespaces tier, drop capabilities.

    Descriptors are closed first so that nothing the worker holds (its pipe to the trusted parent,
    other channels) is reachable; stdio points at /dev/null so that printed "PASSED" markers go
    nowhere.
    """
    os.setsid()  # own session and process group: kill(0) and killpg reach nothing of the harness
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    keep = sorted(set(keep_fds) | {0, 1, 2})
    lo = 3
    for fd in keep:
        if fd >= lo:
            os.closerange(lo, fd)
            lo = fd + 1
    os.closerange(lo, 65536)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_bytes, file_size_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (max_processes, max_processes))
    if strong:
        linux.drop_all_capabilities()


def make_scratch(root: str, config: Any, strong: bool) -> str:
    """A fresh writable directory for one child: a new tmpfs over ``root`` (namespaces tier, where
    everything else is read-only) or a new temporary directory under it. The environment that
    children inherit is rebuilt around it: nothing of the caller's survives (no access tokens)."""
    if strong:
        linux.mount("tmpfs", root, "tmpfs", linux.MS_NOSUID | linux.MS_NODEV,
                    f"size={config.scratch_bytes},mode=0700")
        path = root
    else:
        import tempfile  # weak tier only: tempfile pulls in random, whose fork hook costs every child

        path = tempfile.mkdtemp(prefix="job-", dir=root)
    if os.environ.get("TMPDIR") != path or os.environ.get("HOME") != path:  # set once per worker when strong
        env = {k: os.environ[k] for k in ("LANG", "LC_ALL") if k in os.environ}
        env.update(PATH="/usr/local/bin:/usr/bin:/bin", HOME=path, TMPDIR=path, **config.extra_env)
        os.environ.clear()
        os.environ.update(env)
    return path


def drop_scratch(path: str, strong: bool) -> None:
    os.chdir("/")
    if strong:
        linux.umount(path)
    else:
        import shutil

        shutil.rmtree(path, ignore_errors=True)
