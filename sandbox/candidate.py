"""The candidate process: loads the program under test and answers calls from the test process.

Nothing here is trusted once the program has run: the program can patch this module, the pickler
or the audit hook. That is fine, because no verdict is decided here. The worst this process can do
is answer with wrong plain values (which fail tests) or die (which errors them).
"""

from __future__ import annotations

import ast
import builtins
import marshal
import os
import re
import sys
import traceback
import types
from dataclasses import dataclass, field
from typing import Any

from . import determinism, wire
from .fingerprint import fingerprint, rough_size
from .determinism import REAL_MONOTONIC as monotonic

# Audit events that indicate an attempt to escape or game the harness, and the flag they raise.
# Only events that ordinary solutions do not cause: ``sys._getframe`` is absent because the standard
# library calls it (``collections.namedtuple`` does), and frames here hold no verdicts anyway.
AUDIT_FLAGS = {
    "sys._current_frames": "frame_access",
    "gc.get_objects": "gc_access",
    "gc.get_referrers": "gc_access",
    "gc.get_referents": "gc_access",
    "sys.settrace": "trace_hook",
    "sys.setprofile": "trace_hook",
    "os.system": "process_spawn",
    "os.exec": "process_spawn",
    "os.posix_spawn": "process_spawn",
    "os.spawn": "process_spawn",
    "os.fork": "process_spawn",
    "os.forkpty": "process_spawn",
    "subprocess.Popen": "process_spawn",
    "os.kill": "signal",
    "os.killpg": "signal",
    "socket.connect": "network",
    "socket.bind": "network",
    "socket.getaddrinfo": "network",
    "ctypes.dlopen": "ctypes",
    "ctypes.dlsym": "ctypes",
}
MUTABLE_ARG_TYPES = (list, dict, set, bytearray)
BUILTIN_NAMES = frozenset(dir(builtins))
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")  # in default reprs: "<function f at 0x7f3a...>"
# Containers are fingerprinted only when this many times larger than ``fingerprint_over``, and by
# their pickle (``sandbox.fingerprint``): equal digests still prove equal values, but ``1`` against
# ``1.0`` inside such a container fails where ``==`` would pass.
CONTAINER_FACTOR = 64
PART_AFTER_S = 0.002  # a fast-path test's outcomes are sent in parts once its calls take longer


@dataclass
class Prepared:
    """A job's program parsed and compiled once, in the worker; the spawner gets it marshalled.

    ``exports``: top-level names the program and setup bind, except those bound by imports.
    Imports are replayed on the test side instead (``imports``), so tests that use ``math``
    because the program imported it keep working without module objects crossing the wire.
    """

    program: Any = None
    setup: Any = None
    error: str | None = None
    exports: list[str] = field(default_factory=list)
    imports: list[Any] = field(default_factory=list)

    def for_spawner(self, entry_point: str | None) -> bytes:
        """What the candidate side needs (never the imports, which only the test side replays)."""
        return marshal.dumps((self.program, self.setup, self.error, self.exports, entry_point))

    @classmethod
    def from_worker(cls, data: bytes) -> tuple["Prepared", str | None]:
        program, setup, error, exports, entry_point = marshal.loads(data)
        return cls(program, setup, error, exports), entry_point


