"""Plain data that crosses the sandbox boundary: jobs in, results out.

Everything here is JSON-shaped so that the CLI, the Python API and the worker processes share one
format. Validation lives here too: a malformed job is rejected with a message naming the field,
before anything runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

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
