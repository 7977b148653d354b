"""Start-up stress: start the sandbox many times under CPU load, as a user would, and count worker restarts.

    python -m sandbox.stress --starts 300 --load 2

Each start is ``python -m sandbox run --jsonl`` in a fresh process, given a few small jobs on
stdin (as ``echo JOBS | python -m sandbox run --jsonl`` would), while ``--load`` processes burn CPU
beside it: every worker of every start prepares itself (its candidate zygote rehearses the
candidate's code path) on a busy machine, which is where start-up races show. The jobs' calls are
slow enough that every worker gets one (a worker that failed to start is only seen when it gets a
job) and that the candidate's replies come in parts.

Counted, per start: worker restarts (the CLI's ``warning: sandbox: N worker restart(s)`` line and
the pool's ``...; restarting`` warnings on stderr, whichever says more), wrong verdicts (a result
whose status or counts differ from the expected ones, ``infra_error`` included) and failed starts
(non-zero exit status, no answer within ``--start-timeout``, or not one result per job). Progress
goes to stdout every ``--every`` starts, each anomaly as it happens, and a last line
``stress: N starts ... restarts=R wrong_verdicts=W failed_starts=F``. The exit status is 1 if any
of the three is non-zero.

The load processes stop by themselves when this one ends (they watch their parent) or after
``--max-seconds``, and are killed on the way out. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Calls that take longer than the candidate's PART_AFTER_S (2 ms), so that outcomes come back in
# parts, and jobs long enough (a few tens of ms each) that every worker takes at least one.
_SLOW = "import time\ndef f(x):\n    time.sleep(0.02)\n    return x + 1\n"
JOBS = [  # (job, expected status, passed, total)
    ({"program": _SLOW, "tests": ["assert f(1) == 2\nassert f(2) == 3\nassert f(3) == 4", "assert f(0) == 1"]},
     "passed", 2, 2),
    ({"program": _SLOW, "tests": ["assert f(1) == 2\nassert f(2) == 5\nassert f(3) == 4", "assert f(0) == 1"]},
     "failed", 1, 2),
    ({"program": _SLOW, "tests": ["y = f(1)\nassert y == 2", "assert f(5) == 6"]}, "passed", 2, 2),
    ({"program": "def f(x):\n    return 1 / x\n", "tests": ["assert f(1) == 1", "assert f(0) == 0"]}, "error", 1, 2),
]
_CLI_RESTARTS = re.compile(r"warning: sandbox: (\d+) worker restart")
_POOL_RESTART = re.compile(r"sandbox worker \d+ failed \(attempt \d+\); restarting")
_BURN = (
    "import os, sys, time\n"
    "parent, end = int(sys.argv[1]), time.monotonic() + float(sys.argv[2])\n"
    "while time.monotonic() < end and os.getppid() == parent:\n"
    "    for _ in range(20000):\n"
    "        pass\n"
)


def start_load(n: int, max_seconds: float) -> list[subprocess.Popen]:
    """``n`` processes that keep a CPU busy each, until we end or ``max_seconds`` pass."""
    return [subprocess.Popen([sys.executable, "-S", "-c", _BURN, str(os.getpid()), str(max_seconds)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(n)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
    for proc in procs:
        proc.wait()


def one_start(jobs_text: str, workers: int | None, timeout: float) -> tuple[int, list[str], list[str], float]:
    """Start the sandbox once on the jobs; returns (restarts, wrong verdicts, failure, seconds)."""
    cmd = [sys.executable, "-m", "sandbox", "run", "--jsonl"]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    began = time.monotonic()
    try:
        done = subprocess.run(cmd, input=jobs_text, capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode(errors="replace") if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        restarts = max(sum(int(n) for n in _CLI_RESTARTS.findall(err)), len(_POOL_RESTART.findall(err)))
        return restarts, [], [f"no answer within {timeout:g} s; stderr: {err[-1500:]}"], time.monotonic() - began
    seconds = time.monotonic() - began
    restarts = max(sum(int(n) for n in _CLI_RESTARTS.findall(done.stderr)), len(_POOL_RESTART.findall(done.stderr)))
    if restarts:
        print(f"  restart(s): {restarts}; stderr: {done.stderr[-1500:]}", flush=True)
    if done.returncode != 0:
        return restarts, [], [f"exit status {done.returncode}; stderr: {done.stderr[-1500:]}"], seconds
    try:
        results = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        return restarts, [], [f"unreadable output ({exc}): {done.stdout[-500:]}"], seconds
    if len(results) != len(JOBS):
        return restarts, [], [f"{len(results)} results for {len(JOBS)} jobs: {done.stdout[-500:]}"], seconds
    wrong = []
    for n, (result, (_, status, passed, total)) in enumerate(zip(results, JOBS)):
        got = (result.get("status"), result.get("passed"), result.get("total"))
        if got != (status, passed, total):
            wrong.append(f"job {n}: expected {(status, passed, total)}, got {got}: {json.dumps(result)[:500]}")
    return restarts, wrong, [], seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.stress", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=300, help="how many times to start the sandbox (300)")
    parser.add_argument("--load", type=int, default=os.cpu_count() or 1,
                        help="CPU-burning processes running meanwhile (default: one per CPU)")
    parser.add_argument("--workers", type=int, default=None, help="the CLI's --workers (default: its own, one per core)")
    parser.add_argument("--start-timeout", type=float, default=180.0, help="seconds one start may take (180)")
    parser.add_argument("--max-seconds", type=float, default=6 * 3600.0,
                        help="the load processes end by themselves after this long at the latest")
    parser.add_argument("--every", type=int, default=10, help="print progress every this many starts (10)")
    args = parser.parse_args(argv)
    if args.starts < 1 or args.load < 0:
        parser.error("--starts must be at least 1 and --load at least 0")

    jobs_text = "".join(json.dumps(job) + "\n" for job, *_ in JOBS)
    restarts = wrong_verdicts = failed_starts = 0
    durations: list[float] = []
    began = time.monotonic()
    print(f"stress: {args.starts} starts of `python -m sandbox run --jsonl` ({len(JOBS)} jobs each) "
          f"under load {args.load} on {os.cpu_count()} CPUs", flush=True)
    load = start_load(args.load, args.max_seconds)
    try:
        for n in range(1, args.starts + 1):
            r, wrong, failure, seconds = one_start(jobs_text, args.workers, args.start_timeout)
            durations.append(seconds)
            restarts += r
            wrong_verdicts += len(wrong)
            failed_starts += bool(failure)
            for line in wrong + failure:
                print(f"  start {n}: {line}", flush=True)
            if n % args.every == 0 or n == args.starts:
                print(f"[{n:>4}/{args.starts}] {time.monotonic() - began:7.1f} s  restarts={restarts} "
                      f"wrong_verdicts={wrong_verdicts} failed_starts={failed_starts}", flush=True)
    except KeyboardInterrupt:
        print(f"interrupted after {len(durations)} starts", flush=True)
        failed_starts += 1
    finally:
        stop_load(load)
    wall = time.monotonic() - began
    mean = sum(durations) / len(durations) if durations else 0.0
    print(f"stress: {len(durations)} starts under load {args.load} in {wall:.1f} s "
          f"(mean {mean:.2f} s, max {max(durations, default=0.0):.2f} s per start): "
          f"restarts={restarts} wrong_verdicts={wrong_verdicts} failed_starts={failed_starts}", flush=True)
    return 1 if restarts or wrong_verdicts or failed_starts else 0


if __name__ == "__main__":
    sys.exit(main())