def prepare(program: str, setup: str, max_detail: int) -> Prepared:
    prepared = Prepared()
    try:
        trees = [ast.parse(program, "<program>"), ast.parse(setup or "", "<setup>")]
        prepared.program = compile(trees[0], "<program>", "exec")
        prepared.setup = compile(trees[1], "<setup>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        prepared.error = "".join(traceback.format_exception_only(type(exc), exc)).strip()[:max_detail]
        return prepared
    names: list[str] = []
    imported: set[str] = set()
    for tree in trees:
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    names.extend(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                if not (isinstance(node, ast.ImportFrom) and node.module == "__future__"):
                    prepared.imports.append(compile(ast.Module([node], []), "<program imports>", "exec"))
                    imported.update((a.asname or a.name).split(".")[0] for a in node.names)
    # Names a test takes from elsewhere are never replaced by the program's: a program that defines
    # ``abs`` or rebinds an imported ``math`` must not change what the test's own checks mean.
    prepared.exports = [n for n in dict.fromkeys(names) if n not in imported and n not in BUILTIN_NAMES]
    return prepared


class _Candidate:
    def __init__(self, fd: int, max_message_bytes: int, max_detail: int):
        self.fd = fd
        self.reader = wire.Reader(fd, max_message_bytes)
        self.max_message_bytes = max_message_bytes
        self.max_detail = max_detail
        self.refs: dict[int, Any] = {}
        self.flags: set[str] = set()
        self.namespace: dict[str, Any] = {}

    # -- audit --------------------------------------------------------------------------------
    def audit(self, event: str, args: tuple) -> None:
        flag = AUDIT_FLAGS.get(event)
        if flag is None and event == "open" and len(args) > 1 and isinstance(args[1], str):
            if any(c in args[1] for c in "wax+") and isinstance(args[0], str):
                path = os.path.abspath(args[0])
                if not path.startswith(os.getcwd() + os.sep) and path != os.devnull:
                    flag = "fs_write"
        if flag is not None:
            self.flags.add(flag)

    # -- replies ------------------------------------------------------------------------------
    def ref(self, obj: Any) -> wire.RefId:
        rid = wire.RefId(len(self.refs) + 1)
        self.refs[int(rid)] = obj
        return rid

    def reply(self, message: tuple) -> None:
        payload = wire.dumps(message, lambda o: int(o) if type(o) is wire.RefId else None)
        if len(payload) > self.max_message_bytes:
            payload = wire.dumps(("raise", "MemoryError", "value too large to return", tuple(self.flags)))
        wire.send(self.fd, payload)

    def value(self, obj: Any) -> Any:
        """What crosses for ``obj``: itself if plain, a plain copy if it is a standard mapping or a
        tuple subclass that compares like its base (Counter, defaultdict, namedtuple), else a ref."""
        if wire.is_plain(obj):
            return obj
        plain = wire.plain_copy(obj)
        if plain is not None:
            return plain
        if isinstance(obj, wire.PLAIN_SCALARS + wire.PLAIN_CONTAINERS):
            self.flags.add("lying_object")  # a subclass of a plain type that may override __eq__
        return self.ref(obj)

    def error(self, exc: BaseException) -> tuple:
        """The exception as (nearest built-in class name, text): a program's own ``class E(ValueError)``
        still satisfies a test's ``except ValueError``."""
        if not isinstance(exc, Exception):  # SystemExit, KeyboardInterrupt, GeneratorExit
            self.flags.add("exit_attempt")
        kind = type(exc)
        base = next((c for c in kind.__mro__ if c.__module__ == "builtins"), Exception)
        try:
            text = str(exc)
        except BaseException:
            text = "<unprintable>"
        if base is not kind:
            text = f"{kind.__qualname__}: {text}"
        return ("raise", base.__name__, text[: self.max_detail], tuple(sorted(self.flags)))

    # -- serving ------------------------------------------------------------------------------
    def apply(self, name: str, inputs: list, fingerprint_over: int) -> tuple:
        """Differential testing: call ``name`` on each argument list, in order, until one raises.

        Each outcome is ("ok", value, seconds), ("fp", digest, seconds) for a value larger than
        ``fingerprint_over`` bytes (``sandbox.fingerprint``: huge outputs are compared by digest),
        or ("raise", class name, text, seconds). Containers are fingerprinted only when
        ``CONTAINER_FACTOR`` times larger than that. Outcomes go out in parts while calls take long,
        so that the worker can time each call; a part too large for one message is split."""
        fn = self.namespace.get(name)
        results: list[tuple] = []
        sent = monotonic()
        for args in inputs:
            began = monotonic()
            try:
                out = fn(*args)
                took = monotonic() - began
                # A huge value's digest is taken on the object itself: checking first that it is
                # plain would cost a Python step per item. Nothing is lost by trusting this process
                # here: to send the expected digest it would need the expected value, which never
                # enters the sandbox.
                text = type(out) in (str, bytes, bytearray)
                over = fingerprint_over if text else CONTAINER_FACTOR * fingerprint_over
                if rough_size(out, over) > over:
                    results.append(("fp", fingerprint(out, fast=not text), took))
                else:
                    results.append(("ok", self.value(out), took))
            except BaseException as exc:
                results.append(self.error(exc)[:3] + (monotonic() - began,))
                break
            if monotonic() - sent > PART_AFTER_S:
                self.send_results("part", results)
                results, sent = [], monotonic()
        return ("ok", results, {}, tuple(sorted(self.flags)))

    def send_results(self, kind: str, results: list[tuple]) -> None:
        """Send outcomes as one message, or as several when they do not fit in one."""
        message = (kind, results, {}, tuple(sorted(self.flags)))
        payload = wire.dumps(message, lambda o: int(o) if type(o) is wire.RefId else None)
        if len(payload) <= self.max_message_bytes:
            wire.send(self.fd, payload)
        elif len(results) > 1:
            half = len(results) // 2
            self.send_results("part", results[:half])
            self.send_results(kind, results[half:])
        else:
            status, _, took = results[0][0], results[0][1], results[0][-1]
            self.send_results(kind, [("raise", "MemoryError", f"value too large to return ({status})", took)])

    def handle(self, request: tuple) -> tuple:
        op, rid, a, b = request
        if op == "apply":
            return self.apply(b[0], a, b[1])
        if op == "eval":  # the worker's fast path: only the call sides of ``assert CALL == LITERAL``
            results: list[tuple] = []
            local = {alias: self.namespace[name] for alias, name in (b or {}).items() if name in self.namespace}
            sent = monotonic()
            for n, source in enumerate(a, 1):  # one test's calls, in order; the first exception ends the test
                try:
                    results.append(("ok", self.value(eval(compile(source, "<test>", "eval"), self.namespace, local))))
                except BaseException as exc:
                    results.append(self.error(exc)[:3])
                    break
                if n < len(a) and monotonic() - sent > PART_AFTER_S:
                    # Slow calls: outcomes so far go out now, so that a failed check ends the test
                    # without the remaining calls being computed.
                    self.reply(("part", results, {}, tuple(sorted(self.flags))))
                    results, sent = [], monotonic()
            return ("ok", results, {}, tuple(sorted(self.flags)))
        obj = self.refs[rid]
        if op == "call":
            result = obj(*a, **b)
            writeback = {k: v for k, v in list(enumerate(a)) + list(b.items())
                         if type(v) in MUTABLE_ARG_TYPES and wire.is_plain(v)}
            return ("ok", self.value(result), writeback, tuple(sorted(self.flags)))
        if op == "getattr":
            result = getattr(obj, a)
        elif op == "iter":
            return ("ok", self.ref(iter(obj)), {}, tuple(sorted(self.flags)))
        elif op == "next":
            result = next(obj)
        elif op == "len":
            result = len(obj)
        elif op == "getitem":
            result = obj[a]
        elif op == "contains":
            result = a in obj
        elif op == "bool":
            result = bool(obj)
        elif op == "repr":
            result = _ADDRESS.sub(" at 0x0", repr(obj))  # no address reaches a test (see determinism)
        elif op == "str":
            result = _ADDRESS.sub(" at 0x0", str(obj))
        else:
            raise ValueError(f"unknown operation {op!r}")
        return ("ok", self.value(result), {}, tuple(sorted(self.flags)))

    def serve(self, prepared: Prepared, entry_point: str | None) -> None:
        namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
        sys.modules["__main__"] = types.ModuleType("__main__")
        sys.modules["__main__"].__dict__.update(namespace)
        namespace = self.namespace = sys.modules["__main__"].__dict__
        sys.addaudithook(self.audit)
        load_error = None
        exports: dict[str, Any] = {}
        try:
            if prepared.error is not None:
                raise SyntaxError(prepared.error)
            exec(prepared.program, namespace)
            exec(prepared.setup, namespace)
            determinism.reseed()  # calls see the same random state whatever the program drew on loading
            if entry_point and entry_point not in namespace:
                load_error = f"the program does not define {entry_point!r}"
            for name in dict.fromkeys(prepared.exports + ([entry_point] if entry_point else [])):
                if name in namespace:
                    exports[name] = self.value(namespace[name])
        except BaseException as exc:
            if not isinstance(exc, Exception):
                self.flags.add("exit_attempt")
            load_error = "".join(traceback.format_exception_only(type(exc), exc)).strip()[: self.max_detail]
        # The moment it loaded: the first test's calls are already waiting (``link.started_at``).
        self.reply(("ready", load_error, exports, monotonic(), tuple(sorted(self.flags))))
        while True:
            try:
                request = wire.loads(self.reader.recv(), self.refs.__getitem__)
            except (wire.WireError, KeyError):
                os._exit(0)
            try:
                message = self.handle(request)
            except BaseException as exc:  # the program's own exceptions go back to the test
                message = self.error(exc)
            if request[0] == "apply" and message[0] == "ok":
                self.send_results("ok", message[1])
            else:
                self.reply(message)


def rehearse() -> None:
    """Take a trusted stand-in program through a candidate's code path, without forking.

    Run once in the zygote, so that what every candidate needs first (the type attribute cache,
    bound library symbols, interned names) is filled in before forking: each candidate would
    otherwise write those tables itself, and every page it writes is a page copied per job.

    The stand-in's replies go to /dev/null, on a descriptor opened here and closed before
    returning: ``handle`` sends a ``part`` message whenever the calls took longer than
    ``PART_AFTER_S``, which on a loaded machine they sometimes did, and the stand-in once had no
    valid descriptor (-1), so such a start died with EBADF and the pool had to restart the worker.
    ``PART_AFTER_S`` is 0 meanwhile, so that the ``part`` path is taken on every start, not only
    on a slow one: whatever goes wrong there shows at once, never one start in thirty."""
    global PART_AFTER_S
    prepared = prepare("def f(x, y=None):\n    return [x, y]\n", "", 100)
    sink = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
    part_after_s, PART_AFTER_S = PART_AFTER_S, 0.0
    try:
        stand_in = _Candidate(sink, 1 << 20, 100)
        stand_in.namespace = {"__name__": "__main__", "__builtins__": builtins}
        exec(prepared.program, stand_in.namespace)
        exports = {name: stand_in.value(stand_in.namespace[name]) for name in prepared.exports}
        stand_in.reply(("ready", None, exports, 0.0, ()))
        request = wire.dumps(("eval", 0, ["f(1)", "candidate('a', y=(1.5, {2: b''}))", "f(1 / 0)"], {"candidate": "f"}))
        reply = stand_in.handle(wire.loads(request, stand_in.refs.__getitem__))
        stand_in.reply(reply)
        wire.loads(wire.dumps(reply), lambda rid: None)
    finally:
        PART_AFTER_S = part_after_s
        os.close(sink)
    Prepared.from_worker(prepared.for_spawner("f"))


def main(fd: int, prepared: Prepared, entry_point: str | None, max_message_bytes: int, max_detail: int) -> None:
    """Entry point in the forked candidate process; never returns."""
    try:
        determinism.settle()
        _Candidate(fd, max_message_bytes, max_detail).serve(prepared, entry_point)
    finally:
        os._exit(0)
