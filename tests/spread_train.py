"""train.py with one more reward in the registry, ``text_spread``, for the end-to-end tests that need real gradients.

The tiny random model never writes code or tests that pass, so the execution rewards are the same for every
completion of a group, the group-relative advantages are zero and so are the policy gradients: a run then moves
its adapters by weight decay alone, and a resume that sampled other completions, or restored another RNG or
optimizer state, could still end with the same weights. ``text_spread`` gives each sample a reward drawn from its
sampled texts (sha256, so the same in every process and every run): it differs between the completions of a
group, the gradients are not zero, and other completions give other rewards and other weights.

Run as the script ``train.py`` is (``accelerate launch tests/spread_train.py --config ...``, recipe naming
``text_spread`` in ``reward_funcs``), or ``register`` it in a test that calls ``train.main`` in its own process.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

SPREAD = "text_spread"


def text_spread(ctx: Any) -> list[float]:
    """Per sample of the batch's ``rewards.RewardContext``: a number in [0, 1) fixed by what was sampled."""
    out = []
    for sample in ctx.samples:
        text = json.dumps([sample.role, sample.stage_texts, sample.tests_by_stage, dict(sample.disc_rejections)])
        out.append(int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64)
    return out


def register(registry: dict[str, Any] | None = None) -> None:
    """Add ``text_spread`` to ``registry`` (default: ``rewards.REWARD_FUNCS``, which train.py resolves names in)."""
    if registry is None:
        from rewards.registry import REWARD_FUNCS as registry
    registry[SPREAD] = text_spread


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # train.py is a script beside tests/, not installed
    register()
    import train

    sys.exit(train.main())
