"""The worker's side of its links: the messages it reads and writes, and what a candidate's replies mean.

The worker talks over three kinds of link: JSON lines with the pool (jobs in, results out) and
with each test process (its verdict), and the wire protocol with a candidate, to which it sends
the calls of fast tests and of calls jobs. Everything read on these links comes from processes
that may be hostile or dead, so every read takes a deadline and every reply is checked for shape
before it counts; ``judge`` turns one reply into a verdict, never trusting more than a plain
value. Kept apart from ``runner`` so that the job logic reads as a sequence of steps.
"""

from __future__ import annotations

import json
import os
import select
import time

from . import fastpath, tester, wire
from .fingerprint import rough_size
from .types import TestVerdict


class Lines:
    """Newline-terminated JSON messages from a pipe, read with a deadline."""

    def __init__(self, fd: int):
        self.fd = fd
        self.buf = b""
        self.eof = False

    def next(self, deadline: float | None) -> dict | str:
        """The next message, ``"eof"``, or ``"timeout"`` (``deadline`` None: wait forever)."""
        while b"\n" not in self.buf:
            if self.eof:
                return "eof"
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return "timeout"
            ready, _, _ = select.select([self.fd], [], [], remaining)
            if not ready:
                return "timeout"
            chunk = os.read(self.fd, 65536)
            if not chunk:
                self.eof = True
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            return "eof"
        return message if isinstance(message, dict) else "eof"


class _Opaque:
    """Stands for an object that stayed in the candidate (the fast path never compares it)."""


class CandidateLink:
    """The worker's own link to a candidate, for fast tests: send a call, wait for a plain value."""

    def __init__(self, fd: int, max_bytes: int):
        self.fd = fd
        self.reader = wire.Reader(fd, max_bytes)

    def receive(self, deadline: float) -> tuple | str:
        if self.reader.buf == b"":
            ready, _, _ = select.select([self.fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                return "timeout"
        try:
            message = wire.loads(self.reader.recv(), lambda rid: _Opaque())
        except wire.WireError as exc:
            return "closed" if "closed" in str(exc) else f"protocol: {exc}"
        # Every reply has 4 parts; "ready" has a fifth, the moment the program loaded (``started_at``).
        if type(message) is not tuple or len(message) != (5 if message[:1] == ("ready",) else 4) \
                or type(message[0]) is not str:
            return "protocol: malformed reply"
        return message

    def ask(self, calls: list[str], aliases: dict[str, str]) -> None:
        """Have the candidate evaluate these calls in order (one message for a whole check block);
        ``aliases`` binds extra names to program names (a check block's ``candidate``)."""
        wire.send(self.fd, wire.dumps(("eval", 0, calls, aliases)))


def judge(test: fastpath.FastTest, reply: tuple | str, flags: set, limit: int, per_test: float) -> TestVerdict:
    """The verdict on one check from the candidate's outcome: ("ok", value) or ("raise", name, text)."""
    if reply == "timeout":
        return TestVerdict("timeout", f"no verdict within {per_test:g}s")
    if isinstance(reply, str):
        flags.add("candidate_exit" if reply == "closed" else "protocol_violation")
        return TestVerdict("error", "the program's process exited" if reply == "closed" else reply[:limit])
    if type(reply) is not tuple or len(reply) < 2:
        flags.add("protocol_violation")
        return TestVerdict("error", "the program's process sent a malformed reply")
    kind, value = reply[0], reply[1]
    if kind == "raise" and type(value) is str:
        text = reply[2] if len(reply) > 2 and type(reply[2]) is str else ""
        if value in ("SystemExit", "KeyboardInterrupt", "GeneratorExit"):
            flags.add("exit_attempt")
            return TestVerdict("error", f"the program raised {value}")
        return TestVerdict("error", f"{value}: {text}"[:limit] + f" at: {test.call}"[:limit])
    if kind != "ok":
        flags.add("protocol_violation")
        return TestVerdict("error", "the program's process sent a malformed reply")
    if not wire.is_plain(value):
        return TestVerdict("error", "the call returned an object of the program's own type, which tests "
                                    f"cannot compare; return plain values at: {test.call}"[:limit])
    try:
        ok = test.judge(value)
    except Exception as exc:
        return TestVerdict("error", f"{type(exc).__name__}: {exc}"[:limit])
    if ok:
        return TestVerdict("passed", "")
    shown = repr(value)
    shown = shown if len(shown) <= 200 else shown[:200] + "..."
    message = f"{test.message}; " if test.message else ""
    return TestVerdict("failed", f"AssertionError: {message}{test.call} returned {shown}"[:limit])


def try_ask(link: CandidateLink, test: tuple[list[fastpath.FastTest], dict[str, str]]) -> bool:
    """Send one test's calls; False if the candidate's end is already closed."""
    try:
        link.ask([check.call for check in test[0]], test[1])
    except wire.WireError:
        return False
    return True


def started_at(stamp: object, earliest: float, now: float) -> float:
    """When a test began that the other process started on its own, before this one heard of it.

    The candidate starts the first test's calls as soon as it has loaded (they went out before), and
    a test process starts its test as soon as it has said "loaded"; both stamp that moment with the
    real monotonic clock, which all processes of the machine share. Timing from the moment this side
    reads the message instead missed the gap (on a loaded machine a sleep of 0.3 s was timed 0.298 s),
    and a reference's time sets a candidate's limit. The stamp is kept between the request and now:
    a process that forges it moves its own start within its loading time, no further."""
    if type(stamp) is not float:
        return now
    return min(max(stamp, earliest), now)


def collect_flags(reply: tuple, flags: set) -> None:
    if type(reply[-1]) is tuple:
        flags.update(f for f in reply[-1] if type(f) is str and f in tester.KNOWN_FLAGS)


def fill(verdicts: list, indices: list[int], status: str, detail: str) -> None:
    for i in indices:
        if verdicts[i] is None:
            verdicts[i] = TestVerdict(status, detail)


def chunks(inputs: tuple, max_bytes: int, most: int = 512):
    """Sizes of consecutive chunks of ``inputs`` that fit in a message (a huge input goes alone)."""
    start = 0
    while start < len(inputs):
        size, end = 0, start
        while end < len(inputs) and end - start < most:
            size += rough_size(inputs[end], max_bytes)
            if end > start and size > max_bytes:
                break
            end += 1
        yield end - start
        start = end


def write_line(fd: int, message: dict) -> None:
    data = (json.dumps(message) + "\n").encode()
    while data:
        data = data[os.write(fd, data):]

