"""Rewards on real programs and tests, executed in the real sandbox, with answers worked out by hand.

The small problem: ``is_pos(x)`` returns ``x > 0``. Its mutants are exactly ``x >= 0``,
``x > -1`` and ``x > 1`` (see test_rewards_mutation); the problem's own tests
(``is_pos(5)``, ``not is_pos(-3)``) kill none of them, so which mutants are killable depends
only on the discriminators' valid tests:
  ``assert not is_pos(0)``  valid, kills ``x >= 0`` and ``x > -1``
  ``assert is_pos(1)``      valid, kills ``x > 1``
  ``assert is_pos(3)``      valid, kills nothing
  ``assert is_pos(0)``      invalid (the reference fails it)
"""

from __future__ import annotations

import pytest

from rewards import ExecutionEngine, RewardConfig, batch_metrics, get_reward_funcs
from rewards.batch import parse_batch
from rewards.context import RewardContext
from sandbox import Sandbox, SandboxConfig

REFERENCE = "def is_pos(x):\n    return x > 0\n"
BUGGY = "def is_pos(x):\n    return x >= 0\n"
OWN_TESTS = ["assert is_pos(5)", "assert not is_pos(-3)"]
KILLS_TWO, KILLS_ONE, KILLS_NONE, WRONG = (
    "assert not is_pos(0)", "assert is_pos(1)", "assert is_pos(3)", "assert is_pos(0)",
)  # fmt: skip
STAGE_TEXTS = ["Positive means greater than zero.", "1. compare with 0", "return x > 0", "x is an int", REFERENCE]


class CountingSandbox(Sandbox):
    """The real sandbox, recording every job it is asked to run."""

    def __init__(self, config: SandboxConfig):
        super().__init__(config)
        self.submitted: list = []

    def run_many(self, jobs, on_result=None):
        jobs = list(jobs)
        self.submitted.extend(jobs)
        return super().run_many(jobs, on_result)


@pytest.fixture(scope="module")
def sandbox():
    with CountingSandbox(SandboxConfig(workers=2, min_isolation="process")) as sb:
        yield sb


def episode(role, code=REFERENCE, tests=((),), stage=0, rejections=None, texts=STAGE_TEXTS, task="is_pos"):
    """One row of reward kwargs; ``tests`` lists the discriminator's tests per stage."""
    return {
        "role": role, "train_stage": stage, "stage_texts": list(texts), "final_code": code,
        "tests_by_stage": [list(t) for t in tests], "disc_rejections": rejections or {},
        "task_id": task, "entry_point": "is_pos", "reference_solution": REFERENCE,
        "tests": list(OWN_TESTS), "test_setup": "",
    }  # fmt: skip


def columns(*rows):
    return {key: [row[key] for row in rows] for key in rows[0]}


def context(sandbox, rows, need_mutants=True, **config):
    cfg = RewardConfig(**config)
    engine = ExecutionEngine(sandbox, cache_size=cfg.cache_size)
    return RewardContext(parse_batch(columns(*rows), cfg.num_stages), cfg, engine, need_mutants)


def test_wrong_test_is_invalid_and_never_counts_against_a_correct_generator(sandbox):
    ctx = context(sandbox, [episode("generator", REFERENCE, [[KILLS_ONE, WRONG]])], need_mutants=False)
    assert [r.status for r in ctx.records[0]] == ["valid", "invalid"]
    assert ctx.records[0][1].reason == "reference_failed"
    assert ctx.generator_rewards() == [1.0]  # 3 tests (2 own + 1 valid), all passed


def test_generator_pass_rate_counts_own_and_valid_generated_tests(sandbox):
    rows = [episode("generator", BUGGY, [[KILLS_TWO], [KILLS_NONE]]), episode("generator", "def is_pos(x) return")]
    ctx = context(sandbox, rows, need_mutants=False)
    assert ctx.generator_rewards() == [0.75, 0.0]  # buggy: fails only `not is_pos(0)` of 4
    centred = context(sandbox, rows, need_mutants=False, centred=True)
    assert centred.generator_rewards() == [0.25, -0.5]


