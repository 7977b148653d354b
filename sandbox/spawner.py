"""The candidate zygote: forks candidate processes and never learns anything about tests.

A forked process inherits its parent's memory. If candidates were forked from the worker that
holds the job, a program could scan its own memory (frames, ``gc``, ``/proc/self/mem``) for the
expected values of the tests. This process only ever receives programs, over a private socket
from the worker, so a candidate's memory holds nothing worth stealing. In the ``namespaces`` tier
it is PID 1 of its own PID namespace (a sibling of the worker's), with its own /proc and scratch.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import struct
import traceback

from . import candidate, harden
from .config import SandboxConfig
from .reaping import kill_all_children


HEADER = struct.Struct("!cI")  # a request's op and payload length


def request(ctl: socket.socket, op: bytes, payload: bytes = b"", fd: int | None = None) -> None:
    """Send one request to the spawner (the worker's side of ``Spawner.serve``)."""
    data = HEADER.pack(op, len(payload)) + payload
    sent = socket.send_fds(ctl, [data], [fd]) if fd is not None else ctl.send(data)
    if sent < len(data):
        ctl.sendall(data[sent:])


class Spawner:
    def __init__(self, ctl: socket.socket, config: SandboxConfig, scratch: str, strong: bool):
        self.ctl = ctl
        self.config = config
        self.scratch_root = scratch
        self.strong = strong
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self.scratch: str | None = None

    def spawn(self, payload: bytes, fd: int) -> None:
        """Fork a candidate for ``payload`` (``Prepared.for_spawner``). Unmarshalling happens in the
        child: every page this process writes between forks is copied once more, so it does as
        little as it can per spawn."""
        self.scratch = harden.make_scratch(self.scratch_root, self.config, self.strong)
        pid = os.fork()
        if pid == 0:
            try:
                os.chdir(self.scratch)
                harden.harden_child((fd,), self.devnull, self.config.memory_bytes, self.config.file_size_bytes,
                                    self.config.max_processes, self.strong)
            except BaseException:
                os._exit(70)
            prepared, entry_point = candidate.Prepared.from_worker(payload)
            candidate.main(fd, prepared, entry_point, self.config.max_message_bytes,
                           self.config.max_detail_chars)
        os.close(fd)

    def reset(self) -> None:
        kill_all_children(self.strong)
        if self.scratch is not None:
            harden.drop_scratch(self.scratch, self.strong)
            self.scratch = None

    def serve(self) -> None:
        """Requests from the worker (our trusted parent's sibling), framed as ``op, length, payload``:
        ``s`` spawns a candidate on the descriptor that comes with it (the candidate's "ready" is the
        worker's answer), ``r`` kills every candidate and is acknowledged, so that the worker can
        return a job's result only once nothing of the job runs any more."""
        buf, fds = b"", []  # a stream: one read may hold part of a request, or more than one
        while True:
            while len(buf) < HEADER.size or len(buf) < HEADER.size + HEADER.unpack_from(buf)[1]:
                try:
                    data, new_fds, _, _ = socket.recv_fds(self.ctl, 1 << 16, 1)
                except OSError:
                    return
                if not data:
                    return
                buf += data
                fds += new_fds
            op, size = HEADER.unpack_from(buf)
            payload, buf = buf[HEADER.size:HEADER.size + size], buf[HEADER.size + size:]
            if op == b"s" and fds:
                self.spawn(payload, fds.pop(0))
            else:
                self.reset()
                self.ctl.sendall(b"k")


def main(ctl: socket.socket, config: SandboxConfig, scratch: str, strong: bool) -> None:
    """Runs in the candidate zygote; never returns."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        candidate.rehearse()
        gc.collect()
        gc.freeze()  # what the rehearsal left is shared with every candidate, never scanned by them
        Spawner(ctl, config, scratch, strong).serve()
    except BaseException:
        traceback.print_exc()  # to the worker's stderr, which the pool logs when the worker fails
        raise
    finally:
        os._exit(0)
