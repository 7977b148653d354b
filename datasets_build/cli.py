"""``python -m datasets_build``: build, verify and save (or push) the project's datasets."""

from __future__ import annotations

import argparse
import logging
import sys

import datasets

from sandbox import SandboxConfig, SandboxUnavailable

from .build import DEFAULT_SOURCES, BuildConfig, build_with_report
from .schema import DIFFICULTIES, DatasetFormatError
from .sources import SOURCE_NAMES, SourceConfig


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m datasets_build",
        description="Convert HumanEval, MBPP, HumanEval-mini, HumanEval+ and MBPP+ (or JSONL files) to one schema, "
        "verify every reference solution in the sandbox, and save a DatasetDict.",
    )
    p.add_argument("--sources", type=_names, default=DEFAULT_SOURCES,
                   help=f"comma-separated names ({', '.join(SOURCE_NAMES)}) or JSONL paths (default: %(default)s)")
    p.add_argument("--out", help="folder to write the DatasetDict to (save_to_disk)")
    p.add_argument("--push-to-hub", metavar="REPO", help="also push the DatasetDict to this Hub dataset repo")
    p.add_argument("--mbpp-file", help="MBPP in the original JSONL release format, used when the Hub is unreachable")
    p.add_argument("--mbpp-sanitized-file", help="MBPP sanitized as JSONL, used when the Hub is unreachable")
    p.add_argument("--humanevalplus-file", help="HumanEval+ release file (HumanEvalPlus-v0.1.10.jsonl[.gz]); "
                   "default: $HUMANEVAL_OVERRIDE_PATH, else the evalplus cache, else the packaged copy")
    p.add_argument("--mbppplus-file", help="MBPP+ release file (MbppPlus-v0.2.0.jsonl[.gz]); "
                   "default: $MBPP_OVERRIDE_PATH, else the evalplus cache, else the packaged copy")
    p.add_argument("--humaneval-repo", default=SourceConfig.humaneval_repo, help="Hub repo id or local folder (default: %(default)s)")
    p.add_argument("--mbpp-repo", default=SourceConfig.mbpp_repo, help="Hub repo id or local folder (default: %(default)s)")
    p.add_argument("--offline", action="store_true", help="do not contact the Hub; use local files")
    p.add_argument("--hub-timeout", type=float, default=SourceConfig.hub_timeout_s, help="seconds before giving up on the Hub")
    p.add_argument("--max-reference-lines", type=int, help="keep tasks whose reference has at most this many code lines")
    p.add_argument("--difficulty", type=_names, default=(), help=f"keep only these difficulties ({', '.join(DIFFICULTIES)})")
    p.add_argument("--category", type=_names, default=(), help="keep only these categories (e.g. 'arithmetic,conditionals')")
    p.add_argument("--no-verify", action="store_true", help="skip running references in the sandbox (not recommended)")
    p.add_argument("--no-decontaminate", action="store_true", help="keep training rows that duplicate evaluation rows")
    p.add_argument("--workers", type=int, help="sandbox workers (default: one per core)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per test when verifying references")
    p.add_argument("--min-isolation", choices=("namespaces", "process"), default="namespaces", help="weakest sandbox tier accepted")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log every fallback and dropped row as it happens")
    return p


def config_from_args(args: argparse.Namespace) -> BuildConfig:
    return BuildConfig(
        sources=args.sources,
        out=args.out,
        push_to_hub=args.push_to_hub,
        verify=not args.no_verify,
        max_reference_lines=args.max_reference_lines,
        difficulties=args.difficulty,
        categories=args.category,
        progress=not args.no_progress,
        decontaminate=not args.no_decontaminate,
        source=SourceConfig(
            use_hub=not args.offline,
            hub_timeout_s=args.hub_timeout,
            humaneval_repo=args.humaneval_repo,
            mbpp_repo=args.mbpp_repo,
            mbpp_file=args.mbpp_file,
            mbpp_sanitized_file=args.mbpp_sanitized_file,
            humanevalplus_file=args.humanevalplus_file,
            mbppplus_file=args.mbppplus_file,
        ),
        sandbox=SandboxConfig(workers=args.workers, timeout_s=args.timeout, job_timeout_s=max(120.0, 12 * args.timeout),
                              min_isolation=args.min_isolation),
    )


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if not args.out and not args.push_to_hub:
        p.error("give --out DIR and/or --push-to-hub REPO")
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.no_progress:
        datasets.disable_progress_bars()
    try:
        config = config_from_args(args)
        _, report = build_with_report(config)
    except (DatasetFormatError, SandboxUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.table())
    return 0
