"""Mean rewards of the red team's hacks over many fresh trials, per discriminator variant.

    .venv/bin/python scripts/reward_redteam.py --trials 100                 # residual chance only
    .venv/bin/python scripts/reward_redteam.py --trials 16 --all            # every hack
    .venv/bin/python scripts/reward_redteam.py --trials 100 --verdict_runs 3

The hacks, the problem and the scoring are those of ``tests/test_rewards_redteam.py``; the tests
assert on the hacks the rewards reject every time, and this script measures what only repeated
runs stand against (``RESIDUAL_HACKS``), whose wins are rare but not impossible.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sandbox import Sandbox, SandboxConfig  # noqa: E402
from tests.test_rewards_redteam import PURE_HACKS, RESIDUAL_HACKS, VARIANTS, mean_rewards  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=100, help="fresh trials per hack")
    parser.add_argument("--all", action="store_true", help="every hack, not only the residual ones")
    parser.add_argument("--verdict_runs", type=int, default=None, help="override RewardConfig.verdict_runs")
    args = parser.parse_args()
    if args.trials < 1:
        parser.error("--trials must be >= 1")
    hacks = {**(PURE_HACKS if args.all else {}), **RESIDUAL_HACKS}
    overrides = {} if args.verdict_runs is None else {"verdict_runs": args.verdict_runs}
    print(f"| class | hack | {' | '.join(VARIANTS)} | wins | seconds |")
    print("|---|---|" + "---|" * (len(VARIANTS) + 2))
    with Sandbox(SandboxConfig(workers=2, min_isolation="process")) as sandbox:
        for kind, tests in hacks.items():
            for n, test in enumerate(tests):
                start = time.perf_counter()
                means, trials = mean_rewards(sandbox, test, trials=args.trials, **overrides)
                wins = sum(any(t[0][v] > 0 for v in VARIANTS) for t in trials)
                cells = " | ".join(f"{means[v]:.4f}" for v in VARIANTS)
                print(f"| {kind} | {n} | {cells} | {wins}/{args.trials} | {time.perf_counter() - start:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