def test_generator_reward_only_counts_tests_of_stages_up_to_train_stage(sandbox):
    ctx = context(sandbox, [episode("generator", BUGGY, [[KILLS_NONE], [KILLS_TWO]], stage=1)], need_mutants=False)
    assert ctx.generator_rewards() == [1.0]  # the stage-2 test that catches the bug is out of scope


def test_adversarial_and_weighted_variants(sandbox):
    catcher = episode("discriminator", BUGGY, [[KILLS_TWO], [KILLS_NONE]])  # buggy code fails 1 of 2
    half_wrong = episode("discriminator", REFERENCE, [[KILLS_ONE, WRONG]])  # validity 1/2, catches nothing
    silent = episode("discriminator", BUGGY, [[]])
    ctx = context(sandbox, [catcher, half_wrong, silent, episode("generator")], need_mutants=False)
    assert ctx.discriminator_rewards("adversarial") == [0.5, 0.0, 0.0, None]
    weighted = ctx.discriminator_rewards("weighted")
    assert weighted[0] == pytest.approx(0.4 * 1 + 0.6 * 0.5)
    assert weighted[1] == pytest.approx(0.4 * 0.5 - 0.6 * 0.5)
    assert weighted[2] == 0.0 and weighted[3] is None


def test_weighted_clamp_on_real_run(sandbox):
    row = episode("discriminator", BUGGY, [[KILLS_TWO]])
    ctx = context(sandbox, [row], need_mutants=False, weighted_valid=2.0, weighted_bug_catch=2.0)
    assert ctx.discriminator_rewards("weighted") == [1.0]


def test_mutation_variant_kill_fractions_over_killable_mutants(sandbox):
    a = episode("discriminator", REFERENCE, [[KILLS_TWO], [KILLS_NONE]])
    b = episode("discriminator", REFERENCE, [[KILLS_ONE, WRONG]])
    ctx = context(sandbox, [a, b])
    task = next(iter(ctx.tasks.values()))
    assert len(task.mutants) == 3 and len(task.killable) == 3
    rewards = ctx.discriminator_rewards("mutation")
    assert rewards[0] == pytest.approx(2 / 3)  # validity 1, kills 2 of 3
    assert rewards[1] == pytest.approx(1 / 3 * 1 / 2)  # validity 1/2, kills 1 of 3
    # The generator's code is correct, so the adversarial variant gives no signal here.
    assert ctx.discriminator_rewards("adversarial") == [0.0, 0.0]


def test_mutants_nobody_kills_are_equivalent_and_excluded(sandbox):
    ctx = context(sandbox, [episode("discriminator", REFERENCE, [[KILLS_TWO]])])
    task = next(iter(ctx.tasks.values()))
    assert len(task.killable) == 2  # `x > 1` survives every test in the batch
    assert ctx.discriminator_rewards("mutation") == [1.0]
    metrics = batch_metrics(ctx)
    assert metrics["mutants/equivalent_fraction"] == pytest.approx(1 / 3)
    nobody = context(sandbox, [episode("discriminator", REFERENCE, [[KILLS_NONE]])])
    assert nobody.discriminator_rewards("mutation") == [0.0]
    assert batch_metrics(nobody)["mutants/equivalent_fraction"] == 1.0


def test_rejections_count_as_invalid_only_when_all_stages_are_scored(sandbox):
    rows = [
        episode("discriminator", BUGGY, [[KILLS_TWO]], rejections={"no_assert": 3}),
        episode("discriminator", BUGGY, [[KILLS_TWO]], stage=1, rejections={"no_assert": 3}),
    ]
    ctx = context(sandbox, rows, need_mutants=False)
    assert [ctx.discriminator(i, ctx.samples[i].stages_in_scope("cumulative")).validity for i in (0, 1)] == [0.25, 1.0]
    assert ctx.invalid_reasons(0) == {"no_assert": 3}


