"""How many tokens do the training problems' own asserts take? The measurement behind the per-stage
discriminator budgets (``discriminator_tokens``) of configs/rl_learn.yaml (issue 22).

Run 2 gave every discriminator stage 48 tokens, and 104 of its answers were syntax errors, mostly asserts
cut off: MBPP's list-valued tests are long. A discriminator answer is a fenced Python block of asserts
(prompts/templates/default/discriminator_stage*.txt), so a budget must hold the fence and a few asserts of
the length this task needs. This prints, with the embedded model's tokenizer:

* per assert: the distribution of the token length of one own assert line (median, p90, max);
* per problem: its longest assert, and the fenced block of k of its asserts (k = 1, 2, 3), as the
  discriminator would write them (``` ```python\\n`` + asserts + ``\\n``` ``` ``).

    .venv/bin/python scripts/measure_assert_tokens.py [--splits train validation] [--json out.json]

No model weights are loaded, only the tokenizer of ``pipeline/models/embedded.py``'s converted folder.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def quantile(values: Sequence[int], q: float) -> int:
    """The nearest-rank q-quantile (the smallest value with at least q of the values at or below it)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def describe(values: Sequence[int]) -> dict[str, int]:
    return {"n": len(values), "median": quantile(values, 0.5), "p90": quantile(values, 0.9), "max": max(values)}


def fenced(asserts: Sequence[str]) -> str:
    """A discriminator answer holding ``asserts``, one a line, in a Python fence."""
    return "```python\n" + "\n".join(a.strip() for a in asserts) + "\n```"


def fits(rows: Sequence[dict], count_tokens, budgets: Sequence[int]) -> dict[int, dict[str, float]]:
    """Per budget: the share of problems whose longest own assert, fenced, fits; and whose first 3, fenced, fit."""
    longest, three = [], []
    for row in rows:
        tests = _tests(row)
        if tests:
            longest.append(count_tokens(fenced([max(tests, key=count_tokens)])))
            three.append(count_tokens(fenced(tests[:3])))
    return {b: {"longest_assert": sum(x <= b for x in longest) / len(longest),
                "three_asserts": sum(x <= b for x in three) / len(three)} for b in budgets}


def _tests(row: dict) -> list[str]:
    return [t.strip() for t in (row["tests"] if isinstance(row["tests"], list) else [row["tests"]]) if t.strip()]


def measure(rows: Sequence[dict], count_tokens) -> dict[str, dict[str, int]]:
    """Distributions of own-assert token lengths: per assert, per problem's longest, per fenced block of k."""
    per_assert, longest = [], []
    blocks: dict[int, list[int]] = {1: [], 2: [], 3: []}
    for row in rows:
        tests = _tests(row)
        lengths = [count_tokens(t) for t in tests]
        if not lengths:
            continue
        per_assert += lengths
        longest.append(max(lengths))
        for k in blocks:
            if len(tests) >= k:
                blocks[k].append(count_tokens(fenced(tests[:k])))
    out = {"assert": describe(per_assert), "problem_longest_assert": describe(longest)}
    out.update({f"fenced_{k}_asserts": describe(v) for k, v in blocks.items() if v})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--splits", nargs="+", default=["train", "validation"], help="MBPP splits measured")
    parser.add_argument("--budgets", nargs="+", type=int, default=[48, 64, 80, 96, 128, 160],
                        help="budgets (tokens) whose share of problems that fit is printed")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    from datasets_build import load_problems
    from pipeline.models.embedded import embedded_model_dir

    tokenizer = AutoTokenizer.from_pretrained(embedded_model_dir())
    rows = load_problems("mbpp", split=args.splits).to_list()
    def count(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    stats = measure(rows, count)
    shares = fits(rows, count, args.budgets)
    print(f"MBPP {'+'.join(args.splits)}: {len(rows)} problems; tokens of the embedded model's tokenizer")
    print(f"{'what':<28}{'n':>6}{'median':>8}{'p90':>6}{'max':>6}")
    for name, d in stats.items():
        print(f"{name:<28}{d['n']:>6}{d['median']:>8}{d['p90']:>6}{d['max']:>6}")
    print(f"\n{'budget':<8}{'longest assert fits':>22}{'3 asserts fit':>16}   (share of problems, fenced)")
    for budget, share in shares.items():
        print(f"{budget:<8}{share['longest_assert']:>22.2f}{share['three_asserts']:>16.2f}")
    if args.json:
        args.json.write_text(json.dumps({**stats, "fits": shares}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
