"""Everything the reward functions of one batch read, computed once.

TRL calls each reward function separately with the same batch; they all need the same executions
(test validity on the reference, the final code on the tests, mutants), so ``RewardContext``
runs them in at most three sandbox calls and every reward function and metric reads its results:

1. validity: each sample's distinct generated tests against the reference solution and against
   two stand-ins whose function returns a constant (``prompts.checks``), plus the reference against the
   problem's own tests (a dataset sanity check, and the reference's time on them);
2. judgement: the reference again on the tests that passed (``verdict_runs`` runs in all); each
   sample's final code against the problem's tests and its *valid* generated tests, and
   (``mutation`` only) every mutant of each reference against the problem's tests and every valid
   generated test of that problem in the batch; each test under a time limit derived from the
   reference's time on it;
3. confirmation: every generated test that failed on a candidate or a mutant runs there again,
   ``verdict_runs - 1`` more times, next to as many more runs of the reference; a catch or a kill
   counts only if every run agrees.

Separate calls, not one, because only tests the reference passes may judge anything: running
invalid tests against candidates would waste a sandbox slot per pair (a looping test costs a
full timeout each time) and would blur whose hack a sandbox flag reports; and because only what
failed could change a reward by repeating, so only that runs again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from rewards.batch import Sample
from rewards.config import RewardConfig
from rewards.engine import ExecStats, ExecutionEngine, Program, Verdict
from rewards.mutation import Mutant, generate_mutants
from rewards.shaping import repetition_score, format_score
from prompts.checks import never_calls, reads_chance, stub_programs

# Why a generated test is invalid, by its verdict on the reference solution.
_REFERENCE_REASONS = {"failed": "reference_failed", "error": "reference_error", "timeout": "reference_timeout"}
# A pair whose runs disagree: the test decides by chance, not by the program.
_DISAGREE = "disagree"


@dataclass(frozen=True)
class GeneratedTest:
    """One test as the discriminator wrote it, at one stage.

    ``status`` is ``valid`` (the reference passes it in every run, no flag raised, it calls the
    function and fails without it, it repeats), ``invalid`` (``reason`` says why) or ``unknown``
    (the sandbox failed: counted in metrics, in neither fraction).
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
    """Per problem: the reference's runs on every test, its mutants, and who kills which."""

    own_tests: tuple[str, ...]
    program_args: tuple[str, str | None]  # setup, entry point
    reference: str
    mutants: list[Mutant] = field(default_factory=list)
    reference_runs: dict[str, list[Verdict]] = field(default_factory=dict)  # test -> runs on the reference
    vacuous: dict[str, bool] = field(default_factory=dict)  # generated test -> passes on a stand-in
    flaky: set[str] = field(default_factory=set)  # generated tests whose verdicts disagreed somewhere
    mutant_runs: dict[tuple[int, str], list[Verdict]] = field(default_factory=dict)
    kills: dict[str, set[int]] = field(default_factory=dict)  # test -> indices of mutants it kills
    killable: set[int] = field(default_factory=set)
    reference_fails_own: bool = False
    baseline_flags: frozenset[str] = frozenset()  # raised by the reference on its own tests

    def reference_time(self, test: str) -> float:
        return max((v.duration_s for v in self.reference_runs.get(test, ())), default=0.0)


@functools.lru_cache(maxsize=4096)
def _mutants(reference: str, max_mutants: int, seed: int) -> tuple[Mutant, ...]:
    return tuple(generate_mutants(reference, max_mutants, seed))


def _task_key(sample: Sample) -> tuple:
    return (sample.task_id, sample.reference, sample.setup, sample.entry_point, sample.own_tests)


