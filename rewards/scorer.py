"""One batch, one computation: the object every reward function of a trainer shares.

TRL calls the reward functions one after another with the same batch; the scorer recognises the
batch by a content hash of its columns and hands each function the same ``RewardContext``.
"""

from __future__ import annotations

from typing import Any, Mapping

from rewards.batch import fingerprint, parse_batch
from rewards.config import RewardConfig
from rewards.engine import ExecutionEngine
from rewards.metrics import batch_metrics
from rewards.context import RewardContext


class RewardScorer:
    """Builds (and remembers the last) ``RewardContext`` for a batch of reward kwargs.

    Args:
        config: reward settings.
        engine: execution engine; None makes one on the process's shared sandbox.
        need_mutants: also build and run mutants; None = only for the ``mutation`` variant.
    """

    def __init__(self, config: RewardConfig, engine: ExecutionEngine | None = None, need_mutants: bool | None = None):
        self.config = config
        self.engine = engine if engine is not None else ExecutionEngine(cache_size=config.cache_size)
        self.need_mutants = config.discriminator_variant == "mutation" if need_mutants is None else need_mutants
        self._last: tuple[str, RewardContext] | None = None

    def context(self, kwargs: Mapping[str, Any]) -> tuple[RewardContext, bool]:
        """The batch's context and whether it was computed by this call (False: reused)."""
        key = fingerprint(kwargs)
        if self._last is not None and self._last[0] == key:
            return self._last[1], False
        samples = parse_batch(kwargs, self.config.num_stages)
        ctx = RewardContext(samples, self.config, self.engine, self.need_mutants)
        self._last = (key, ctx)
        return ctx, True

    def metrics(self, kwargs: Mapping[str, Any]) -> dict[str, float]:
        """Flat per-role, per-stage metrics of the batch (see ``rewards.metrics.batch_metrics``)."""
        return batch_metrics(self.context(kwargs)[0])