def test_stage_scopes_and_duplicates(sandbox):
    row = episode("discriminator", BUGGY, [[KILLS_NONE], [KILLS_TWO], [KILLS_NONE]], stage=2)
    cumulative = context(sandbox, [row], need_mutants=False)
    assert cumulative.discriminator_rewards("adversarial") == [0.5]  # stages 1-2: fails 1 of 2 valid
    current = context(sandbox, [row], need_mutants=False, stage_scope="current")
    assert current.discriminator_rewards("adversarial") == [1.0]  # stage 2 only
    stage3 = cumulative.discriminator(0, (3,))
    assert (stage3.valid, stage3.invalid) == (0, 1)  # a repeat of stage 1's test
    assert cumulative.invalid_reasons(0) == {"duplicate": 1}


def test_hack_penalty_for_flagged_code_only(sandbox):
    hacker = "import sys\ndef is_pos(x):\n    sys.exit(0)\n"
    rows = [episode("generator", hacker), episode("generator", REFERENCE), episode("discriminator", hacker, [[KILLS_ONE]])]
    ctx = context(sandbox, rows, need_mutants=False, hack_penalty=-2.0)
    assert ctx.hack_rewards() == [-2.0, 0.0, 0.0]  # the discriminator is not blamed for the code


def test_test_that_drives_the_reference_to_exit_is_a_flagged_invalid_test(sandbox):
    reference = "import sys\ndef echo(x):\n    if x == 'quit':\n        sys.exit(0)\n    return x\n"
    row = episode("discriminator", reference, [["assert echo('quit') is None", "assert echo(2) == 2"]])
    row.update(reference_solution=reference, entry_point="echo", tests=["assert echo(1) == 1"], task="echo")
    ctx = context(sandbox, [row], need_mutants=False)
    assert ctx.invalid_reasons(0) == {"sandbox_flag": 2}  # flags are per job: both tests are blamed
    assert ctx.hack_rewards() == [-1.0]


def test_flags_the_reference_raises_itself_are_not_hacks(sandbox):
    reference = "import os\ndef count(s):\n    os.kill(os.getpid(), 0)\n    return len(s)\n"
    row = episode("generator", reference)
    row.update(reference_solution=reference, entry_point="count", tests=["assert count('ab') == 2"], task="counter")
    ctx = context(sandbox, [row], need_mutants=False)
    assert next(iter(ctx.tasks.values())).baseline_flags  # the sandbox flags the signal call
    assert ctx.hack_rewards() == [0.0]


def _four_episodes(sandbox, verdict_runs):
    """Three discriminators and a generator with the same buggy code and the same two tests: the
    context, and every (program, test) pair the sandbox ran for it."""
    rows = [episode("discriminator", BUGGY, [[KILLS_TWO, KILLS_ONE]]) for _ in range(3)]
    rows.append(episode("generator", BUGGY, [[KILLS_TWO, KILLS_ONE]]))
    cfg = RewardConfig(cache_size=0, verdict_runs=verdict_runs)
    before = len(sandbox.submitted)
    ctx = RewardContext(parse_batch(columns(*rows), cfg.num_stages), cfg, ExecutionEngine(sandbox, cache_size=0),
                        need_mutants=False)
    jobs = sandbox.submitted[before:]
    return ctx, jobs, [(job.program, test) for job in jobs for test in job.tests]


def test_identical_pairs_are_executed_once(sandbox):
    ctx, jobs, pairs = _four_episodes(sandbox, verdict_runs=1)
    assert len(pairs) == len(set(pairs))
    # reference x 2 generated tests, four stand-ins (2 constant, 2 wrong answers) x 2, reference x 2 own tests,
    # buggy code x (2 own + 2 valid)
    assert len(pairs) == 2 + 8 + 2 + 4
    assert ctx.exec_stats.jobs == len(jobs) == 7


