"""Everything the reward functions of one batch read, computed once.

TRL calls each reward function separately with the same batch; they all need the same executions
(test validity on the reference, the final code on the tests, mutants), so ``RewardContext`` has
them run once (``rewards.sandbox_calls``, at most three sandbox calls), judged once (``rewards.verdicts``),
and derives from those verdicts every reward component and reward that the reward functions and
metrics read. This module holds only that last step: the formulas, not the executions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from prompts.collapse import chain_text
from prompts.record import RolloutRecord
from rewards.config import RewardConfig
from rewards.engine import ExecutionEngine
from rewards.sandbox_calls import BatchRuns, Task
from rewards.shaping import repetition_score, format_score
from rewards.verdicts import conclude


@dataclass
class DiscriminatorScore:
    """Discriminator components over one set of stages (see README for the formulas)."""

    valid: int = 0
    invalid: int = 0
    validity: float = 0.0
    invalid_pct: float = 0.0
    bug_catch_rate: float = 0.0
    mutant_kill_rate: float = 0.0
    adversarial: float = 0.0
    weighted: float = 0.0
    mutation: float = 0.0


class RewardContext:
    """Executions and per-sample components of one batch.

    Args:
        samples: the batch (``rewards.batch.parse_batch``).
        config: reward settings.
        engine: the execution engine (shared across steps for its cache).
        need_mutants: build and run mutants (the ``mutation`` variant or its metrics are wanted).
    """

    def __init__(self, samples: Sequence[RolloutRecord], config: RewardConfig, engine: ExecutionEngine, need_mutants: bool):
        self._batch = BatchRuns(samples, config, engine, need_mutants)
        self.samples = self._batch.samples
        self.config = config
        self.need_mutants = need_mutants
        self.exec_stats = self._batch.exec_stats
        self.tasks: dict[tuple, Task] = self._batch.tasks
        self.reference_flags: list[set[str]] = self._batch.reference_flags
        self.records, self.code_verdicts = conclude(self._batch)
        self.returned: dict[str, list[float | None]] = {}  # what each reward function returned, by its name

    # ----------------------------------------------------------------- components

    def valid_tests(self, index: int, stages: Iterable[int] | None = None) -> list[str]:
        """Distinct valid generated tests of sample ``index`` (restricted to ``stages`` if given)."""
        wanted = None if stages is None else set(stages)
        return list(
            dict.fromkeys(
                r.test for r in self.records[index] if r.status == "valid" and (wanted is None or r.stage in wanted)
            )
        )

    def task_of(self, index: int) -> Task:
        return self._batch.task_of(index)

    def generator_pass_rate(self, index: int, tests: Sequence[str] | None = None) -> float:
        """Pass rate of sample ``index``'s final code on ``tests`` (default: the problem's tests
        plus the valid generated tests of stages <= train_stage). Sandbox failures are left out."""
        sample = self.samples[index]
        if tests is None:
            tests = list(sample.tests) + self.valid_tests(index, sample.stages_in_scope("cumulative"))
        verdicts = [self.code_verdicts[index][t] for t in dict.fromkeys(tests)]
        judged = [v for v in verdicts if v.status != "infra_error"]
        return sum(v.passed for v in judged) / len(judged) if judged else 0.0

    def generator_flags(self, index: int) -> set[str]:
        """Flags the final code raised beyond those the reference raises on the problem's tests."""
        flags = {f for v in self.code_verdicts[index].values() for f in v.flags}
        return flags - self.task_of(index).baseline_flags

    def discriminator(self, index: int, stages: Iterable[int]) -> DiscriminatorScore:
        """Discriminator components of sample ``index`` over the tests of ``stages``."""
        cfg, sample = self.config, self.samples[index]
        stages = set(stages)
        records = [r for r in self.records[index] if r.stage in stages]
        score = DiscriminatorScore()
        score.valid = sum(r.status == "valid" for r in records)
        score.invalid = sum(r.status == "invalid" for r in records)
        if cfg.count_rejections_as_invalid and stages >= set(range(1, cfg.num_stages + 1)):
            score.invalid += sum(sample.disc_rejections.values())
        total = score.valid + score.invalid
        if total:
            score.validity, score.invalid_pct = score.valid / total, score.invalid / total
        valid = self.valid_tests(index, stages)
        judged = [self.code_verdicts[index][t] for t in valid]
        judged = [v for v in judged if v.status != "infra_error"]
        if judged:
            score.bug_catch_rate = sum(not v.passed for v in judged) / len(judged)
        task = self.task_of(index)
        if task.killable:
            killed = set().union(*(task.kills.get(t, set()) for t in valid))
            score.mutant_kill_rate = len(killed & task.killable) / len(task.killable)
        score.adversarial = score.bug_catch_rate * score.validity
        weighted = cfg.weighted_valid * score.validity - cfg.weighted_invalid * score.invalid_pct
        score.weighted = max(-1.0, min(1.0, weighted + cfg.weighted_bug_catch * score.bug_catch_rate))
        score.mutation = score.mutant_kill_rate * score.validity
        return score

    def invalid_reasons(self, index: int, stage: int | None = None) -> dict[str, int]:
        """Counts of invalid tests by reason: all of them with the rollout's parse rejections (which
        carry no stage), or those written after ``stage``."""
        counts = dict(self.samples[index].disc_rejections) if stage is None else {}
        for r in self.records[index]:
            if r.status == "invalid" and r.reason and (stage is None or r.stage == stage):
                counts[r.reason] = counts.get(r.reason, 0) + 1
        return counts

    # ----------------------------------------------------------------- rewards

    def _per_role(self, role: str, fn) -> list[float | None]:
        return [fn(i) if s.role == role else None for i, s in enumerate(self.samples)]

    def generator_rewards(self) -> list[float | None]:
        shift = 0.5 if self.config.centred else 0.0
        return self._per_role("generator", lambda i: self.generator_pass_rate(i) - shift)

    def discriminator_rewards(self, variant: str) -> list[float | None]:
        scope = self.config.stage_scope
        return self._per_role(
            "discriminator", lambda i: getattr(self.discriminator(i, self.samples[i].stages_in_scope(scope)), variant)
        )

    def format_rewards(self) -> list[float | None]:
        """Generators: ``format_score``. Discriminators: share of their test blocks the rollout's
        parser accepted (0 when they wrote nothing)."""
        out: list[float | None] = []
        for s in self.samples:
            if s.role == "generator":
                out.append(format_score(list(s.stage_texts), s.final_code, s.entry_point, self.config.num_stages))
            else:
                accepted = sum(len(t) for t in s.tests_by_stage)
                total = accepted + sum(s.disc_rejections.values())
                out.append(accepted / total if total else 0.0)
        return out

    def repetition_scores(self, index: int) -> list[float]:
        return [repetition_score(text, self.config.repetition_ngram) for text in self.samples[index].stage_texts]

    def chain_repetition_score(self, index: int) -> float:
        """``repetition_score`` of the whole chain (``prompts.collapse.chain_text``): a stage pasted into the next
        ones is repetition here, though no single stage repeats itself."""
        return repetition_score(chain_text(self.samples[index].stage_texts), self.config.repetition_ngram)

    def repetition_rewards(self) -> list[float | None]:
        """Generators only: ``-penalty * (score - threshold) / (1 - threshold)`` above the threshold
        (a ramp from 0, so crossing the threshold is not a cliff), score = the worst of the stages and of
        the chain as a whole."""
        cfg = self.config

        def reward(i: int) -> float:
            score = max([*self.repetition_scores(i), self.chain_repetition_score(i)])
            if score <= cfg.repetition_threshold:
                return 0.0
            return -cfg.repetition_cost * (score - cfg.repetition_threshold) / (1 - cfg.repetition_threshold)

        return self._per_role("generator", reward)

    def hack_rewards(self) -> list[float]:
        """``hack_penalty`` for a sample whose own execution raised a sandbox flag: the final
        code's jobs for a generator, its tests on the reference for a discriminator. Flags the
        reference itself raises on the problem's tests (e.g. ``lying_object`` for a reference
        returning a ``Counter``) are the problem's, not a hack, and are discounted."""
        out = []
        for i, s in enumerate(self.samples):
            flags = self.generator_flags(i) if s.role == "generator" else self.reference_flags[i]
            out.append(self.config.hack_penalty if flags else 0.0)
        return out
