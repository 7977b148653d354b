"""Killing everything a job started, orphans and daemons included."""

from __future__ import annotations

import os
import signal


def kill_all_children(strong: bool, spare: int | None = None) -> None:
    """SIGKILL every process below the caller and reap them.

    Namespaces tier: the caller is PID 1 of its PID namespace, so ``kill(-1)`` reaches every other
    process in it, whatever it did to escape (``setsid``, double fork). Process tier: the caller is
    a child subreaper, so orphans re-parent to it and are found among its children until none remain;
    ``spare`` is a child that must survive (the process tier's candidate spawner).
    """
    if strong:
        os.kill(-1, signal.SIGKILL)
        while True:
            try:
                os.waitpid(-1, 0)
            except ChildProcessError:
                return
    for _ in range(1000):
        children = [pid for pid in _children_of(os.getpid()) if pid != spare]
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for pid in children:
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        if not children:
            return


def _children_of(ppid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()
                if int(fields[1]) == ppid:
                    found.append(int(entry))
            except (OSError, IndexError, ValueError):
                continue
    return found