def _combine(runs: Sequence[Verdict]) -> Verdict:
    """One verdict from a pair's runs: the sandbox failed in one (``infra_error``), all passed, all
    did not (the first run's status), or they disagree (``_DISAGREE``). Flags of every run."""
    flags = tuple(sorted({f for v in runs for f in v.flags}))
    duration = max((v.duration_s for v in runs), default=0.0)
    statuses = [v.status for v in runs]
    if "infra_error" in statuses:
        status = "infra_error"
    elif all(s == "passed" for s in statuses):
        status = "passed"
    elif any(s == "passed" for s in statuses):
        status = _DISAGREE
    else:
        status = statuses[0]
    return Verdict(status, flags, duration)


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
        self._code_runs: list[dict[str, list[Verdict]]] = [{} for _ in self.samples]
        self.code_verdicts: list[dict[str, Verdict]] = []
        self._validity_phase(engine)
        self._judgement_phase(engine)
        self._confirmation_phase(engine)
        self._conclude()

    # ----------------------------------------------------------------- execution

    def _program(self, source: str, task: _Task, timeout: float | None = None, run: int = 0) -> Program:
        setup, entry_point = task.program_args
        return Program(source, setup, entry_point, timeout if timeout is not None else self.config.test_timeout, run)

    def _run(self, engine: ExecutionEngine, requests: list[tuple[Program, list[str]]]) -> list[list[Verdict]]:
        verdicts, stats = engine.execute(requests)
        self.exec_stats.add(stats)
        return verdicts

    def _limited(self, source: str, task: _Task, tests: Iterable[str], run: int = 0) -> list[tuple[Program, list[str]]]:
        """Requests running ``tests`` on a candidate or mutant, one per time limit (see
        ``RewardConfig.candidate_limit``)."""
        by_limit: dict[float, list[str]] = {}
        for test in tests:
            by_limit.setdefault(self._limit(task, test), []).append(test)
        return [(self._program(source, task, limit, run), group) for limit, group in by_limit.items()]

    def _limit(self, task: _Task, test: str) -> float:
        """The test's time limit on candidates and mutants, from the reference's first run (the
        same in every run of a pair, whatever later runs of the reference took)."""
        return self.config.candidate_limit(task.reference_runs[test][0].duration_s)

    def _validity_phase(self, engine: ExecutionEngine) -> None:
        """Run 0 of every generated test on the reference and on the stand-ins; the reference on
        the problem's own tests. Tests that cannot call the program or read chance never run."""
        self._distinct: list[list[str]] = []
        self._static: list[dict[str, str]] = []  # test -> reason, for tests that never run
        for sample in self.samples:
            static: dict[str, str] = {}
            for test in dict.fromkeys(t for stage in sample.tests_by_stage for t in stage if t.strip()):
                if never_calls(test, sample.entry_point, sample.reference):
                    static[test] = "no_call"
                elif reads_chance(test):
                    static[test] = "chance_source"
            self._static.append(static)
            self._distinct.append([
                t for t in dict.fromkeys(t for stage in sample.tests_by_stage for t in stage if t.strip())
                if t not in static
            ])  # fmt: skip
        tasks = list(self.tasks.values())
        requests = [(self._program(t.reference, t), list(t.own_tests)) for t in tasks]
        per_sample = []  # (index of the reference's request, indices of the stand-ins' requests)
        for sample, tests in zip(self.samples, self._distinct):
            task = self.tasks[_task_key(sample)]
            first = len(requests)
            requests.append((self._program(sample.reference, task), tests))
            stubs = stub_programs(sample.entry_point)
            requests += [(self._program(stub, task), tests) for stub in stubs]
            per_sample.append((first, range(first + 1, first + 1 + len(stubs))))
        verdicts = self._run(engine, requests)
        for task, own in zip(tasks, verdicts[: len(tasks)]):
            task.reference_fails_own = any(v.status not in ("passed", "infra_error") for v in own)
            task.baseline_flags = frozenset(f for v in own for f in v.flags)
            for test, verdict in zip(task.own_tests, own):
                task.reference_runs.setdefault(test, [verdict])
        for sample, tests, (first, stubs) in zip(self.samples, self._distinct, per_sample):
            task = self.tasks[_task_key(sample)]
            for n, (test, verdict) in enumerate(zip(tests, verdicts[first])):
                task.reference_runs.setdefault(test, [verdict])
                task.vacuous.setdefault(test, all(verdicts[k][n].passed for k in stubs))
            flags = {f for v in verdicts[first] for f in v.flags} - task.baseline_flags
            self.reference_flags.append(flags)

    def _provisional(self, index: int) -> list[str]:
        """Sample ``index``'s tests that passed run 0 on the reference (no flag, fast enough, not
        passing on a stand-in): the ones that go on to the candidates."""
        if self.reference_flags[index]:
            return []
        task = self.task_of(index)
        share = self.config.too_slow_share * self.config.reference_timeout
        return [
            t for t in self._distinct[index]
            if task.reference_runs[t][0].passed and task.reference_time(t) <= share and not task.vacuous[t]
        ]  # fmt: skip

    def _judgement_phase(self, engine: ExecutionEngine) -> None:
        """Runs 1.. of the reference on the provisional tests; final code and mutants on the tests."""
        self._candidates = [self._provisional(i) for i in range(len(self.samples))]
        requests: list[tuple[Program, list[str]]] = []
        owners: list[tuple[str, int, _Task]] = []  # ("reference" | "code" | "mutant", sample or mutant index, task)
        for i, sample in enumerate(self.samples):
            task = self.tasks[_task_key(sample)]
            for run in range(1, self.config.verdict_runs):
                requests.append((self._program(sample.reference, task, run=run), self._candidates[i]))
                owners.append(("reference", i, task))
            tests = list(dict.fromkeys(list(sample.own_tests) + self._candidates[i]))
            for request in self._limited(sample.final_code, task, tests):
                requests.append(request)
                owners.append(("code", i, task))
        if self.need_mutants:
            for key, task in self.tasks.items():
                task.mutants = list(_mutants(task.reference, self.config.max_mutants, self.config.mutation_seed))
                tests = list(task.own_tests)
                for i, sample in enumerate(self.samples):
                    if _task_key(sample) == key:
                        tests += self._candidates[i]
                tests = list(dict.fromkeys(tests))
                for index, mutant in enumerate(task.mutants):
                    for request in self._limited(mutant.source, task, tests):
                        requests.append(request)
                        owners.append(("mutant", index, task))
        self._record(requests, owners, self._run(engine, requests))

    def _record(self, requests: list[tuple[Program, list[str]]], owners: list[tuple[str, int, _Task]],
                verdicts: list[list[Verdict]]) -> None:
        for (program, tests), (kind, index, task), results in zip(requests, owners, verdicts):
            for test, verdict in zip(tests, results):
                if kind == "reference":
                    runs = task.reference_runs.setdefault(test, [])
                    if len(runs) <= program.run:  # samples of a task share these runs
                        runs.append(verdict)
                elif kind == "code":
                    self._code_runs[index].setdefault(test, []).append(verdict)
                else:
                    task.mutant_runs.setdefault((index, test), []).append(verdict)

    def _confirmation_phase(self, engine: ExecutionEngine) -> None:
        """Runs 1.. of every (final code or mutant, generated test) pair that did not pass, beside
        further runs of the reference on those tests (in the same sandbox call, so a test cannot
        tell the reference's runs from the candidates' by when it runs)."""
        extra = self.config.verdict_runs - 1
        if extra == 0:
            return
        requests: list[tuple[Program, list[str]]] = []
        owners: list[tuple[str, int, _Task]] = []
        for i, sample in enumerate(self.samples):
            task = self.tasks[_task_key(sample)]
            failing = [t for t in self._candidates[i] if self._code_runs[i][t][0].status not in ("passed", "infra_error")]
            for run in range(1, extra + 1):
                requests.append((self._program(sample.reference, task, run=self.config.verdict_runs - 1 + run), failing))
                owners.append(("reference", i, task))
                for request in self._limited(sample.final_code, task, failing, run):
                    requests.append(request)
                    owners.append(("code", i, task))
        for task in self.tasks.values():
            generated = set(t for i, s in enumerate(self.samples) if self.tasks[_task_key(s)] is task
                            for t in self._candidates[i])
            for index, mutant in enumerate(task.mutants):
                failing = [t for t in generated if task.mutant_runs[(index, t)][0].status not in ("passed", "infra_error")]
                for run in range(1, extra + 1):
                    for request in self._limited(mutant.source, task, failing, run):
                        requests.append(request)
                        owners.append(("mutant", index, task))
        requests_owners = [(r, o) for r, o in zip(requests, owners) if r[1]]
        if requests_owners:
            kept_requests, kept_owners = map(list, zip(*requests_owners))
            self._record(kept_requests, kept_owners, self._run(engine, kept_requests))

    def _judged(self, task: _Task, test: str, runs: Sequence[Verdict]) -> Verdict:
        """A (candidate or mutant, test) pair's verdict from its runs. A timeout where the reference
        took more than ``limit / time_factor`` on the test is left unjudged (``infra_error``): it
        says more about the machine's load than about the program."""
        verdict = _combine(runs)
        if verdict.status == "timeout":
            if task.reference_time(test) * self.config.time_factor > self._limit(task, test):
                return Verdict("infra_error", verdict.flags, verdict.duration_s)
        return verdict

    def _conclude(self) -> None:
        """Statuses of every generated test, combined verdicts, mutant kills."""
        for i, sample in enumerate(self.samples):
            task = self.task_of(i)
            for test, runs in self._code_runs[i].items():
                if test in self._candidates[i] and _combine(runs).status == _DISAGREE:
                    task.flaky.add(test)
        for task in self.tasks.values():
            for (index, test), runs in task.mutant_runs.items():
                if test not in task.own_tests and _combine(runs).status == _DISAGREE:
                    task.flaky.add(test)
            for test in task.vacuous:
                if _combine(task.reference_runs[test]).status == _DISAGREE:
                    task.flaky.add(test)
        for i, sample in enumerate(self.samples):
            task = self.task_of(i)
            candidates = set(self._candidates[i])
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
                        records.append(GeneratedTest(stage_id, test, *self._status(i, task, test, candidates)))
            self.records.append(records)
            valid = {r.test for r in records if r.status == "valid"}
            self.code_verdicts.append({
                test: self._judged(task, test, runs) for test, runs in self._code_runs[i].items()
                if test in task.own_tests or test in valid
            })  # fmt: skip
        for task in self.tasks.values():
            valid = {r.test for i, records in enumerate(self.records) if self.task_of(i) is task
                     for r in records if r.status == "valid"}
            for (index, test), runs in task.mutant_runs.items():
                if test in task.own_tests or test in valid:
                    if self._judged(task, test, runs).status not in ("passed", "infra_error"):
                        task.kills.setdefault(test, set()).add(index)
                        task.killable.add(index)

    def _status(self, index: int, task: _Task, test: str, candidates: set[str]) -> tuple[str, str | None]:
        """Why a distinct generated test of sample ``index`` is (in)valid, in the order of the checks."""
        if test in self._static[index]:  # it never ran
            return "invalid", self._static[index][test]
        if self.reference_flags[index]:
            return "invalid", "sandbox_flag"
        first = task.reference_runs[test][0]
        if first.status == "infra_error":
            return "unknown", None
        if not first.passed:
            return "invalid", _REFERENCE_REASONS.get(first.status, first.status)
        if task.reference_time(test) > self.config.too_slow_share * self.config.reference_timeout:
            return "invalid", "too_slow"
        if task.vacuous[test]:
            return "invalid", "vacuous"
        if test in task.flaky:
            return "invalid", "nondeterministic"
        reference = _combine(task.reference_runs[test])
        code = _combine(self._code_runs[index].get(test, ()))
        if reference.status == "infra_error" or code.status == "infra_error" or test not in candidates:
            return "unknown", None
        return "valid", None

    def valid_tests(self, index: int, stages: Iterable[int] | None = None) -> list[str]:
        """Distinct valid generated tests of sample ``index`` (restricted to ``stages`` if given)."""
        wanted = None if stages is None else set(stages)
        return list(
            dict.fromkeys(
                r.test for r in self.records[index] if r.status == "valid" and (wanted is None or r.stage in wanted)
            )
        )

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

    def invalid_reasons(self, index: int, stage: int | None = None) -> dict[str, int]:
        """Counts of invalid tests by reason: all of them with the rollout's parse rejections (which
        carry no stage), or those written after ``stage``."""
        counts = dict(self.samples[index].rejections) if stage is None else {}
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
                total = accepted + sum(s.rejections.values())
                out.append(accepted / total if total else 0.0)
        return out

    def repetition_scores(self, index: int) -> list[float]:
        return [repetition_score(text, self.config.repetition_ngram) for text in self.samples[index].stage_texts]

    def repetition_rewards(self) -> list[float | None]:
        """Generators only: ``-penalty * (score - threshold) / (1 - threshold)`` above the threshold
        (a ramp from 0, so crossing the threshold is not a cliff), score = worst stage."""
        cfg = self.config

        def reward(i: int) -> float:
            score = max(self.repetition_scores(i))
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
