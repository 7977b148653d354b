"""The trusted side: a pool of isolated workers and the ``Sandbox`` API the project uses."""

from __future__ import annotations

import json
import logging
import os
import queue
import select
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable, Iterable

from .cgroup import make_pids_cgroup, remove_cgroup
from .config import CPU_ENV, TIERS, SandboxConfig
from .types import CallsJob, CallsResult, Job, Result

log = logging.getLogger(__name__)
_ROOT = str(Path(__file__).resolve().parent.parent)
_BOOT = f"import sys; sys.path.insert(0, {_ROOT!r}); from sandbox.worker import main; main()"
# Extra seconds the pool waits beyond a job's own limit before it declares the worker hung.
_GRACE_S = 15.0


class SandboxUnavailable(RuntimeError):
    """The machine cannot provide the isolation the configuration demands."""


class _WorkerProcess:
    """One worker subprocess and its pipes; restarts are done by replacing the object."""

    def __init__(self, config: SandboxConfig, scratch: str, cpu: int | None):
        self.stderr = tempfile.TemporaryFile()
        # A fixed hash seed: a program whose output depends on set order (``list(set(words))``)
        # gets the same verdict on every run, so rewards and evaluations are reproducible.
        # LD_BIND_NOW: library symbols are bound once, in the worker, not by every forked child
        # (each child resolving its own would write, and so copy, the pages holding the tables).
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONHASHSEED": "0", "LD_BIND_NOW": "1"}
        if cpu is not None:
            env[CPU_ENV] = str(cpu)  # the worker pins itself before it forks anything (config.pin_workers)
        # The worker's own four processes (launcher, worker, spawner and its parent) plus one job's.
        self.cgroup = make_pids_cgroup(f"duelcoder-{os.getpid()}-{id(self)}", config.max_processes + 4)
        self.proc = subprocess.Popen(
            # -s: no user site; not -I, which would ignore PYTHONHASHSEED; cwd "/" keeps sys.path clean.
            [sys.executable, "-s", "-c", _BOOT, json.dumps(asdict(config)), scratch, *([self.cgroup] if self.cgroup else [])],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, env=env,
            close_fds=True, start_new_session=True, cwd="/",
        )
        self.buf = b""
        hello = self.read(30.0)
        if hello is None or not hello.get("hello"):
            self.kill()
            raise SandboxUnavailable(f"sandbox worker failed to start: {self.stderr_tail()}")
        self.tier: str = hello["tier"]
        self.why_weak: str = hello.get("why", "")

    def read(self, timeout: float) -> dict | None:
        fd = self.proc.stdout.fileno()
        while b"\n" not in self.buf:
            ready, _, _ = select.select([fd], [], [], timeout)
            if not ready:
                return None
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def submit(self, job: Job, timeout: float) -> dict | None:
        try:
            self.proc.stdin.write((json.dumps(job.to_dict()) + "\n").encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return None
        return self.read(timeout)

    def stderr_tail(self) -> str:
        try:
            self.stderr.seek(0)
            return self.stderr.read().decode(errors="replace")[-2000:]
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        remove_cgroup(self.cgroup)  # kills what is left in it (zygotes die with their parent anyway)
        for stream in (self.proc.stdin, self.proc.stdout, self.stderr):
            try:
                stream.close()
            except OSError:
                pass


class Sandbox:
    """Runs untrusted programs against tests in isolated worker processes.

    Use as a context manager, or call ``close()``. ``run_many`` uses every worker in parallel and
    keeps the order of the jobs. Failures of the sandbox itself come back as ``infra_error``
    results, never as failed code.

    ``restarts`` counts the workers this sandbox had to replace since it started (a worker that
    died, hung past its job's limit, or whose candidate spawner died; the job is then run again on
    the fresh worker). It should stay 0: a verdict must never depend on a restart going well, and
    ``python -m sandbox run`` reports a non-zero count on stderr.
    """

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self._scratch = tempfile.mkdtemp(prefix="duelcoder-sandbox-")
        os.chmod(self._scratch, 0o755)
        self._lock = threading.Lock()
        self._workers: list[_WorkerProcess] = []
        self.jobs_run = 0
        self.restarts = 0
        self._restarts_lock = threading.Lock()
        try:
            for _ in range(self.config.workers):
                self._workers.append(_WorkerProcess(self.config, self._scratch, self._cpu_for(len(self._workers))))
        except BaseException:
            self.close()
            raise
        self.isolation = self._workers[0].tier
        if TIERS.index(self.isolation) > TIERS.index(self.config.min_isolation):
            why = self._workers[0].why_weak
            self.close()
            raise SandboxUnavailable(
                f"the sandbox can only reach isolation tier {self.isolation!r} here ({why}), below the "
                f"configured minimum {self.config.min_isolation!r}. On Ubuntu 23.10+ unprivileged user "
                "namespaces are restricted by AppArmor (sysctl kernel.apparmor_restrict_unprivileged_userns=0 "
                "lifts it); or accept weaker isolation with min_isolation='process' "
                "(CLI: --min-isolation process), which gives no network or file-system isolation."
            )

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        for worker in self._workers:
            worker.kill()
        self._workers = []
        shutil.rmtree(self._scratch, ignore_errors=True)

    def _cpu_for(self, slot: int) -> int | None:
        if not self.config.pin_workers:
            return None
        cpus = sorted(os.sched_getaffinity(0))
        return cpus[slot % len(cpus)]

    def run(self, job: Job | dict) -> Result:
        return self.run_many([job])[0]

    def run_many(self, jobs: Iterable[Job | dict],
                 on_result: Callable[[int, Result], None] | None = None) -> list[Result]:
        """Run jobs in parallel on all workers; results come back in the jobs' order.

        ``on_result(index, result)`` is called as each job finishes (for progress bars).
        Raises ``JobError`` before running anything if a job is malformed.
        """
        batch = [job if isinstance(job, (Job, CallsJob)) else Job.from_dict(job) for job in jobs]
        results: list[Result | None] = [None] * len(batch)
        if not batch:
            return []
        with self._lock:
            if not self._workers:
                raise RuntimeError("the sandbox is closed")
            pending: queue.SimpleQueue[int] = queue.SimpleQueue()
            for i in range(len(batch)):
                pending.put(i)
            done_lock = threading.Lock()

            def drain(slot: int) -> None:
                while True:
                    try:
                        i = pending.get_nowait()
                    except queue.Empty:
                        return
                    results[i] = self._run_on(slot, batch[i])
                    if on_result is not None:
                        with done_lock:
                            on_result(i, results[i])

            threads = [threading.Thread(target=drain, args=(slot,), daemon=True)
                       for slot in range(min(len(self._workers), len(batch)))]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            self.jobs_run += len(batch)
        return [r for r in results if r is not None]

    def run_calls(self, jobs: Iterable[CallsJob],
                  on_result: Callable[[int, CallsResult], None] | None = None) -> list[CallsResult]:
        """Run calls jobs (differential testing) in parallel on all workers, in the jobs' order."""
        return self.run_many(list(jobs), on_result)  # type: ignore[arg-type, return-value]

    def _run_on(self, slot: int, job: Job | CallsJob) -> Result | CallsResult:
        calls = isinstance(job, CallsJob)
        timeout = (job.total_limit if calls else self.config.job_timeout_s) + _GRACE_S
        for attempt in range(2):
            worker = self._workers[slot]
            reply = worker.submit(job, timeout)
            if reply is not None:
                return CallsResult.from_dict(reply) if calls else Result.from_dict(reply)
            tail = worker.stderr_tail()
            log.warning("sandbox worker %d failed (attempt %d); restarting. stderr: %s", slot, attempt + 1, tail)
            worker.kill()
            with self._restarts_lock:
                self.restarts += 1
            try:
                self._workers[slot] = _WorkerProcess(self.config, self._scratch, self._cpu_for(slot))
            except SandboxUnavailable as exc:
                return (CallsResult.infra_error(str(exc), self.isolation) if calls
                        else Result.infra_error(len(job.tests), str(exc), self.isolation))
        detail = f"sandbox worker failed twice on this job: {tail}"
        return (CallsResult.infra_error(detail, self.isolation) if calls
                else Result.infra_error(len(job.tests), detail, self.isolation))

