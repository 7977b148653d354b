"""The test process: runs the tests, reaching the program only through ``RemoteRef`` proxies.

The program under test never runs here, so it cannot patch the assertions, read the expected
values, walk these frames or write verdicts. Values come back as plain data (see ``wire``);
objects of the program's own types stay remote and refuse to be compared, so a lying ``__eq__``
cannot turn an assertion true. Verdicts go to the worker over a pipe only this process holds.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
import traceback
from typing import Any

from . import determinism, wire
from .candidate import AUDIT_FLAGS

KNOWN_FLAGS = frozenset(AUDIT_FLAGS.values()) | {"exit_attempt", "lying_object", "candidate_exit",
                                                 "protocol_violation", "fs_write"}


class CandidateGone(BaseException):
    """The program's process died or broke the protocol (not an ``Exception``: tests that catch
    ``Exception`` must not swallow it and pass)."""


class CandidateExit(BaseException):
    """The program called ``sys.exit`` (or raised ``SystemExit``/``KeyboardInterrupt``)."""


class RemoteError(Exception):
    """An exception of the program's own type, raised inside the program."""


def _rebuild(name: str, text: str) -> BaseException:
    builtin = getattr(builtins, name, None)
    if isinstance(builtin, type) and issubclass(builtin, BaseException):
        if not issubclass(builtin, Exception):
            return CandidateExit(f"the program raised {name}")
        return builtin(text)
    return RemoteError(f"{name}: {text}")


class Channel:
    """Request/response link to the candidate process, with the per-test taint flag."""

    def __init__(self, fd: int, max_bytes: int):
        self.fd = fd
        self.reader = wire.Reader(fd, max_bytes)
        self.flags: set[str] = set()
        self.dead = False
        self.tainted = False  # the program exited or died during the current test

    def _fail(self, flag: str, why: str) -> CandidateGone:
        self.dead = True
        self.tainted = True
        self.flags.add(flag)
        return CandidateGone(why)

    def receive(self) -> tuple:
        try:
            message = wire.loads(self.reader.recv(), lambda rid: RemoteRef(rid, self))
        except wire.WireError as exc:
            if "closed" in str(exc):
                raise self._fail("candidate_exit", "the program's process exited") from None
            raise self._fail("protocol_violation", f"the program's process broke the protocol: {exc}") from None
        if type(message) is not tuple or not message or type(message[0]) is not str:
            raise self._fail("protocol_violation", "the program's process sent a malformed reply")
        flags = message[-1]
        if type(flags) is tuple:
            self.flags.update(f for f in flags if type(f) is str and f in KNOWN_FLAGS)
        return message

    def request(self, op: str, rid: int, a: Any = None, b: Any = None) -> Any:
        if self.dead:
            raise CandidateGone("the program's process is gone")
        if not wire.is_plain((a, b), extra=(RemoteRef,)):
            raise TypeError("only plain data (numbers, strings, bytes, lists, tuples, dicts, sets) "
                            "and the program's own objects can be passed to the program")
        payload = wire.dumps((op, rid, a, b), lambda o: o._rid if type(o) is RemoteRef else None)
        try:
            wire.send(self.fd, payload)
        except wire.WireError:
            raise self._fail("candidate_exit", "the program's process exited") from None
        message = self.receive()
        if message[0] == "ok" and len(message) == 4 and type(message[2]) is dict:
            # Belt and braces: the unpickler already refuses every class but plain ones.
            if not wire.is_plain((message[1], message[2]), extra=(RemoteRef,)):
                raise self._fail("protocol_violation", "the program's process sent a non-plain value")
            if op == "call":
                _write_back(a, b, message[2])
            return message[1]
        if message[0] == "raise" and len(message) == 4 and type(message[1]) is str and type(message[2]) is str:
            exc = _rebuild(message[1], message[2])
            if isinstance(exc, CandidateExit):
                self.tainted = True
                self.flags.add("exit_attempt")
            raise exc
        raise self._fail("protocol_violation", "the program's process sent a malformed reply")


def _write_back(args: tuple, kwargs: dict, changes: dict) -> None:
    """Mirror in-place changes the program made to list/dict/set/bytearray arguments."""
    for key, new in changes.items():
        target = args[key] if type(key) is int and 0 <= key < len(args) else kwargs.get(key)
        if type(target) is not type(new):
            continue
        if type(target) in (list, bytearray):
            target[:] = new
        elif type(target) in (dict, set):
            target.clear()
            target.update(new)


