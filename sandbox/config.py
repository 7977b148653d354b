"""Sandbox settings: limits, pool size and the minimum isolation tier."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

# Strongest first. See README "Sandbox" for what each tier guarantees.
TIERS = ("namespaces", "process")


CPU_ENV = "DUELCODER_SANDBOX_CPU"  # how the pool tells a worker its CPU (pin_workers)

@dataclass
class SandboxConfig:
    """Limits and pool settings. Every field has a safe default.

    Attributes:
        workers: worker processes (each runs one job at a time); None = one per CPU this process
            may use when ``pin_workers`` (a worker and its children then keep their CPU busy by
            themselves: on HumanEval this ran 8 % more jobs per second than two per CPU), else two
            per CPU, so that one worker's job computes while another's waits on its children.
        timeout_s: wall-clock seconds per test unless the job says otherwise (also the limit for
            loading the program).
        job_timeout_s: wall-clock seconds for a whole job; tests not reached in time time out.
        memory_bytes: address-space limit of the candidate process; the test process gets
            ``test_memory_bytes``. Together they bound a job's memory.
        test_memory_bytes: address-space limit of the process that runs the tests.
        file_size_bytes: largest file a job may write (RLIMIT_FSIZE).
        scratch_bytes: size of the per-job scratch file system (namespaces tier).
        max_processes: processes a job may have at once (RLIMIT_NPROC in its user namespace).
        max_message_bytes: largest value that may cross between candidate and tests.
        max_detail_chars: verdict details are cut to this many characters.
        min_isolation: refuse to start below this tier (``namespaces`` or ``process``).
        pin_workers: run each worker, and every process it starts, on one CPU (worker ``i`` on the
            ``i``-th CPU this process may use, round robin). A test and the program it calls then
            exchange messages without waking another CPU, which on virtual machines costs more than
            the message: a HumanEval check that calls the program 200 times ran in half the CPU time.
    """

    workers: int | None = None
    timeout_s: float = 3.0
    job_timeout_s: float = 60.0
    memory_bytes: int = 1536 * 2**20
    test_memory_bytes: int = 512 * 2**20
    file_size_bytes: int = 16 * 2**20
    scratch_bytes: int = 64 * 2**20
    max_processes: int = 32
    max_message_bytes: int = 16 * 2**20
    max_detail_chars: int = 500
    min_isolation: str = "namespaces"
    extra_env: dict[str, str] = field(default_factory=dict)
    pin_workers: bool = True

    def __post_init__(self) -> None:
        if self.workers is None:
            self.workers = (1 if self.pin_workers else 2) * max(1, len(os.sched_getaffinity(0)))
        if self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        for name in ("timeout_s", "job_timeout_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("memory_bytes", "test_memory_bytes", "file_size_bytes", "scratch_bytes",
                     "max_processes", "max_message_bytes", "max_detail_chars"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.min_isolation not in TIERS:
            raise ValueError(f"min_isolation must be one of {TIERS}, got {self.min_isolation!r}")
        if any(k.upper().endswith("TOKEN") for k in self.extra_env):
            raise ValueError("extra_env must not pass tokens into the sandbox")
