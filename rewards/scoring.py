"""Everything the reward functions of one batch read, computed once.

TRL calls each reward function separately with the same batch; they all need the same executions
(test validity on the reference, the final code on the tests, mutants), so ``RewardContext``
runs them in two sandbox calls and every reward function and metric reads its results:

1. validity: each sample's distinct generated tests against the reference solution, plus the
   reference against the problem's own tests (a dataset sanity check);
2. judgement: each sample's final code against the problem's tests and its *valid* generated
   tests, and (``mutation`` only) every mutant of each reference against the problem's tests and
   every valid generated test of that problem in the batch.

Two calls, not one, because only tests the reference passes may judge anything: running invalid
tests against candidates would waste a sandbox slot per pair (a looping test costs a full
timeout each time) and would blur whose hack a sandbox flag reports.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from rewards.batch import Sample
from rewards.config import RewardConfig
from rewards.engine import ExecStats, ExecutionEngine, Program, Verdict
from rewards.mutation import Mutant, generate_mutants
from rewards.shaping import collapse_score, format_score

# Why a generated test is invalid, by its verdict on the reference solution.
_REFERENCE_REASONS = {"failed": "reference_failed", "error": "reference_error", "timeout": "reference_timeout"}


@dataclass(frozen=True)
class GeneratedTest:
    """One test as the discriminator wrote it, at one stage.

    ``status`` is ``valid`` (the reference passes it, no flag raised), ``invalid`` (``reason``
    says why) or ``unknown`` (the sandbox failed: counted in metrics, in neither fraction).
    """

    stage: int
    test: str
    status: str
    reason: str | None = None


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


@dataclass
class _Task:
    """Per problem: its mutants, which of them some valid test kills, and who kills which."""

    own_tests: tuple[str, ...]
    program_args: tuple[str, str | None]  # setup, entry point
    reference: str
    mutants: list[Mutant] = field(default_factory=list)
    kills: dict[str, set[int]] = field(default_factory=dict)  # test -> indices of mutants it kills
    killable: set[int] = field(default_factory=set)
    reference_fails_own: bool = False
    baseline_flags: frozenset[str] = frozenset()  # raised by the reference on its own tests


@functools.lru_cache(maxsize=4096)
def _mutants(reference: str, max_mutants: int, seed: int) -> tuple[Mutant, ...]:
    return tuple(generate_mutants(reference, max_mutants, seed))


def _task_key(sample: Sample) -> tuple:
    return (sample.task_id, sample.reference, sample.setup, sample.entry_point, sample.own_tests)


class RewardContext:
    """Executions and per-sample components of one batch.

    Args:
        samples: the batch (``rewards.batch.parse_batch``).
        config: reward settings.
        engine: the execution engine (shared across steps for its cache).
        need_mutants: build and run mutants (the ``mutation`` variant or its metrics are wanted).
    """

    def __init__(self, samples: Sequence[Sample], config: RewardConfig, engine: ExecutionEngine, need_mutants: bool):
        self.samples = list(samples)
        self.config = config
        self.need_mutants = need_mutants
        self.exec_stats = ExecStats()
        self.tasks: dict[tuple, _Task] = {}
        for sample in self.samples:
            if _task_key(sample) not in self.tasks:
                self.tasks[_task_key(sample)] = _Task(
                    sample.own_tests, (sample.setup, sample.entry_point), sample.reference
                )
        self.records: list[list[GeneratedTest]] = []
        self.reference_flags: list[set[str]] = []
        self.code_verdicts: list[dict[str, Verdict]] = []
        self._validity_phase(engine)
        self._judgement_phase(engine)

    # ----------------------------------------------------------------- execution

    def _program(self, source: str, task: _Task, timeout: float | None) -> Program:
        setup, entry_point = task.program_args
        return Program(source, setup, entry_point, timeout)

    def _run(self, engine: ExecutionEngine, requests: list[tuple[Program, list[str]]]) -> list[list[Verdict]]:
        verdicts, stats = engine.execute(requests)
        self.exec_stats.add(stats)
        return verdicts

    def _validity_phase(self, engine: ExecutionEngine) -> None:
        timeout = self.config.test_timeout
        distinct = [list(dict.fromkeys(t for stage in s.tests_by_stage for t in stage if t.strip())) for s in self.samples]
        tasks = list(self.tasks.values())
        requests = [(self._program(s.reference, self.tasks[_task_key(s)], timeout), d) for s, d in zip(self.samples, distinct)]
        requests += [(self._program(t.reference, t, timeout), list(t.own_tests)) for t in tasks]
        verdicts = self._run(engine, requests)
        for task, own in zip(tasks, verdicts[len(self.samples) :]):
            task.reference_fails_own = any(v.status not in ("passed", "infra_error") for v in own)
            task.baseline_flags = frozenset(f for v in own for f in v.flags)
        for sample, tests, results in zip(self.samples, distinct, verdicts):
            by_test = dict(zip(tests, results))
            flags = {f for v in results for f in v.flags} - self.tasks[_task_key(sample)].baseline_flags
            self.reference_flags.append(flags)
            records: list[GeneratedTest] = []
            seen: set[str] = set()
            for stage_id, stage_tests in enumerate(sample.tests_by_stage, start=1):
                for test in stage_tests:
                    if not test.strip():
                        records.append(GeneratedTest(stage_id, test, "invalid", "empty"))
                    elif test in seen:
                        records.append(GeneratedTest(stage_id, test, "invalid", "duplicate"))
                    else:
                        seen.add(test)
                        records.append(self._judge_on_reference(stage_id, test, by_test[test], bool(flags)))
            self.records.append(records)

    @staticmethod
    def _judge_on_reference(stage: int, test: str, verdict: Verdict, flagged: bool) -> GeneratedTest:
        if verdict.status == "infra_error":
            return GeneratedTest(stage, test, "unknown")
        if flagged:
            return GeneratedTest(stage, test, "invalid", "sandbox_flag")
        if verdict.passed:
            return GeneratedTest(stage, test, "valid")
        return GeneratedTest(stage, test, "invalid", _REFERENCE_REASONS.get(verdict.status, verdict.status))

    def valid_tests(self, index: int, stages: Iterable[int] | None = None) -> list[str]:
        """Distinct valid generated tests of sample ``index`` (restricted to ``stages`` if given)."""
        wanted = None if stages is None else set(stages)
        return list(
            dict.fromkeys(
                r.test for r in self.records[index] if r.status == "valid" and (wanted is None or r.stage in wanted)
            )
        )

    def _judgement_phase(self, engine: ExecutionEngine) -> None:
        timeout = self.config.test_timeout
        requests: list[tuple[Program, list[str]]] = []
        for i, sample in enumerate(self.samples):
            task = self.tasks[_task_key(sample)]
            tests = list(dict.fromkeys(list(sample.own_tests) + self.valid_tests(i)))
            requests.append((self._program(sample.final_code, task, timeout), tests))
        mutant_requests: list[tuple[_Task, int, list[str]]] = []
        if self.need_mutants:
            for key, task in self.tasks.items():
                task.mutants = list(_mutants(task.reference, self.config.max_mutants, self.config.mutation_seed))
                tests = list(task.own_tests)
                for i, sample in enumerate(self.samples):
                    if _task_key(sample) == key:
                        tests += self.valid_tests(i)
                tests = list(dict.fromkeys(tests))
                for index, mutant in enumerate(task.mutants):
                    requests.append((self._program(mutant.source, task, self.config.mutant_timeout), tests))
                    mutant_requests.append((task, index, tests))
        verdicts = self._run(engine, requests)
        for (_, tests), results in zip(requests, verdicts[: len(self.samples)]):
            self.code_verdicts.append(dict(zip(tests, results)))
        for (task, index, tests), results in zip(mutant_requests, verdicts[len(self.samples) :]):
            for test, verdict in zip(tests, results):
                if verdict.status not in ("passed", "infra_error"):
                    task.kills.setdefault(test, set()).add(index)
                    task.killable.add(index)

    # ----------------------------------------------------------------- components

    def task_of(self, index: int) -> _Task:
        return self.tasks[_task_key(self.samples[index])]

    def generator_pass_rate(self, index: int, tests: Sequence[str] | None = None) -> float:
        """Pass rate of sample ``index``'s final code on ``tests`` (default: the problem's tests
        plus the valid generated tests of stages <= train_stage). Sandbox failures are left out."""
        sample = self.samples[index]
        if tests is None:
            tests = list(sample.own_tests) + self.valid_tests(index, sample.stages_in_scope("cumulative"))
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
            score.invalid += sum(sample.rejections.values())
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

    def invalid_reasons(self, index: int) -> dict[str, int]:
        """Counts of invalid tests by reason, parse rejections of the rollout included."""
        counts = dict(self.samples[index].rejections)
        for r in self.records[index]:
            if r.status == "invalid" and r.reason:
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
                total = accepted + sum(s.rejections.values())
                out.append(accepted / total if total else 0.0)
        return out

    def collapse_scores(self, index: int) -> list[float]:
        return [collapse_score(text, self.config.collapse_ngram) for text in self.samples[index].stage_texts]

    def collapse_rewards(self) -> list[float | None]:
        """Generators only: ``-penalty * (score - threshold) / (1 - threshold)`` above the threshold
        (a ramp from 0, so crossing the threshold is not a cliff), score = worst stage."""
        cfg = self.config

        def reward(i: int) -> float:
            score = max(self.collapse_scores(i))
            if score <= cfg.collapse_threshold:
                return 0.0
            return -cfg.collapse_penalty * (score - cfg.collapse_threshold) / (1 - cfg.collapse_threshold)

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
