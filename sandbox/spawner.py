"""The candidate zygote: forks candidate processes and never learns anything about tests.

A forked process inherits its parent's memory. If candidates were forked from the worker that
holds the job, a program could scan its own memory (frames, ``gc``, ``/proc/self/mem``) for the
expected values of the tests. This process only ever receives programs, over a private socket
from the worker, so a candidate's memory holds nothing worth stealing. In the ``namespaces`` tier
it is PID 1 of its own PID namespace (a sibling of the worker's), with its own /proc and scratch.
"""

from __future__ import annotations

import os
import pickle
import signal
import socket
from typing import Any

from . import candidate, harden, linux
from .config import SandboxConfig
from .reaping import kill_all_children


class Spawner:
    def __init__(self, ctl: socket.socket, config: SandboxConfig, scratch: str, strong: bool):
        self.ctl = ctl
        self.config = config
        self.scratch_root = scratch
        self.strong = strong
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.scratch: str | None = None
        self.cached: tuple[tuple[str, str], candidate.Prepared] | None = None

    def _prepared(self, program: str, setup: str) -> candidate.Prepared:
        key = (program, setup)
        if self.cached is None or self.cached[0] != key:  # tests of one job share the program
            self.cached = (key, candidate.prepare(program, setup, self.config.max_detail_chars))
        return self.cached[1]

    def spawn(self, request: dict[str, Any], fd: int) -> None:
        prepared = self._prepared(request["program"], request["setup"])
        self.scratch = harden.make_scratch(self.scratch_root, self.config, self.strong)
        pid = os.fork()
        if pid == 0:
            try:
                os.chdir(self.scratch)
                harden.harden_child((fd,), self.devnull, self.config.memory_bytes, self.config.file_size_bytes,
                                    self.config.max_processes, self.strong)
            except BaseException:
                os._exit(70)
            candidate.main(fd, prepared, request["entry_point"], self.config.max_message_bytes,
                           self.config.max_detail_chars)
        os.close(fd)

    def reset(self) -> None:
        kill_all_children(self.strong)
        if self.scratch is not None:
            harden.drop_scratch(self.scratch, self.strong)
            self.scratch = None

    def serve(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.ctl, 1 << 24, 1)
            except OSError:
                return
            if not data:
                return
            request = pickle.loads(data)  # from the worker, our trusted parent's sibling
            if request["op"] == "spawn" and fds:
                self.spawn(request, fds[0])
            else:
                for fd in fds:
                    os.close(fd)
                self.reset()
            self.ctl.sendall(b"k")


def main(ctl: socket.socket, config: SandboxConfig, scratch: str, strong: bool) -> None:
    """Runs in the candidate zygote; never returns."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        Spawner(ctl, config, scratch, strong).serve()
    finally:
        os._exit(0)