def test_repeated_runs_cover_exactly_what_could_change_a_reward(sandbox):
    """With two runs: the reference runs both generated tests again; only the failing pair (the
    buggy code on KILLS_TWO) runs again, beside a third run of the reference on that test."""
    ctx, _, pairs = _four_episodes(sandbox, verdict_runs=2)
    assert len(pairs) == 16 + 2 + 2
    assert pairs.count((REFERENCE, KILLS_TWO)) == 3 and pairs.count((REFERENCE, KILLS_ONE)) == 2
    assert pairs.count((BUGGY, KILLS_TWO)) == 2 and pairs.count((BUGGY, KILLS_ONE)) == 1
    assert ctx.discriminator(0, [1]).bug_catch_rate == 0.5


def test_verdicts_are_cached_across_batches(sandbox):
    rows = [episode("discriminator", BUGGY, [[KILLS_TWO]])]
    engine = ExecutionEngine(sandbox)
    cfg = RewardConfig()
    first = RewardContext(parse_batch(columns(*rows), cfg.num_stages), cfg, engine, need_mutants=True)
    before = len(sandbox.submitted)
    second = RewardContext(parse_batch(columns(*rows), cfg.num_stages), cfg, engine, need_mutants=True)
    assert len(sandbox.submitted) == before and second.exec_stats.jobs == 0
    assert second.discriminator_rewards("mutation") == first.discriminator_rewards("mutation")


def test_reward_funcs_share_one_computation_per_batch(sandbox):
    cfg = RewardConfig(discriminator_variant="mutation")
    funcs = get_reward_funcs(["generator_pass_rate", "discriminator", "format", "repetition", "hack_penalty"],
                             cfg, engine=ExecutionEngine(sandbox))
    assert [f.__name__ for f in funcs] == [
        "generator_pass_rate", "discriminator_mutation", "format", "repetition", "hack_penalty"
    ]
    kwargs = columns(episode("generator", BUGGY, [[KILLS_TWO]]), episode("discriminator", BUGGY, [[KILLS_TWO]]))
    logged: dict[str, float] = {}
    before = len(sandbox.submitted)
    outputs = [f(prompts=["p", "p"], completions=["c", "c"], completion_ids=[[1], [1]], log_metric=logged.__setitem__,
                 **kwargs) for f in funcs]
    submitted = len(sandbox.submitted) - before
    outputs_again = [f(prompts=["p", "p"], completions=["c", "c"], completion_ids=[[1], [1]], **kwargs) for f in funcs]
    assert len(sandbox.submitted) - before == submitted  # the second round reused the batch's context
    assert outputs == outputs_again
    assert outputs[0] == [pytest.approx(2 / 3), None]
    assert outputs[1] == [None, 1.0]  # kills both killable mutants (`x > 1` survives everything)
    assert outputs[2] == [1.0, 1.0] and outputs[3] == [0.0, None] and outputs[4] == [0.0, 0.0]
    assert logged["generator/pass_rate"] == pytest.approx(2 / 3)
    assert logged["discriminator/validity/stage1"] == 1.0
    assert logged["sandbox/jobs"] == submitted
    assert logged["quality/diversity/stage1"] == 0.5  # quality_metrics too: both episodes wrote the same test


def test_a_generator_that_pastes_its_stages_earns_less_and_is_logged_collapsed(sandbox):
    """Stage 1 pasted into stages 2-4, then the same correct code: the pass rate cannot tell the two chains apart,
    so format and repetition must (each stage alone is ordinary text; the chain as a whole repeats itself)."""
    pasted = ["Positive means the number is greater than zero, and zero is not positive."] * 4 + [REFERENCE]
    cfg = RewardConfig()
    funcs = get_reward_funcs(["generator_pass_rate", "format", "repetition"], cfg, engine=ExecutionEngine(sandbox))
    kwargs = columns(episode("generator"), episode("generator", texts=pasted))
    logged: dict[str, float] = {}
    (pass_rate, fmt, repetition) = [f(prompts=["p", "p"], completions=["c", "c"], completion_ids=[[1], [1]],
                                      log_metric=logged.__setitem__, **kwargs) for f in funcs]
    assert pass_rate == [1.0, 1.0]
    assert fmt == [1.0, 3 / 6]  # stages 2-4 are copies: stage 1, the code stage and the code count
    assert repetition[0] == 0.0 and repetition[1] < -0.2
    assert logged["generator/collapse_rate"] == 0.5  # the pasted chain, judged as the evaluation judges it
    assert logged["generator/repetition/chain"] > cfg.repetition_threshold / 2


