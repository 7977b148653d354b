"""Executes what the rewards need, each (program, test) pair once.

Within a step the same pair turns up again and again: every completion of a group shares the
reference solution and the problem's tests, collapsed policies repeat the same code and the same
tests, and the generator and the discriminator of one episode are judged on the same pairs. The
engine keys each pair by a hash of program, setup, entry point, timeout, run index and test; asks the
sandbox only for pairs it has not seen (one ``run_many`` per call, one job per program and
test list, per-test verdicts); and keeps the verdicts in a bounded LRU across steps, since the
reference and the mutants meet the problem's tests at every step.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol, Sequence

from sandbox import Job, Result, Sandbox, SandboxConfig


@dataclass(frozen=True)
class Program:
    """What runs in the candidate process, with the settings that change a verdict."""

    source: str
    setup: str = ""
    entry_point: str | None = None
    timeout: float | None = None
    run: int = 0  # which independent run: run k of a pair is its own job and its own cache entry


@dataclass(frozen=True)
class Verdict:
    """A test's status (a sandbox test status), the flags of the job that ran it, and its time.

    Flags are reported per job, so a verdict carries its whole job's flags; jobs are built per
    request (one program, one sample's tests), which keeps the blame inside that request.
    """

    status: str
    flags: tuple[str, ...] = ()
    duration_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


class SandboxLike(Protocol):
    def run_many(self, jobs: list[Job]) -> list[Result]: ...


@dataclass
class ExecStats:
    """Counters of one ``execute`` call (or their sum over calls)."""

    calls: int = 0
    jobs: int = 0
    tests: int = 0
    cache_hits: int = 0
    duplicates: int = 0
    infra_errors: int = 0
    seconds: float = 0.0

    def add(self, other: "ExecStats") -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


_shared: Sandbox | None = None
_shared_lock = threading.Lock()


def shared_sandbox() -> Sandbox:
    """The process's sandbox pool: started on first use, closed at interpreter exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = Sandbox(SandboxConfig())
            atexit.register(_shared.close)
        return _shared


def _key(program: Program, test: str) -> str:
    payload = json.dumps([program.source, program.setup, program.entry_point, program.timeout, program.run, test])
    return hashlib.sha256(payload.encode()).hexdigest()


class ExecutionEngine:
    """Deduplicating, caching front of a sandbox.

    Args:
        sandbox: anything with ``run_many``; None uses ``shared_sandbox()`` on first need.
        cache_size: verdicts kept across calls (LRU); 0 deduplicates within a call only.
            ``infra_error`` verdicts are never kept: they say nothing about the program.
    """

    def __init__(self, sandbox: SandboxLike | None = None, cache_size: int = 100_000):
        self._sandbox = sandbox
        self._cache: OrderedDict[str, Verdict] = OrderedDict()
        self._cache_size = cache_size
        self.totals = ExecStats()

    @property
    def sandbox(self) -> SandboxLike:
        if self._sandbox is None:
            self._sandbox = shared_sandbox()
        return self._sandbox

    def execute(self, requests: Sequence[tuple[Program, Sequence[str]]]) -> tuple[list[list[Verdict]], ExecStats]:
        """Verdicts for every (program, tests) request, in order, from at most one ``run_many``."""
        stats = ExecStats(calls=1)
        known: dict[str, Verdict] = {}
        claimed: set[str] = set()
        jobs: list[Job] = []
        job_keys: list[list[str]] = []
        for program, tests in requests:
            pending: list[str] = []
            keys: list[str] = []
            for test in tests:
                key = _key(program, test)
                if key in known or key in claimed:
                    stats.duplicates += 1
                elif key in self._cache:
                    self._cache.move_to_end(key)
                    known[key] = self._cache[key]
                    stats.cache_hits += 1
                else:
                    claimed.add(key)
                    pending.append(test)
                    keys.append(key)
            if pending:
                jobs.append(Job(program.source, tuple(pending), program.setup, program.entry_point, program.timeout))
                job_keys.append(keys)

        if jobs:
            start = time.perf_counter()
            results = self.sandbox.run_many(jobs)
            stats.seconds = time.perf_counter() - start
            if len(results) != len(jobs):
                raise RuntimeError(f"sandbox returned {len(results)} results for {len(jobs)} jobs")
            for keys, result in zip(job_keys, results):
                if len(result.tests) != len(keys):
                    raise RuntimeError(f"sandbox returned {len(result.tests)} verdicts for {len(keys)} tests")
                flags = tuple(result.flags)
                for key, test_verdict in zip(keys, result.tests):
                    verdict = Verdict(test_verdict.status, flags, test_verdict.duration_s)
                    known[key] = verdict
                    if verdict.status == "infra_error":
                        stats.infra_errors += 1
                    else:
                        self._remember(key, verdict)
            stats.jobs = len(jobs)
            stats.tests = sum(len(k) for k in job_keys)
        self.totals.add(stats)
        return [[known[_key(program, test)] for test in tests] for program, tests in requests], stats

    def _remember(self, key: str, verdict: Verdict) -> None:
        if self._cache_size <= 0:
            return
        self._cache[key] = verdict
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
