"""The trusted side of one worker: ``Worker`` runs the jobs the pool sends, one at a time.

A job's tests go one of two ways (see ``fastpath``): those the worker can judge alone are sent,
call side only, to one candidate and judged here as the outcomes arrive; every other test runs in
its own test process against its own fresh candidate. Calls jobs (differential testing) bring
the values of calls back instead of verdicts. Candidates come from the spawner, never from this
process, which holds the tests; after each test or run of fast tests everything is killed and the
spawner reset. Process setup and the entry point are in ``worker``.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import traceback
from typing import Any

from . import candidate, fastpath, harden, linux, spawner, tester, wire
from .config import SandboxConfig
from .link import CandidateLink, Lines, chunks, collect_flags, fill, judge, started_at, try_ask, write_line
from .reaping import kill_all_children
from .types import CallOutcome, CallsJob, CallsResult, Fingerprint, Job, JobError, Result, TestVerdict


class SpawnerGone(Exception):
    """The candidate spawner died: this worker cannot run jobs any more."""


class Worker:
    """Runs jobs: the trusted side of one worker."""

    def __init__(self, config: SandboxConfig, scratch: str, ctl: socket.socket, strong: bool,
                 spawner_pid: int | None):
        self.config = config
        self.spawner_pid = spawner_pid  # our child in the process tier: never killed with the tests
        self.scratch_root = scratch
        self.ctl = ctl
        self.strong = strong
        self.tier = "namespaces" if strong else "process"
        self.devnull = os.open(os.devnull, os.O_RDWR)
        # Inherited by every child: nobody can ptrace them or read their fds through /proc
        # (a test process's verdict pipe), and no exec can gain privileges.
        linux.prctl(linux.PR_SET_DUMPABLE, 0)
        linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)

    # -- the candidate side, through the spawner ----------------------------------------------
    def _spawn_candidate(self, program: bytes) -> socket.socket:
        """A fresh candidate for ``program`` (``Prepared.for_spawner``); its first message on the
        returned socket is "ready"."""
        mine, theirs = socket.socketpair()
        try:
            spawner.request(self.ctl, b"s", program, theirs.fileno())
        except OSError as exc:
            mine.close()
            raise SpawnerGone(f"the candidate spawner is gone ({exc})") from exc
        finally:
            theirs.close()
        return mine

    def _reset_candidates(self) -> None:
        try:
            spawner.request(self.ctl, b"r")
            answer = self.ctl.recv(1)
        except OSError as exc:
            raise SpawnerGone(f"the candidate spawner is gone ({exc})") from exc
        if answer != b"k":
            raise SpawnerGone("the candidate spawner stopped answering")

    # -- one job ------------------------------------------------------------------------------
    def run(self, job: Job) -> Result:
        started = time.monotonic()
        deadline = started + self.config.job_timeout_s
        verdicts: list[TestVerdict | None] = [None] * len(job.tests)
        flags: set[str] = set()
        if job.tests:
            prepared = candidate.prepare(job.program, job.setup, self.config.max_detail_chars)
            program = prepared.for_spawner(job.entry_point)
            names = frozenset(prepared.exports) | ({job.entry_point} if job.entry_point else set())
            fast: dict[int, tuple[list[fastpath.FastTest], dict[str, str]]] = {}
            for i, test in enumerate(job.tests):
                checks = fastpath.plan(test, names)
                if checks:
                    fast[i] = checks
            imports = prepared.imports
            if fast:
                self._run_fast(job, program, fast, verdicts, flags, deadline)
            for i, test in enumerate(job.tests):
                if i not in fast:
                    verdicts[i] = self._run_in_test_process(job, program, test, imports, flags, deadline)
        done = [v if v is not None else TestVerdict("error", "no verdict") for v in verdicts]
        return Result.from_verdicts(done, self.tier, sorted(flags), time.monotonic() - started)

    def _per_test(self, job: Job) -> float:
        return job.timeout or self.config.timeout_s

    def _run_fast(self, job: Job, program: bytes, fast: dict[int, tuple[list[fastpath.FastTest], dict[str, str]]],
                  verdicts: list, flags: set, job_deadline: float) -> None:
        """Judge fast tests here, against one candidate (a fresh one after a timeout or a death).

        A test is a list of checks (one assert, or a check block's asserts in order); its verdict is
        that of its first check that does not pass, and its time limit covers all of them."""
        limit = self.config.max_detail_chars
        pending = sorted(fast)
        while pending:
            if time.monotonic() >= job_deadline:
                fill(verdicts, pending, "timeout", f"job time limit of {self.config.job_timeout_s:g}s reached")
                return
            sock = self._spawn_candidate(program)
            try:
                link = CandidateLink(sock.fileno(), self.config.max_message_bytes)
                # The first test's calls go out at once: the candidate reads them as soon as it has
                # loaded, instead of going to sleep until the worker has read its "ready".
                asked_at = time.monotonic()
                asked = try_ask(link, fast[pending[0]])
                ready = link.receive(min(time.monotonic() + self._per_test(job), job_deadline))
                if isinstance(ready, str):
                    status = "timeout" if ready == "timeout" else "error"
                    fill(verdicts, pending, status, "the program did not load in time" if status == "timeout"
                          else "the program's process exited while loading")
                    return
                collect_flags(ready, flags)
                if ready[0] != "ready" or ready[1] is not None:
                    fill(verdicts, pending, "error", f"the program failed to load: {ready[1]}"[:limit])
                    return
                while pending:
                    i = pending.pop(0)
                    began = time.monotonic()
                    if asked:  # its calls went out before the program had loaded
                        began = started_at(ready[3] if len(ready) == 5 else None, asked_at, began)
                    elif not try_ask(link, fast[i]):
                        verdicts[i] = judge(fast[i][0][0], "closed", flags, limit, self._per_test(job))
                        break
                    asked = False
                    verdicts[i], usable = self._await_checks(link, fast[i][0], flags, job, job_deadline, began)
                    verdicts[i].duration_s = time.monotonic() - began
                    if not usable:
                        break  # this candidate is gone, stuck or still busy: a fresh one for the rest
            finally:
                sock.close()
                self._reset_candidates()

    def _await_checks(self, link: CandidateLink, checks: list[fastpath.FastTest], flags: set, job: Job,
                      job_deadline: float, began: float) -> tuple[TestVerdict, bool]:
        """Judge one test's outcomes as they arrive; also whether the candidate can take the next test.

        A candidate sends outcomes in one reply, or in parts while its calls take long; a check that
        does not pass ends the test at once (as a failing assert does), without waiting for the rest."""
        per_test, limit = self._per_test(job), self.config.max_detail_chars
        deadline = min(began + per_test, job_deadline)
        done = 0
        while True:
            reply = link.receive(deadline)
            if reply == "timeout" and time.monotonic() >= job_deadline:
                return TestVerdict("timeout", f"job time limit of {self.config.job_timeout_s:g}s reached"), False
            if isinstance(reply, str) or reply[0] not in ("ok", "part") or type(reply[1]) is not list:
                bad = reply if isinstance(reply, str) else "protocol: bad reply"
                return judge(checks[min(done, len(checks) - 1)], bad, flags, limit, per_test), False
            collect_flags(reply, flags)
            for outcome in reply[1]:
                if done == len(checks):
                    flags.add("protocol_violation")
                    return TestVerdict("error", "the program's process answered too many calls"), False
                verdict = judge(checks[done], outcome, flags, limit, per_test)
                done += 1
                if verdict.status != "passed":
                    return verdict, reply[0] == "ok"
            if reply[0] == "ok":
                if done < len(checks):
                    return TestVerdict("error", "the program's process answered too few calls"), True
                return TestVerdict("passed", ""), True

    def _run_in_test_process(self, job: Job, program: bytes, test: str, imports: list[Any], flags: set,
                             job_deadline: float) -> TestVerdict:
        """One test in its own test process, against its own fresh candidate."""
        cfg = self.config
        if time.monotonic() >= job_deadline:
            return TestVerdict("timeout", f"job time limit of {cfg.job_timeout_s:g}s reached")
        per_test = self._per_test(job)
        sock = self._spawn_candidate(program)
        scratch = harden.make_scratch(self.scratch_root, cfg, self.strong)
        read_fd, write_fd = os.pipe()
        try:
            pid = os.fork()
            if pid == 0:
                try:
                    os.chdir(scratch)
                    harden.harden_child((sock.fileno(), write_fd), self.devnull, cfg.test_memory_bytes,
                                        cfg.file_size_bytes, cfg.max_processes, self.strong)
                except BaseException:
                    os._exit(70)
                tester.main(sock.fileno(), write_fd, test, imports, cfg.max_message_bytes, cfg.max_detail_chars)
            sock.close()
            os.close(write_fd)
            lines = Lines(read_fd)
            forked = time.monotonic()
            message = lines.next(min(forked + per_test, job_deadline))
            began = None
            if isinstance(message, dict) and message.get("t") == "loaded":
                flags.update(f for f in message.get("flags", ()) if f in tester.KNOWN_FLAGS)
                if message.get("error"):
                    return TestVerdict("error", str(message["error"])[: cfg.max_detail_chars])
                began = started_at(message.get("at"), forked, time.monotonic())
                message = lines.next(min(began + per_test, job_deadline))
                if isinstance(message, dict) and message.get("t") == "verdict":
                    flags.update(f for f in message.get("flags", ()) if f in tester.KNOWN_FLAGS)
                    status = message.get("s") if message.get("s") in ("passed", "failed", "error") else "error"
                    return TestVerdict(status, str(message.get("d", ""))[: cfg.max_detail_chars],
                                       time.monotonic() - began)
            took = 0.0 if began is None else time.monotonic() - began
            if message == "timeout":
                if time.monotonic() >= job_deadline:
                    return TestVerdict("timeout", f"job time limit of {cfg.job_timeout_s:g}s reached", took)
                return TestVerdict("timeout", f"no verdict within {per_test:g}s", took)
            return TestVerdict("error", "the test process died before giving a verdict", took)
        finally:
            os.close(read_fd)
            kill_all_children(self.strong, spare=self.spawner_pid)
            harden.drop_scratch(scratch, self.strong)
            self._reset_candidates()

    # -- differential testing -----------------------------------------------------------------
    def run_calls(self, job: CallsJob) -> CallsResult:
        """Call the entry point on each input in one candidate; bring the values back.

        Inputs go out in chunks; the candidate answers in parts while its calls take long. A call
        is over its limit when the candidate says it took longer, or when no answer comes within
        twice the largest limit among the chunk's unanswered calls and a second (a candidate that
        lies about its times gains that slack, no more); ``total_limit`` bounds the whole job."""
        started = time.monotonic()
        deadline = started + job.total_limit
        flags: set[str] = set()
        outcomes: list[CallOutcome] = []
        prepared = candidate.prepare(job.program, "", self.config.max_detail_chars)
        sock = self._spawn_candidate(prepared.for_spawner(job.entry_point))
        try:
            link = CandidateLink(sock.fileno(), self.config.max_message_bytes)
            ready = link.receive(min(started + max(self.config.timeout_s, 1.0), deadline))
            if isinstance(ready, str):
                why = "did not load in time" if ready == "timeout" else "exited while loading"
                return CallsResult([], self.tier, f"the program {why}", sorted(flags), time.monotonic() - started)
            collect_flags(ready, flags)
            if ready[0] != "ready" or ready[1] is not None:
                return CallsResult([], self.tier, f"{ready[1]}"[: self.config.max_detail_chars], sorted(flags),
                                   time.monotonic() - started)
            for chunk in chunks(job.inputs, self.config.max_message_bytes // 4):
                first = len(outcomes)
                try:
                    wire.send(link.fd, wire.dumps(("apply", 0, list(job.inputs[first:first + chunk]),
                                                   (job.entry_point, job.fingerprint_over))))
                except wire.WireError:
                    outcomes.append(CallOutcome("error", detail="the program's process exited"))
                    break
                if not self._await_calls(link, job, first, first + chunk, outcomes, flags, deadline):
                    break
        finally:
            sock.close()
            self._reset_candidates()
        return CallsResult(outcomes, self.tier, None, sorted(flags), time.monotonic() - started)

    def _await_calls(self, link: CandidateLink, job: CallsJob, first: int, end: int, outcomes: list[CallOutcome],
                     flags: set, deadline: float) -> bool:
        """Collect the outcomes of calls ``first:end``; False once one is not ``ok`` (calls stop)."""
        limit = self.config.max_detail_chars
        while True:
            # Twice the limit and a second: room for sending a large value, which the call's own
            # (reported) time does not include.
            waiting = 2 * max(job.limits[len(outcomes):end], default=0.0) + 1.0
            reply = link.receive(min(time.monotonic() + waiting, deadline))
            if reply == "timeout":
                outcomes.append(CallOutcome("timeout", detail=f"no answer within {waiting:g}s"
                                            if time.monotonic() < deadline else
                                            f"the calls' total time limit of {job.total_limit:g}s was reached"))
                return False
            if isinstance(reply, str) or reply[0] not in ("ok", "part") or type(reply[1]) is not list:
                if reply != "closed":
                    flags.add("protocol_violation")
                outcomes.append(CallOutcome("error", detail="the program's process exited" if reply == "closed"
                                            else "the program's process broke protocol"))
                return False
            collect_flags(reply, flags)
            for item in reply[1]:
                i = len(outcomes)
                if i >= end or type(item) is not tuple or len(item) < 3 or type(item[-1]) is not float:
                    flags.add("protocol_violation")
                    outcomes.append(CallOutcome("error", detail="the program's process broke protocol"))
                    return False
                kind, took = item[0], item[-1]
                if took > job.limits[i]:
                    outcomes.append(CallOutcome("timeout", seconds=took, detail=f"took {took:.3g}s, over the limit of {job.limits[i]:g}s"))
                    return False
                if kind == "raise" and type(item[1]) is str:
                    text = item[2] if type(item[2]) is str else ""
                    if item[1] in ("SystemExit", "KeyboardInterrupt", "GeneratorExit"):
                        flags.add("exit_attempt")
                    outcomes.append(CallOutcome("raised", seconds=took, detail=f"{item[1]}: {text}"[:limit]))
                    return False
                if kind == "fp" and (item[1] is None or type(item[1]) is str):
                    outcomes.append(CallOutcome("ok", Fingerprint(item[1]), took))
                elif kind == "ok" and wire.is_plain(item[1]):
                    outcomes.append(CallOutcome("ok", item[1], took))
                elif kind == "ok":  # not a stop: a caller may still ask whether it was None (EvalPlus does)
                    outcomes.append(CallOutcome("opaque", seconds=took, detail="the call returned an object of the "
                                                "program's own type, which no comparison can trust"))
                else:
                    flags.add("protocol_violation")
                    outcomes.append(CallOutcome("error", detail="the program's process broke protocol"))
                    return False
            if reply[0] == "ok":
                if len(outcomes) < end:
                    flags.add("protocol_violation")
                    outcomes.append(CallOutcome("error", detail="the program's process answered too few calls"))
                    return False
                return True

    # -- the job loop -------------------------------------------------------------------------
    def serve(self, stdin: int, stdout: int, why_weak: str) -> None:
        write_line(stdout, {"hello": True, "tier": self.tier, "why": why_weak})
        lines = Lines(stdin)
        while True:
            message = lines.next(None)
            if message in ("eof", "timeout"):
                return
            try:
                if isinstance(message, dict) and message.get("kind") == "calls":
                    try:
                        job = CallsJob.from_dict(message)
                    except JobError as exc:
                        result = CallsResult.infra_error(f"malformed job: {exc}", self.tier)
                    else:
                        result = self.run_calls(job)
                    write_line(stdout, result.to_dict())
                    continue
                result = self.run(Job.from_dict(message))
            except SpawnerGone as exc:
                # Every later job would fail the same way: end this worker without an answer, so that
                # the pool starts a fresh one and runs the job again (its stderr has the spawner's last words).
                sys.stderr.write(f"sandbox worker: {exc}\n")
                os._exit(3)
            except Exception:  # a bug of ours: reported as such, never as a code failure
                tb = traceback.format_exc(limit=3)[-self.config.max_detail_chars:]
                count = len(message.get("tests", [])) if isinstance(message, dict) else 0
                result = (CallsResult.infra_error(f"sandbox worker error: {tb}", self.tier)
                          if isinstance(message, dict) and message.get("kind") == "calls"
                          else Result.infra_error(count, f"sandbox worker error: {tb}", self.tier))
            write_line(stdout, result.to_dict())
