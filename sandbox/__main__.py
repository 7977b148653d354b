"""Command line: ``python -m sandbox run [--jsonl]`` reads jobs on stdin, prints results as JSON.

    echo '{"program": "def f(x):\\n    return x", "tests": ["assert f(1) == 1"]}' | python -m sandbox run
    python -m sandbox run --jsonl < jobs.jsonl > results.jsonl     # one job per line, same order out

A malformed job gets a one-line error naming the line and the problem (exit status 2); nothing runs.
If a worker had to be restarted during the run, a line ``warning: sandbox: N worker restart(s) ...``
goes to stderr (stdout stays results only); the verdicts are those of the rerun jobs.
"""

from __future__ import annotations

import argparse
import json
import sys

from .config import TIERS, SandboxConfig
from .pool import Sandbox, SandboxUnavailable
from .types import Job, JobError


def _read_jobs(text: str, jsonl: bool) -> list[Job]:
    chunks = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()] if jsonl else [(1, text)]
    if not chunks:
        raise JobError("no job on standard input")
    jobs = []
    for line_no, chunk in chunks:
        where = f"line {line_no}" if jsonl else "standard input"
        try:
            data = json.loads(chunk)
        except json.JSONDecodeError as exc:
            raise JobError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        try:
            jobs.append(Job.from_dict(data))
        except JobError as exc:
            raise JobError(f"{where}: {exc}") from None
    return jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run jobs read from standard input")
    run.add_argument("--jsonl", action="store_true", help="one job per line; results in the same order")
    run.add_argument("--workers", type=int, default=None, help="parallel workers (default: one per core)")
    run.add_argument("--timeout", type=float, default=None, help="default seconds per test")
    run.add_argument("--min-isolation", choices=TIERS, default="namespaces",
                     help="refuse to run below this isolation tier (default: namespaces)")
    args = parser.parse_args(argv)

    try:
        jobs = _read_jobs(sys.stdin.read(), args.jsonl)
        config = SandboxConfig(workers=args.workers, min_isolation=args.min_isolation)
        if args.timeout is not None:
            config.timeout_s = args.timeout
            config.__post_init__()
    except (JobError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        with Sandbox(config) as sandbox:
            results = sandbox.run_many(jobs)
            restarts = sandbox.restarts
    except SandboxUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    for result in results:
        sys.stdout.write(json.dumps(result.to_dict()) + "\n")
    if restarts:
        print(f"warning: sandbox: {restarts} worker restart(s) during this run", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
