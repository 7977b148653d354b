"""The command line of ``python -m pipeline.tools.memory --config RECIPE``: the estimate's table (or JSON).

Measuring a CPU run against it runs train.py's job, so it is a script: ``scripts/measure_memory.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from pipeline.tools.memory.estimate import estimate_recipe, table
from pipeline.tools.memory.shape import DEFAULT_PROBLEM_TOKENS, MemoryEstimateError


def estimate_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The options of an estimate (the measuring script adds its own); any other ``--field value`` overrides the
    recipe."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description,
        epilog="Any other --field value is a recipe override, as on train.py's command line.")
    parser.add_argument("--config", required=True, help="the recipe (YAML), as train.py takes it")
    parser.add_argument("--model_config", help="a config.json (or a model folder) to use instead of the recipe's model")
    parser.add_argument("--problem_tokens", type=int, default=DEFAULT_PROBLEM_TOKENS,
                        help=f"tokens of the problem statement and signature (default {DEFAULT_PROBLEM_TOKENS})")
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")
    return parser


def estimate_from_command_line(parser: argparse.ArgumentParser, argv: Sequence[str] | None
                               ) -> tuple[argparse.Namespace, list[str], Any] | None:
    """The parsed options, the recipe overrides and the recipe's estimate; None, with the error printed, when it
    cannot be estimated."""
    args, overrides = parser.parse_known_args(argv)
    try:
        return args, overrides, estimate_recipe(args.config, overrides, args.model_config, args.problem_tokens)
    except MemoryEstimateError as err:
        print(f"error: {err}", file=sys.stderr)
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = estimate_parser("python -m pipeline.tools.memory",
                             "Peak memory of a training recipe, estimated from the model's shape, part by part.")
    parsed = estimate_from_command_line(parser, argv)
    if parsed is None:
        return 2
    args, _, est = parsed
    result: dict[str, Any] = est.to_dict()
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(table(est))
    return 0


if __name__ == "__main__":
    sys.exit(main())

