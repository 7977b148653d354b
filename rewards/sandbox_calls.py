"""The sandbox calls of one batch: which program runs which tests, and the raw runs they return.

Every reward of a batch rests on the same executions (test validity on the reference, the final
code on the tests, mutants), so ``BatchRuns`` runs them in at most three sandbox calls and keeps
every run, unjudged; ``rewards.verdicts`` turns the runs into verdicts. The three calls:

1. validity: each sample's distinct generated tests against the reference solution and against
   the stand-ins (``prompts.checks.StandIns``: two constant answers, two wrong ones), plus the reference against the
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

from prompts.record import RolloutRecord
from rewards.config import RewardConfig
from rewards.engine import ExecStats, ExecutionEngine, Program, Verdict
from rewards.mutation import Mutant, generate_mutants
from prompts.checks import never_calls, own_assert_keys, reads_chance, restates_own_tests, stand_ins


@dataclass
class Task:
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


def _task_key(sample: RolloutRecord) -> tuple:
    return (sample.task_id, sample.reference_solution, sample.test_setup, sample.entry_point, sample.tests)


class BatchRuns:
    """The raw runs of one batch, executed on construction.

    Args:
        samples: the batch (``rewards.batch.parse_batch``).
        config: reward settings.
        engine: the execution engine (shared across steps for its cache).
        need_mutants: build and run mutants.

    Per problem the runs land in its ``Task``; per sample in ``code_runs`` (the final code's runs
    by test), ``reference_flags`` (flags its tests raised on the reference beyond the problem's
    own), ``static`` (tests that never ran, with the reason), ``distinct`` (its distinct tests that
    ran) and ``candidates`` (those that passed run 0 on the reference and went on to the candidates).
    """

    def __init__(self, samples: Sequence[RolloutRecord], config: RewardConfig, engine: ExecutionEngine, need_mutants: bool):
        self.samples = list(samples)
        self.config = config
        self.need_mutants = need_mutants
        self.exec_stats = ExecStats()
        self.tasks: dict[tuple, Task] = {}
        for sample in self.samples:
            if _task_key(sample) not in self.tasks:
                self.tasks[_task_key(sample)] = Task(
                    sample.tests, (sample.test_setup, sample.entry_point), sample.reference_solution
                )
        self.reference_flags: list[set[str]] = []
        self.code_runs: list[dict[str, list[Verdict]]] = [{} for _ in self.samples]
        self._validity_phase(engine)
        self._judgement_phase(engine)
        self._confirmation_phase(engine)

    def task_of(self, index: int) -> Task:
        return self.tasks[_task_key(self.samples[index])]

    def _program(self, source: str, task: Task, timeout: float | None = None, run: int = 0) -> Program:
        setup, entry_point = task.program_args
        return Program(source, setup, entry_point, timeout if timeout is not None else self.config.test_timeout, run)

    def _run(self, engine: ExecutionEngine, requests: list[tuple[Program, list[str]]]) -> list[list[Verdict]]:
        verdicts, stats = engine.execute(requests)
        self.exec_stats.add(stats)
        return verdicts

    def _limited(self, source: str, task: Task, tests: Iterable[str], run: int = 0) -> list[tuple[Program, list[str]]]:
        """Requests running ``tests`` on a candidate or mutant, one per time limit (see
        ``RewardConfig.candidate_limit``)."""
        by_limit: dict[float, list[str]] = {}
        for test in tests:
            by_limit.setdefault(self.limit(task, test), []).append(test)
        return [(self._program(source, task, limit, run), group) for limit, group in by_limit.items()]

    def limit(self, task: Task, test: str) -> float:
        """The test's time limit on candidates and mutants, from the reference's first run (the
        same in every run of a pair, whatever later runs of the reference took)."""
        return self.config.candidate_limit(task.reference_runs[test][0].duration_s)

    def _validity_phase(self, engine: ExecutionEngine) -> None:
        """Run 0 of every generated test on the reference and on the stand-ins; the reference on
        the problem's own tests. Tests that cannot call the program or read chance never run."""
        self.distinct: list[list[str]] = []
        self.static: list[dict[str, str]] = []  # test -> reason, for tests that never run
        own_keys: dict[tuple[str, ...], frozenset[str]] = {}
        for sample in self.samples:
            static: dict[str, str] = {}
            keys = own_keys.setdefault(sample.tests, own_assert_keys(sample.tests))
            for test in dict.fromkeys(t for stage in sample.tests_by_stage for t in stage if t.strip()):
                if never_calls(test, sample.entry_point, sample.reference_solution):
                    static[test] = "no_call"
                elif reads_chance(test):
                    static[test] = "chance_source"
                elif restates_own_tests(test, keys):
                    static[test] = "restates_own_test"
            self.static.append(static)
            self.distinct.append([
                t for t in dict.fromkeys(t for stage in sample.tests_by_stage for t in stage if t.strip())
                if t not in static
            ])  # fmt: skip
        tasks = list(self.tasks.values())
        requests = [(self._program(t.reference, t), list(t.own_tests)) for t in tasks]
        per_sample = []  # (index of the reference's request, the stand-ins, indices of their requests)
        for sample, tests in zip(self.samples, self.distinct):
            task = self.tasks[_task_key(sample)]
            first = len(requests)
            requests.append((self._program(sample.reference_solution, task), tests))
            standing = stand_ins(sample.reference_solution, sample.entry_point)
            requests += [(self._program(program, task), tests) for program in standing.programs]
            per_sample.append((first, standing, range(first + 1, first + 1 + len(standing.programs))))
        verdicts = self._run(engine, requests)
        for task, own in zip(tasks, verdicts[: len(tasks)]):
            task.reference_fails_own = any(v.status not in ("passed", "infra_error") for v in own)
            task.baseline_flags = frozenset(f for v in own for f in v.flags)
            for test, verdict in zip(task.own_tests, own):
                task.reference_runs.setdefault(test, [verdict])
        for sample, tests, (first, standing, others) in zip(self.samples, self.distinct, per_sample):
            task = self.tasks[_task_key(sample)]
            for n, (test, verdict) in enumerate(zip(tests, verdicts[first])):
                task.reference_runs.setdefault(test, [verdict])
                task.vacuous.setdefault(test, standing.vacuous([verdicts[k][n].passed for k in others]))
            flags = {f for v in verdicts[first] for f in v.flags} - task.baseline_flags
            self.reference_flags.append(flags)

    def _provisional(self, index: int) -> list[str]:
        """RolloutRecord ``index``'s tests that passed run 0 on the reference (no flag, fast enough, not
        passing on a stand-in): the ones that go on to the candidates."""
        if self.reference_flags[index]:
            return []
        task = self.task_of(index)
        share = self.config.too_slow_share * self.config.reference_timeout
        return [
            t for t in self.distinct[index]
            if task.reference_runs[t][0].passed and task.reference_time(t) <= share and not task.vacuous[t]
        ]  # fmt: skip

    def _judgement_phase(self, engine: ExecutionEngine) -> None:
        """Runs 1.. of the reference on the provisional tests; final code and mutants on the tests."""
        self.candidates = [self._provisional(i) for i in range(len(self.samples))]
        requests: list[tuple[Program, list[str]]] = []
        owners: list[tuple[str, int, Task]] = []  # ("reference" | "code" | "mutant", sample or mutant index, task)
        for i, sample in enumerate(self.samples):
            task = self.tasks[_task_key(sample)]
            for run in range(1, self.config.verdict_runs):
                requests.append((self._program(sample.reference_solution, task, run=run), self.candidates[i]))
                owners.append(("reference", i, task))
            tests = list(dict.fromkeys(list(sample.tests) + self.candidates[i]))
            for request in self._limited(sample.final_code, task, tests):
                requests.append(request)
                owners.append(("code", i, task))
        if self.need_mutants:
            for key, task in self.tasks.items():
                task.mutants = list(_mutants(task.reference, self.config.max_mutants, self.config.mutation_seed))
                tests = list(task.own_tests)
                for i, sample in enumerate(self.samples):
                    if _task_key(sample) == key:
                        tests += self.candidates[i]
                tests = list(dict.fromkeys(tests))
                for index, mutant in enumerate(task.mutants):
                    for request in self._limited(mutant.source, task, tests):
                        requests.append(request)
                        owners.append(("mutant", index, task))
        self._record(requests, owners, self._run(engine, requests))

    def _record(self, requests: list[tuple[Program, list[str]]], owners: list[tuple[str, int, Task]],
                verdicts: list[list[Verdict]]) -> None:
        for (program, tests), (kind, index, task), results in zip(requests, owners, verdicts):
            for test, verdict in zip(tests, results):
                if kind == "reference":
                    runs = task.reference_runs.setdefault(test, [])
                    if len(runs) <= program.run:  # samples of a task share these runs
                        runs.append(verdict)
                elif kind == "code":
                    self.code_runs[index].setdefault(test, []).append(verdict)
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
        owners: list[tuple[str, int, Task]] = []
        for i, sample in enumerate(self.samples):
            task = self.tasks[_task_key(sample)]
            failing = [t for t in self.candidates[i] if self.code_runs[i][t][0].status not in ("passed", "infra_error")]
            for run in range(1, extra + 1):
                requests.append((self._program(sample.reference_solution, task, run=self.config.verdict_runs - 1 + run), failing))
                owners.append(("reference", i, task))
                for request in self._limited(sample.final_code, task, failing, run):
                    requests.append(request)
                    owners.append(("code", i, task))
        for task in self.tasks.values():
            generated = set(t for i, s in enumerate(self.samples) if self.tasks[_task_key(s)] is task
                            for t in self.candidates[i])
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
