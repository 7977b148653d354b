"""Which sampled chains and which generated tests become training data, and why the others do not.

Rejection sampling is only as good as its filter: a chain that passes by luck of a broken test, or a
"test" that passes on anything, would teach the model the wrong thing with full confidence. So every
sample is judged by execution in the sandbox (never by the model), and every one that is dropped is
counted under exactly one reason, the first check it fails:

Generator chains (`GENERATOR_REASONS`): a blank stage, a collapsed stage (`prompts.collapse`),
stages that repeat one another (the chain's text as a whole collapsed, as the evaluation measures it),
final code that is missing, does not parse or does not define the entry point, a problem without tests,
code that fails (or errors, or times out on) the problem's own tests, no verdict from the sandbox, the
same chain as one already kept for the problem, more passing chains than `max_kept_per_problem`.
A rationale (`rationales`: the model's own stages 1-4 with the reference as stage 5, for a problem none of
whose chains passed) goes through the same checks, counted apart.

Generated tests (`TEST_REASONS`), the rules of rewards/README.md through the same static checks
(`prompts.checks`, shared with `rewards`) and the sandbox: the test never names the entry point or binds
that name itself (`no_call`), reads a source of chance the sandbox cannot make repeatable
(`chance_source`), repeats a test already judged for the problem (`duplicate`), fails, errors or times out
on the reference solution (`reference_*`), or passes on both constant stand-ins (the entry point returns None
or a marker string) or on both wrong-answer stand-ins (the reference's answer made wrong within its type), so
it checks no value, or only the type or range of one (`vacuous`, `prompts.checks.StandIns`). The sandbox seeds chance and freezes the
clock in every process, so one run on the reference decides (rewards' repeated runs, `nondeterministic`,
and `too_slow` are not restated).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from prompts.checks import never_calls, reads_chance, stand_ins
from prompts.parsing import compiles, defines_function
from prompts.stages import NUM_STAGES
from prompts.testcases import dedup_key

from pipeline.bootstrap.config import BootstrapConfig
from prompts.collapse import CollapseConfig, chain_text, is_collapsed

GENERATOR_REASONS = (
    "empty_stage",      # a stage with fewer than min_stage_chars non-blank characters
    "collapsed_stage",  # a stage is degenerate repetition ("return return", one line over and over)
    "repeated_stages",  # the stages repeat one another (stage 1's text copied into the next ones)
    "no_code",          # stage 5 holds no code
    "unparsable",       # the final code does not compile
    "no_entry_point",   # the final code does not define the entry point at top level
    "no_tests",         # the problem has no tests to verify with
    "code_failed",      # an assert of the problem's own tests failed
    "code_error",       # the code raised (or crashed) on the problem's own tests
    "code_timeout",     # the code ran out of time on them
    "sandbox_error",    # no verdict (infra_error): unknown, so not trusted
    "duplicate",        # the same chain (stages and code) as one already kept for the problem
    "over_quota",       # passing, but max_kept_per_problem chains of the problem were kept already
    "too_long",         # the training example would be longer than SFTConfig.max_length tokens
)
TEST_REASONS = (
    "no_call",            # never names the entry point, or binds it at module level (tests its own stand-in)
    "chance_source",      # imports a non-deterministic module or names id/hash/open/eval/... (prompts.checks)
    "duplicate",          # the same test (AST) as one already judged for the problem
    "reference_failed",   # an assert fails on the reference solution
    "reference_error",    # raises on the reference solution
    "reference_timeout",  # runs out of time on the reference solution
    "vacuous",            # passes on both constant or both wrong-answer stand-ins: checks no value
    "sandbox_error",      # no verdict (infra_error)
    "too_long",           # the training example would be longer than SFTConfig.max_length tokens
)
_CODE_STATUS = {"failed": "code_failed", "error": "code_error", "timeout": "code_timeout"}
_REFERENCE_STATUS = {"failed": "reference_failed", "error": "reference_error", "timeout": "reference_timeout"}


@dataclass
class Tally:
    """Kept and dropped samples of one role, dropped ones per reason."""

    reasons: tuple[str, ...]
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def drop(self, reason: str) -> None:
        if reason not in self.reasons:
            raise ValueError(f"unknown drop reason {reason!r} (known: {self.reasons})")
        self.dropped[reason] += 1

    def to_dict(self) -> dict[str, Any]:
        return {"judged": self.kept + sum(self.dropped.values()), "kept": self.kept,
                "dropped": dict(sorted(self.dropped.items()))}


@dataclass
class ChainRecord:
    """One sampled chain and the verdict on it (a line of round-<k>/generator.jsonl)."""

    task_id: str
    sample: int
    kept: bool
    reason: str | None
    detail: str
    stage_texts: list[str]
    final_code: str
    passed: int | None = None
    total: int | None = None
    source: str = "sampled"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TestRecord:
    """One generated (or seeded) test and the verdict on it (a line of round-<k>/discriminator.jsonl).
    ``source`` is ``generated`` (the discriminator wrote it at ``stage`` of chain ``sample``) or ``own_tests``
    (the problem's own test, seeding the discriminator)."""

    __test__ = False  # not a pytest class, whatever its name says

    task_id: str
    sample: int
    stage: int
    source: str
    test: str
    kept: bool = False
    reason: str | None = None
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def own_tests(row: Mapping[str, Any]) -> tuple[str, ...]:
    tests = row.get("tests") or ()
    if isinstance(tests, str):
        tests = (tests,)
    return tuple(t for t in tests if isinstance(t, str) and t.strip())


def stage_reason(stage_texts: Sequence[str], config: BootstrapConfig,
                 stages: int = NUM_STAGES) -> tuple[str, str] | None:
    """Why the first ``stages`` stage texts are unusable (a blank or a collapsed stage), or None."""
    collapse = CollapseConfig(ngram=config.collapse_ngram, threshold=config.collapse_threshold)
    texts = list(stage_texts)
    for stage in range(1, stages + 1):
        text = texts[stage - 1] if stage <= len(texts) else ""
        if len("".join(text.split())) < config.min_stage_chars:
            return "empty_stage", f"stage {stage}"
    for stage, text in enumerate(texts[:stages], start=1):
        if is_collapsed(text, collapse):
            return "collapsed_stage", f"stage {stage}"
    if is_collapsed(chain_text(texts[:stages]), collapse):  # what the evaluation measures: the chain as a whole
        return "repeated_stages", ""
    return None


def degenerate_reason(stage_texts: Sequence[str], final_code: str, entry_point: str,
                      config: BootstrapConfig) -> tuple[str, str] | None:
    """Why a chain is unusable before anything runs, as (reason, detail), or None."""
    found = stage_reason(stage_texts, config)
    if found is not None:
        return found
    if not final_code.strip():
        return "no_code", ""
    if not compiles(final_code):
        return "unparsable", ""
    if not defines_function(final_code, entry_point):
        return "no_entry_point", f"no top-level def {entry_point}"
    return None


def _chain_key(stage_texts: Sequence[str], final_code: str) -> tuple[str, ...]:
    return (*(t.strip() for t in stage_texts[: NUM_STAGES - 1]), final_code.strip())


def judge_chains(samples: Sequence[tuple[Mapping[str, Any], int, Any]], sandbox: Any,
                 config: BootstrapConfig, *, source: str = "sampled") -> tuple[list[ChainRecord], Tally]:
    """Judge each ``(row, sample index, chain)``: static checks, then the final code against the row's own tests
    in ``sandbox`` (one ``run_many`` call). A chain needs ``stage_texts`` and ``final_code``."""
    from sandbox import Job

    tally = Tally(GENERATOR_REASONS)
    records = [ChainRecord(str(row["task_id"]), sample, False, None, "", [str(t) for t in chain.stage_texts],
                           str(chain.final_code), source=source) for row, sample, chain in samples]
    runnable: list[int] = []
    for index, (row, _, chain) in enumerate(samples):
        # A rationale's reasoning stages are judged on their own: its reference code must not dilute their
        # repetition below the threshold.
        found = stage_reason(records[index].stage_texts, config, NUM_STAGES - 1) if source == "rationalized" else None
        found = found or degenerate_reason(records[index].stage_texts, records[index].final_code,
                                           str(row["entry_point"]), config)
        if found is None and not own_tests(row):
            found = ("no_tests", "")
        if found is not None:
            records[index].reason, records[index].detail = found
        else:
            runnable.append(index)
    jobs = [Job(program=records[i].final_code, tests=own_tests(samples[i][0]),
                setup=str(samples[i][0].get("test_setup") or ""), entry_point=str(samples[i][0]["entry_point"]),
                timeout=config.test_timeout_s) for i in runnable]
    results = sandbox.run_many(jobs) if jobs else []
    kept_keys: dict[str, set[tuple[str, ...]]] = {}
    for index, result in zip(runnable, results):
        record = records[index]
        record.passed, record.total = result.passed, result.total
        if result.status == "passed":
            key = _chain_key(record.stage_texts, record.final_code)
            seen = kept_keys.setdefault(record.task_id, set())
            if key in seen:
                record.reason = "duplicate"
            elif config.max_kept_per_problem is not None and len(seen) >= config.max_kept_per_problem:
                record.reason, record.detail = "over_quota", f"{config.max_kept_per_problem} kept already"
            else:
                seen.add(key)
                record.kept = True
        elif result.status == "infra_error":
            record.reason = "sandbox_error"
        else:
            record.reason = _CODE_STATUS.get(result.status, "code_error")
            failing = next((t for t in result.tests if t.status != "passed"), None)
            record.detail = f"{result.passed}/{result.total} tests passed" + (
                f"; {failing.detail.splitlines()[0][:160]}" if failing is not None and failing.detail else "")
    for record in records:
        if record.kept:
            tally.kept += 1
        else:
            tally.drop(str(record.reason))
    return records, tally


@dataclass(frozen=True)
class Rationale:
    """A chain made for STaR's rationalization: the model's own stages 1-4 and the reference as stage 5."""

    stage_texts: tuple[str, ...]
    final_code: str


def rationales(samples: Sequence[tuple[Mapping[str, Any], int, Any]], judged: Sequence[ChainRecord],
               config: BootstrapConfig) -> list[tuple[Mapping[str, Any], int, Rationale]]:
    """For every problem none of whose sampled chains was kept: its first sample whose stages 1-4 are neither
    blank nor collapsed (else its first sample, which `judge_chains` then drops and counts), with the problem's
    reference solution in place of the sampled code. Judge the result with ``judge_chains(..., source=
    "rationalized")``: the reference must pass the problem's own tests like any chain's code."""
    solved = {r.task_id for r in judged if r.kept}
    by_task: dict[str, list[tuple[Mapping[str, Any], int, Any]]] = {}
    for row, sample, chain in samples:
        if str(row["task_id"]) not in solved:
            by_task.setdefault(str(row["task_id"]), []).append((row, sample, chain))
    out = []
    for chosen in by_task.values():
        row, sample, chain = next((item for item in chosen
                                   if stage_reason(item[2].stage_texts, config, NUM_STAGES - 1) is None), chosen[0])
        reference = str(row.get("reference_solution") or "")
        reasoning = tuple(str(t) for t in chain.stage_texts[: NUM_STAGES - 1])
        out.append((row, sample, Rationale((*reasoning, reference), reference)))
    return out


def judge_tests(candidates: Sequence[TestRecord], rows: Mapping[str, Mapping[str, Any]], sandbox: Any,
                config: BootstrapConfig) -> Tally:
    """Judge ``candidates`` in place (``kept``, ``reason``) against their problem (``rows[task_id]``): the static
    checks, then, per problem, one job on the reference and one on each stand-in (one ``run_many`` call)."""
    from sandbox import Job

    tally = Tally(TEST_REASONS)
    seen: dict[str, set[str]] = {}
    pending: dict[str, list[TestRecord]] = {}
    for record in candidates:
        row = rows[record.task_id]
        if never_calls(record.test, str(row["entry_point"]), str(row["reference_solution"])):
            record.reason = "no_call"
            continue
        if reads_chance(record.test):
            record.reason = "chance_source"
            continue
        key = dedup_key(record.test)
        if key in seen.setdefault(record.task_id, set()):
            record.reason = "duplicate"
            continue
        seen[record.task_id].add(key)
        pending.setdefault(record.task_id, []).append(record)
    jobs, owners = [], []
    for task_id, records in pending.items():
        row = rows[task_id]
        tests = tuple(r.test for r in records)
        standing = stand_ins(str(row["reference_solution"]), str(row["entry_point"]))
        for program in (str(row["reference_solution"]), *standing.programs):
            jobs.append(Job(program=program, tests=tests, setup=str(row.get("test_setup") or ""),
                            entry_point=str(row["entry_point"]), timeout=config.test_timeout_s))
        owners.append((records, standing))
    results = sandbox.run_many(jobs) if jobs else []
    cursor = 0
    for records, standing in owners:
        reference, *others = results[cursor: cursor + 1 + len(standing.programs)]
        cursor += 1 + len(standing.programs)
        for index, record in enumerate(records):
            on_reference = reference.tests[index]
            verdicts = [other.tests[index].status for other in others]
            if on_reference.status == "infra_error" or "infra_error" in verdicts:
                record.reason = "sandbox_error"
            elif on_reference.status != "passed":
                record.reason = _REFERENCE_STATUS.get(on_reference.status, "reference_error")
                record.detail = on_reference.detail.splitlines()[0][:160] if on_reference.detail else ""
            elif standing.vacuous([status == "passed" for status in verdicts]):
                record.reason = "vacuous"
            else:
                record.kept = True
    for record in candidates:
        if record.kept:
            tally.kept += 1
        else:
            tally.drop(str(record.reason))
    return tally


def generated_tests(samples: Sequence[tuple[Mapping[str, Any], int, Any]]) -> list[TestRecord]:
    """One candidate per test the discriminator wrote, in chain order (``chain.tests_by_stage``)."""
    return [TestRecord(str(row["task_id"]), sample, stage, "generated", test)
            for row, sample, chain in samples
            for stage, tests in enumerate(chain.tests_by_stage, start=1) for test in tests]


def seed_tests(rows: Sequence[Mapping[str, Any]], judged: Sequence[TestRecord]) -> list[TestRecord]:
    """The own tests of every row none of whose generated tests was kept (stage 1 of its first sample)."""
    covered = {r.task_id for r in judged if r.kept}
    return [TestRecord(str(row["task_id"]), 0, 1, "own_tests", test)
            for row in rows if str(row["task_id"]) not in covered for test in own_tests(row)]


def spread_over_stages(seeds: Sequence[TestRecord]) -> list[TestRecord]:
    """Judged seeds of each task spread one per stage: stage s gets the task's (s-1)-th kept seed, cycling, so every
    stage's prompt is taught one whole assert (the RL discriminator answers at every stage). A seed judged invalid
    stays once, at stage 1, with its reason; the spread copies are not judged again (same test, same verdict)."""
    kept: dict[str, list[TestRecord]] = {}
    for record in seeds:
        if record.kept:
            kept.setdefault(record.task_id, []).append(record)
    spread = [record for record in seeds if not record.kept]
    for task_records in kept.values():
        spread += [replace(task_records[(stage - 1) % len(task_records)], stage=stage)
                   for stage in range(1, NUM_STAGES + 1)]
    return spread