class RemoteRef:
    """An object that lives in the program's process (a function, an instance, an iterator)."""

    __slots__ = ("_rid", "_chan")

    def __init__(self, rid: int, chan: Channel):
        object.__setattr__(self, "_rid", rid)
        object.__setattr__(self, "_chan", chan)

    def _ask(self, op: str, a: Any = None, b: Any = None) -> Any:
        return self._chan.request(op, self._rid, a, b)

    def _typed(self, op: str, kind: type) -> Any:
        value = self._ask(op)
        if type(value) is not kind:
            raise TypeError(f"{op}() of a program object returned {type(value).__name__}, not {kind.__name__}")
        return value

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._ask("call", args, kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return self._ask("getattr", name)

    def __iter__(self) -> "RemoteIterator":
        return RemoteIterator(self._ask("iter"))

    def __next__(self) -> Any:
        return self._ask("next")

    def __len__(self) -> int:
        return self._typed("len", int)

    def __bool__(self) -> bool:
        return self._typed("bool", bool)

    def __getitem__(self, key: Any) -> Any:
        return self._ask("getitem", key)

    def __contains__(self, item: Any) -> bool:
        value = self._ask("contains", item)
        if type(value) is not bool:
            raise TypeError("'in' on a program object did not return a bool")
        return value

    def __repr__(self) -> str:
        return self._typed("repr", str)

    def __str__(self) -> str:
        return self._typed("str", str)

    def _refuse(self, *_: Any) -> Any:
        raise TypeError("objects of the program's own types cannot be compared or hashed by tests: "
                        "return plain values (numbers, strings, lists, ...)")

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __hash__ = _refuse  # type: ignore[assignment]


class RemoteIterator:
    __slots__ = ("_ref",)

    def __init__(self, ref: Any):
        self._ref = ref

    def __iter__(self) -> "RemoteIterator":
        return self

    def __next__(self) -> Any:
        if type(self._ref) is not RemoteRef:
            raise TypeError("iter() of a program object did not return an iterator")
        return self._ref._ask("next")


def _failure_detail(exc: BaseException, source: str, limit: int) -> str:
    line = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == "<test>" and frame.lineno:
            lines = source.splitlines()
            if 0 < frame.lineno <= len(lines):
                line = lines[frame.lineno - 1].strip()
            break
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return (f"{text} at: {line}" if line else text)[:limit]


def run_one(source: str, namespace: dict[str, Any], chan: Channel, limit: int) -> tuple[str, str]:
    chan.tainted = False
    try:
        code = compile(source, "<test>", "exec")
    except (SyntaxError, ValueError) as exc:
        return "error", f"the test does not compile: {exc}"[:limit]
    try:
        exec(code, namespace)
    except AssertionError as exc:
        status, detail = "failed", _failure_detail(exc, source, limit)
    except (CandidateGone, CandidateExit) as exc:
        status, detail = "error", str(exc)[:limit]
    except BaseException as exc:  # the test raised, or re-raised what the program raised
        status, detail = "error", _failure_detail(exc, source, limit)
    else:
        status, detail = "passed", ""
    if chan.tainted and status == "passed":
        status, detail = "error", "the program exited during the test (the test's own pass does not count)"
    return status, detail


def main(fd: int, verdict_fd: int, test: str, imports: list[Any], max_message_bytes: int, limit: int) -> None:
    """Entry point in the forked test process: runs ONE test, reports its verdict; never returns.

    One test per process: a test cannot touch another test's verdict, state or descriptors.
    """

    def report(**message: Any) -> None:
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(verdict_fd, data):]

    try:
        determinism.settle()
        chan = Channel(fd, max_message_bytes)
        try:
            ready = chan.receive()
        except CandidateGone as exc:
            report(t="loaded", error=f"{exc} while loading", flags=sorted(chan.flags))
            return
        if ready[0] != "ready" or len(ready) != 5 or type(ready[2]) is not dict:
            report(t="loaded", error="the program's process sent a malformed greeting", flags=["protocol_violation"])
            return
        if ready[1] is not None:
            report(t="loaded", error=f"the program failed to load: {ready[1]}"[:limit], flags=sorted(chan.flags))
            return
        report(t="loaded", error=None, at=determinism.REAL_MONOTONIC())  # the test starts now
        namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        for code in imports:
            try:
                exec(code, namespace)
            except Exception:
                pass  # a test needing it fails with NameError, naming the module
        namespace.update({k: v for k, v in ready[2].items() if type(k) is str})
        sys.setrecursionlimit(10_000)
        status, detail = run_one(test, namespace, chan, limit)
        report(t="verdict", s=status, d=detail, flags=sorted(chan.flags))
    finally:
        os._exit(0)
