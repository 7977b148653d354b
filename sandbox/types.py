"""Plain data that crosses the sandbox boundary: jobs in, results out.

Everything here is JSON-shaped so that the CLI, the Python API and the worker processes share one
format. Validation lives here too: a malformed job is rejected with a message naming the field,
before anything runs.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass, field
from typing import Any

from . import wire

STATUSES = ("passed", "failed", "error", "timeout", "infra_error")


class JobError(ValueError):
    """A job that cannot be run as given (bad field, wrong type)."""


@dataclass(frozen=True)
class Job:
    """One program and the tests to run against it.

    ``tests`` are Python sources, one verdict each: usually ``assert CALL == EXPECTED`` lines,
    sometimes blocks such as HumanEval's ``def check(candidate): ...`` followed by
    ``check(entry_point)``. ``setup`` runs after the program, in its namespace (MBPP's
    ``test_setup_code``, which builds objects from the program's classes); the names both define
    are reachable from the tests. ``timeout`` is seconds per test (None: the sandbox default).
    """

    program: str
    tests: tuple[str, ...]
    setup: str = ""
    entry_point: str | None = None
    timeout: float | None = None

    @classmethod
    def from_dict(cls, data: Any) -> "Job":
        if not isinstance(data, dict):
            raise JobError(f"a job must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - {"program", "tests", "setup", "entry_point", "timeout"}
        if unknown:
            raise JobError(f"unknown job field(s): {sorted(unknown)}")
        program = data.get("program")
        if not isinstance(program, str):
            raise JobError("field 'program' must be a string")
        tests = data.get("tests")
        if not isinstance(tests, (list, tuple)) or not all(isinstance(t, str) for t in tests):
            raise JobError("field 'tests' must be a list of strings")
        setup = data.get("setup") or ""
        if not isinstance(setup, str):
            raise JobError("field 'setup' must be a string")
        entry_point = data.get("entry_point")
        if entry_point is not None and (not isinstance(entry_point, str) or not entry_point.isidentifier()):
            raise JobError("field 'entry_point' must be a Python identifier")
        timeout = data.get("timeout")
        if timeout is not None:
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise JobError("field 'timeout' must be a number of seconds")
            if not math.isfinite(timeout) or timeout <= 0:
                raise JobError("field 'timeout' must be a positive, finite number of seconds")
            timeout = float(timeout)
        return cls(program=program, tests=tuple(tests), setup=setup, entry_point=entry_point, timeout=timeout)

    def to_dict(self) -> dict[str, Any]:
        return {"program": self.program, "tests": list(self.tests), "setup": self.setup,
                "entry_point": self.entry_point, "timeout": self.timeout}


@dataclass
class TestVerdict:
    """The verdict on one test: ``passed``, ``failed`` (assertion false), ``error`` (raised,
    crashed, or the candidate died), ``timeout``, or ``infra_error`` (the sandbox itself broke).

    ``duration_s`` is the wall time the test took once the program had loaded (0 when it never
    started): the rewards derive a test's time limit on candidates from the reference's."""

    status: str
    detail: str = ""
    duration_s: float = 0.0


@dataclass
class Result:
    """A job's outcome. ``status`` is ``passed`` only if every test passed; otherwise the worst
    verdict among the tests (infra_error > timeout > error > failed)."""

    status: str
    passed: int
    total: int
    tests: list[TestVerdict]
    isolation: str
    flags: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def pass_rate(self) -> float:
        return self.passed / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies recursively and was a visible cost per job.
        return {"status": self.status, "passed": self.passed, "total": self.total,
                "tests": [{"status": t.status, "detail": t.detail, "duration_s": round(t.duration_s, 5)}
                          for t in self.tests],
                "isolation": self.isolation, "flags": list(self.flags), "duration_s": self.duration_s}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Result":
        return cls(data["status"], data["passed"], data["total"],
                   [TestVerdict(t["status"], t["detail"], t.get("duration_s", 0.0)) for t in data["tests"]],
                   data["isolation"], list(data["flags"]), data["duration_s"])

    @classmethod
    def from_verdicts(
        cls, verdicts: list[TestVerdict], isolation: str, flags: list[str], duration_s: float
    ) -> "Result":
        passed = sum(v.status == "passed" for v in verdicts)
        if passed == len(verdicts):  # also a job without tests: nothing failed
            status = "passed"
        else:
            order = {"failed": 0, "error": 1, "timeout": 2, "infra_error": 3}
            status = max((v.status for v in verdicts if v.status != "passed"), key=order.__getitem__)
        return cls(status, passed, len(verdicts), verdicts, isolation, sorted(set(flags)), round(duration_s, 4))

    @classmethod
    def infra_error(cls, n_tests: int, detail: str, isolation: str) -> "Result":
        verdicts = [TestVerdict("infra_error", detail) for _ in range(n_tests)]
        return cls("infra_error", 0, n_tests, verdicts, isolation, [], 0.0)


@dataclass(frozen=True)
class CallsJob:
    """Call the program's ``entry_point`` once per argument list and bring the return values back.

    This is differential testing (EvalPlus's way of judging): the caller compares each value with
    the reference's, so the expected values never enter the sandbox. Calls run in order in one
    candidate process (state the program keeps between calls persists, as in EvalPlus) and stop at
    the first call that raises or runs past its limit (not at one whose value is ``opaque``). ``inputs`` are plain data (what the wire
    carries: tuples, sets, complex numbers included); ``limits`` are seconds per call, and
    ``total_limit`` bounds them all together (EvalPlus: the smaller of 60 s and their sum, plus 1).
    A returned string larger than ``fingerprint_over`` bytes (a container 64 times larger) comes
    back as its fingerprint (``sandbox.fingerprint``) instead of itself.
    """

    program: str
    entry_point: str
    inputs: tuple[tuple[Any, ...], ...]
    limits: tuple[float, ...]
    total_limit: float
    fingerprint_over: int = 64 * 1024

    def __post_init__(self) -> None:
        if not self.entry_point.isidentifier():
            raise JobError("field 'entry_point' must be a Python identifier")
        if len(self.inputs) != len(self.limits):
            raise JobError(f"{len(self.inputs)} inputs but {len(self.limits)} limits")
        if not all(isinstance(args, (tuple, list)) for args in self.inputs):
            raise JobError("each input must be a list or tuple of positional arguments")
        if not all(math.isfinite(t) and t > 0 for t in (*self.limits, self.total_limit)):
            raise JobError("limits must be positive, finite numbers of seconds")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "calls", "program": self.program, "entry_point": self.entry_point,
                "inputs": base64.b64encode(wire.dumps([tuple(a) for a in self.inputs])).decode(),
                "limits": list(self.limits), "total_limit": self.total_limit,
                "fingerprint_over": self.fingerprint_over}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CallsJob":
        try:
            inputs = wire.loads(base64.b64decode(data["inputs"]), lambda rid: None)
            return cls(data["program"], data["entry_point"], tuple(tuple(a) for a in inputs),
                       tuple(float(t) for t in data["limits"]), float(data["total_limit"]),
                       int(data["fingerprint_over"]))
        except (KeyError, TypeError, ValueError, wire.WireError) as exc:
            raise JobError(f"malformed calls job: {exc}") from None


@dataclass(frozen=True)
class Fingerprint:
    """A returned value too large to copy out: its ``sandbox.fingerprint`` digest (None: holds a NaN)."""

    digest: str | None


@dataclass
class CallOutcome:
    """One call's outcome: ``ok`` (``value`` is what it returned, or a ``Fingerprint``), ``raised``,
    ``timeout``, ``opaque`` (it returned an object of the program's own type, which no comparison
    may trust: its ``__eq__`` is the program's) or ``error`` (the process died or broke protocol).
    ``seconds`` is the call's time as measured in the candidate (for ``ok`` calls)."""

    status: str
    value: Any = None
    seconds: float = 0.0
    detail: str = ""


@dataclass
class CallsResult:
    """A calls job's outcomes, in input order, up to and including the first that raised, timed
    out or broke (``load_error``: the program did not load, and no call ran)."""

    outcomes: list[CallOutcome]
    isolation: str
    load_error: str | None = None
    flags: list[str] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def all_ok(self) -> bool:
        return self.load_error is None and all(o.status == "ok" for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        values = [(o.value.digest,) if type(o.value) is Fingerprint else o.value for o in self.outcomes]
        marks = [type(o.value) is Fingerprint for o in self.outcomes]
        return {"kind": "calls", "outcomes": [[o.status, round(o.seconds, 6), o.detail, m]
                                              for o, m in zip(self.outcomes, marks)],
                "values": base64.b64encode(wire.dumps(values)).decode(), "isolation": self.isolation,
                "load_error": self.load_error, "flags": list(self.flags), "duration_s": self.duration_s}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "CallsResult":
        values = wire.loads(base64.b64decode(data["values"]), lambda rid: None)
        outcomes = [CallOutcome(status, Fingerprint(value[0]) if marked else value, seconds, detail)
                    for (status, seconds, detail, marked), value in zip(data["outcomes"], values)]
        return cls(outcomes, data["isolation"], data["load_error"], list(data["flags"]), data["duration_s"])

    @classmethod
    def infra_error(cls, detail: str, isolation: str) -> "CallsResult":
        return cls([CallOutcome("error", detail=detail)], isolation, None, ["infra_error"], 0.0)
