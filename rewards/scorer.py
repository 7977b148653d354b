"""One batch, one computation: the object every reward function of a trainer shares.

TRL calls the reward functions one after another with the same batch; the scorer recognises the
batch by a content hash of its columns and hands each function the same ``RewardContext``.

A trainer that reads the scored batches after the step (failure replay, the sample log) makes the scorer with
``keep_scored=True`` and takes them with ``drain``: the batches scored since the last drain, each with what
every reward function returned for it, and the seconds the reward functions took.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

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

    def __init__(self, config: RewardConfig, engine: ExecutionEngine | None = None, need_mutants: bool | None = None,
                 keep_scored: bool = False):
        self.config = config
        self.engine = engine if engine is not None else ExecutionEngine(cache_size=config.cache_size)
        self.need_mutants = config.discriminator_variant == "mutation" if need_mutants is None else need_mutants
        self.keep_scored = keep_scored
        self._last: tuple[str, RewardContext] | None = None
        self._scored: list[RewardContext] = []
        self._seconds = 0.0

    def context(self, kwargs: Mapping[str, Any]) -> tuple[RewardContext, bool]:
        """The batch's context and whether it was computed by this call (False: reused)."""
        key = fingerprint(kwargs)
        if self._last is not None and self._last[0] == key:
            return self._last[1], False
        samples = parse_batch(kwargs, self.config.num_stages)
        ctx = RewardContext(samples, self.config, self.engine, self.need_mutants)
        self._last = (key, ctx)
        if self.keep_scored:
            self._scored.append(ctx)
        return ctx, True

    @contextmanager
    def timed(self) -> Iterator[None]:
        """Counts the wall time of a reward function's call (``drain`` hands the sum over)."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self._seconds += time.perf_counter() - started

    def drain(self) -> tuple[list[RewardContext], float]:
        """The batches scored since the last drain (``keep_scored``; each context's ``returned`` holds what every
        reward function returned) and the seconds the reward functions took meanwhile."""
        scored, seconds = self._scored, self._seconds
        self._scored, self._seconds = [], 0.0
        return scored, seconds

    def metrics(self, kwargs: Mapping[str, Any]) -> dict[str, float]:
        """Flat per-role, per-stage metrics of the batch (see ``rewards.metrics.batch_metrics``)."""
        return batch_metrics(self.context(kwargs)[0])