def test_metrics_cover_roles_stages_and_reasons(sandbox):
    rows = [
        episode("generator", BUGGY, [[KILLS_TWO], [WRONG]]),
        episode("discriminator", BUGGY, [[KILLS_TWO], [WRONG]], rejections={"unparsable": 1}),
    ]
    metrics = batch_metrics(context(sandbox, rows))
    assert metrics["discriminator/validity/stage1"] == 1.0
    assert metrics["discriminator/validity/stage2"] == 0.0
    assert "discriminator/validity/stage3" not in metrics  # nobody wrote tests there
    assert metrics["discriminator/validity"] == pytest.approx(1 / 3)
    assert metrics["discriminator/bug_catch_rate"] == 1.0
    assert metrics["invalid_reasons/reference_failed"] == 1.0
    assert metrics["invalid_reasons/unparsable"] == 1.0
    assert metrics["generator/pass_rate"] == pytest.approx(2 / 3)
    assert metrics["generator/pass_rate_own"] == 1.0
    assert metrics["data/reference_fails_own_tests"] == 0.0
    assert metrics["sandbox/jobs"] > 0 and "sandbox/seconds" in metrics


def test_invalid_reasons_are_counted_per_stage_in_the_metrics(sandbox):
    """Each new reason, at the stage its test was written after: a test that never calls the
    function (stage 1), reads a source of chance (2), makes the reference too slow (3), passes
    whatever the function returns (4); the honest test of stage 5 stays valid."""
    stages = [
        [KILLS_TWO, "assert True"],
        ["import os\nassert is_pos(1) and os.getpid() > 0", WRONG],
        ["import time\ntime.sleep(0.4)\nassert is_pos(1)"],
        ["is_pos(1)", "try:\n    assert is_pos(3)\nexcept AssertionError:\n    pass"],
        [KILLS_ONE],
    ]
    ctx = context(sandbox, [episode("discriminator", BUGGY, stages)], test_timeout=1.0, time_floor=0.5)
    metrics = batch_metrics(ctx)
    assert {k: v for k, v in metrics.items() if k.startswith("invalid_reasons/stage")} == {
        "invalid_reasons/stage1/no_call": 1.0,
        "invalid_reasons/stage2/chance_source": 1.0,
        "invalid_reasons/stage2/reference_failed": 1.0,
        "invalid_reasons/stage3/too_slow": 1.0,
        "invalid_reasons/stage4/vacuous": 2.0,
    }
    assert ctx.valid_tests(0) == [KILLS_TWO, KILLS_ONE]
    assert metrics["invalid_reasons/vacuous"] == 2.0


def test_a_test_whose_verdicts_disagree_is_nondeterministic(sandbox):
    """The address in a new object's repr changes from process to process: a test that decides by
    it passes some runs and fails others, and is invalid as soon as two runs disagree."""
    coin = "assert is_pos(1)\nclass A:\n    pass\nassert int(repr(A()).split()[-1].rstrip('>'), 16) // 64 % 2 == 0"
    reasons: dict[str, int] = {}
    for _ in range(30):  # a trial shows the disagreement with probability about 1/4
        ctx = context(sandbox, [episode("discriminator", BUGGY, [[coin]])], cache_size=0, verdict_runs=3)
        for reason, count in ctx.invalid_reasons(0).items():
            reasons[reason] = reasons.get(reason, 0) + count
    assert reasons.get("nondeterministic", 0) > 0
