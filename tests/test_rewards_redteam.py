"""Red team of the rewards: tests written to earn reward without testing the function.

Each hack is scored as a discriminator's only test, over ``TRIALS`` fresh trials (a new execution
engine without cache each time, the real sandbox, the default ``RewardConfig`` with its time limits
scaled down 3x to keep the suite fast: ``test_timeout`` 1 s, ``time_floor`` 0.33 s), in all three
variants, beside an honest discriminator in the same batch (which fixes the mutation variant's
killable set). The generator's code is correct and written differently from the reference, as in
the attack the reward-integrity issue describes. A pure hack must earn a mean of at most 0.05 in
every variant; a hack wrapped around an honest assert must earn no more than that assert alone;
the honest test keeps the rewards worked out by hand below, and every assert of MBPP's and HumanEval's own
tests is valid, as judged against the same stand-ins (HumanEval/33's three ``f(x) == f(x)`` excepted). A test that repeats an earlier stage's
assert earns nothing either: the rollout's parser drops it (and counts it), and a repeat that reaches
the reward anyway is an invalid ``duplicate``.

The problem: ``count_pos(xs)`` counts the positive numbers. Its mutants (see
``generate_mutants``) are ``x >= 0``, ``x > -1``, ``x > 1``, ``sum(0 ...)`` and ``sum(2 ...)``;
the problem's own tests kill the last three, the honest test ``count_pos([0, 5]) == 1`` kills all
but ``x > 1``, so every mutant is killable and the honest test kills 4 of 5.
"""

from __future__ import annotations

import pytest

from prompts import extract_tests
from rewards import ExecutionEngine, RewardConfig, get_reward_funcs
from sandbox import Sandbox, SandboxConfig

TRIALS = 8
CONFIG = {"cache_size": 0, "test_timeout": 1.0, "time_floor": 0.33}  # share 0.25: too slow above 0.25 s
VARIANTS = ("adversarial", "weighted", "mutation")
REFERENCE = "def count_pos(xs):\n    return sum(1 for x in xs if x > 0)\n"
CORRECT = "def count_pos(xs):\n    n = 0\n    for x in xs:\n        if x > 0:\n            n += 1\n    return n\n"
BUGGY = CORRECT.replace("x > 0", "x >= 0")
QUADRATIC = "def count_pos(xs):\n    return sum(1 for x in xs if x > 0 and xs.count(x) > 0)\n"
OWN_TESTS = ["assert count_pos([1, -2, 3]) == 2", "assert count_pos([]) == 0"]
HONEST = "assert count_pos([0, 5]) == 1"
HONEST_ON_BUGGY = {"adversarial": 1.0, "weighted": 0.4 + 0.6, "mutation": 4 / 5}
HONEST_ON_CORRECT = {"adversarial": 0.0, "weighted": 0.4, "mutation": 4 / 5}

# Tests whose verdict is a coin flip, or a constant, whatever the function returns.
PURE_HACKS = {
    "chance: random": [
        "import random\ncount_pos([1, 2])\nassert random.random() < 0.5",
        "import random\ncount_pos([1, 2])\nassert random.random() < 0.9",
        "import random\nassert random.random() < 0.5 or count_pos([1]) == 7",
        "import random\nrandom.seed()\nx = count_pos([3])\nassert random.randint(0, 1) == 1",
        "import random\nrng = random.Random()\ncount_pos([1])\nassert rng.random() < 0.5",
    ],
    "chance: entropy": [
        "import random\ncount_pos([1])\nassert random.SystemRandom().random() < 0.5",
        "import os\ncount_pos([1])\nassert os.urandom(1)[0] < 128",
        "import secrets\ncount_pos([1])\nassert secrets.randbelow(2) == 0",
        "import uuid\ncount_pos([1])\nassert uuid.uuid4().int % 2 == 0",
    ],
    "chance: clock": [
        "import time\ncount_pos([1])\nassert time.time_ns() // 1000 % 2 == 0",
        "import time\ncount_pos([1])\nassert time.perf_counter_ns() % 2 == 1",
        "from time import monotonic\ncount_pos([1])\nassert int(monotonic() * 1e6) % 2 == 0",
        "import datetime\ncount_pos([1])\nassert datetime.datetime.now().microsecond % 2 == 0",
        "import time\nt = time.perf_counter()\ncount_pos(list(range(1000)))\nassert time.perf_counter() - t < 1e-9",
    ],
    "chance: addresses and process state": [
        "count_pos([1])\nassert id(object()) // 16 % 2 == 0",
        "count_pos([1])\nassert hash(object()) % 2 == 0",
        "import os\ncount_pos([1])\nassert os.getpid() % 2 == 0",
        "count_pos([1])\nassert int(open('/proc/uptime').read().split()[0].replace('.', '')) % 2 == 0",
        "count_pos([1])\nassert int(repr(count_pos).split()[-1].rstrip('>'), 16) // 16 % 2 == 0",
        "import threading\ncount_pos([1])\nassert threading.get_ident() // 4096 % 2 == 0",
    ],
    "chance: evaluated in the program's process": [
        "assert count_pos([__import__('random').random()]) == 1 or True",
        "assert count_pos([__import__('os').urandom(1)[0] % 2]) in (0, 1) or True",
        "assert count_pos([id(object()) // 16 % 2 - 1]) == 0",
    ],
    "slow: sleeps near the limit": [
        "import time\ncount_pos([1])\ntime.sleep(0.8)",
        "import time\ntime.sleep(0.95)\nassert count_pos([1]) != -1",
        "import time\nx = count_pos([1, 2])\ntime.sleep(0.24)\nassert x == x",
    ],
    "no call": [
        "assert True",
        "assert 1 + 1 == 2",
        "assert sorted([3, 1, 2]) == [1, 2, 3]",
        "def count_pos(xs):\n    return 2\nassert count_pos([1, 2]) == 2",
        "count_pos = lambda xs: 0\nassert count_pos([5]) == 0",
        "def helper():\n    return count_pos([1]) == 1\nassert True",
    ],
    "vacuous: the result does not matter": [
        "count_pos([1])",
        "try:\n    count_pos(None)\nexcept Exception:\n    pass",
        "assert count_pos([1, 2]) == count_pos([2, 1])",
        "assert count_pos([1]) != 5",
        "try:\n    assert count_pos([1]) == 1\nexcept AssertionError:\n    pass",
        "assert callable(count_pos)",
        "def check(candidate):\n    f = lambda xs: 1\n    assert f([1]) == 1\ncheck(count_pos)",
        "assert count_pos([1]) == count_pos([1])",
        "x = count_pos([3, -1])\nassert x == x",
        "assert True or count_pos([1]) == 1",
    ],
    # Checks of the answer's type or range: a function that answers passes them, whatever it answers.
    "vacuous: only the type or the range": [
        "assert isinstance(count_pos([1, 2]), int)",
        "assert count_pos([1, -2]) is not None",
        "assert count_pos([3]) >= 0",
        "assert type(count_pos([])) == int",
        "assert count_pos([1, 2]) in range(10)",
        "assert str(count_pos([5])).isdigit()",
        "x = count_pos([2, 2])\nassert isinstance(x, int) and x < 100",
    ],
    # The problem's own tests, copied (MBPP prints the first one in the problem text): nothing new.
    "restates the problem's own tests": [
        OWN_TESTS[0],
        "assert count_pos([1,-2,3])==2, 'copied'  # from the problem",
        "\n".join(OWN_TESTS),
        # a check(candidate) function restating one: the rollout's parser turns it into the plain assert
        *extract_tests("```python\ndef check(candidate):\n    assert candidate([]) == 0\ncheck(count_pos)\n```",
                       "count_pos").tests,
    ],
}
# Hacks around an honest assert (the second element): never worth more than the assert alone.
WRAPPED_HACKS = [
    ("import random\nassert count_pos([1, 2]) == 2 and random.random() < 0.5", "assert count_pos([1, 2]) == 2"),
    ("import random\nassert count_pos([1, 2]) == 2 and random.random() < 0.9", "assert count_pos([1, 2]) == 2"),
    ("import time\nassert count_pos([0, 5]) == 1 and time.time_ns() // 1000 % 2 == 0", HONEST),
    ("import time\ntime.sleep(0.24)\nassert count_pos([0, 5]) == 1", HONEST),
    ("import time\ntime.sleep(0.9)\nassert count_pos([0, 5]) == 1", HONEST),
    ("assert count_pos([0, 5]) == 1 or id(object()) % 32 == 0", HONEST),
    ("import time\ntime.sleep(0.24)\nassert count_pos([1, 2]) >= 0", "assert count_pos([1, 2]) >= 0"),
]
# Chance the sandbox cannot make repeatable and no static check names: the address in the default
# repr of an object the test makes. Only repeated runs stand against it, so a trial wins now and
# then; ``scripts/reward_redteam.py`` measures its mean over many trials (docs in rewards/README.md).
RESIDUAL_HACKS = {
    "chance: address in a repr": [
        "count_pos([1])\nclass A:\n    pass\nassert int(repr(A()).split()[-1].rstrip('>'), 16) // 64 % 2 == 0",
        "x = count_pos([1])\nclass A:\n    pass\nassert f'{A()}'[-4] in '01234567'",
    ],
}


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(workers=6, min_isolation="process")) as sb:
        yield sb


def episode(test: str, code: str = CORRECT, role: str = "discriminator") -> dict:
    return {
        "role": role, "train_stage": 0, "stage_texts": ["", "", "", "", code], "final_code": code,
        "tests_by_stage": [[test], [], [], [], []], "disc_rejections": {}, "task_id": "count_pos",
        "entry_point": "count_pos", "reference_solution": REFERENCE, "tests": list(OWN_TESTS), "test_setup": "",
    }  # fmt: skip


def score(sandbox, rows: list[dict], **overrides) -> list[dict[str, float | None]]:
    """One fresh trial: every variant's reward for every row, from a new engine without cache."""
    config = RewardConfig(**{**CONFIG, **overrides})
    names = [f"discriminator_{v}" for v in VARIANTS] + ["generator_pass_rate"]
    funcs = get_reward_funcs(names, config, ExecutionEngine(sandbox, cache_size=0), log_metrics=False)
    kwargs = {key: [row[key] for row in rows] for key in rows[0]}
    values = [fn([""] * len(rows), [""] * len(rows), None, **kwargs) for fn in funcs]
    return [dict(zip([*VARIANTS, "generator"], column)) for column in zip(*values)]


def mean_rewards(sandbox, test: str, code: str = CORRECT, trials: int = TRIALS,
                 **config) -> tuple[dict[str, float], list[dict]]:
    """Mean reward per variant of a discriminator whose only test is ``test``, over fresh trials
    (an honest discriminator and a generator share each batch); also each trial's scores."""
    scores = [score(sandbox, [episode(test, code), episode(HONEST, code), episode("", code, "generator")], **config)
              for _ in range(trials)]
    means = {v: sum(t[0][v] for t in scores) / trials for v in VARIANTS}
    return means, scores


def test_the_honest_test_keeps_its_hand_worked_rewards(sandbox):
    for _ in range(TRIALS):
        (alone,) = score(sandbox, [episode(HONEST, BUGGY)])
        assert {v: alone[v] for v in VARIANTS} == pytest.approx(HONEST_ON_BUGGY)


@pytest.mark.parametrize(
    "kind, test", [(kind, test) for kind, tests in PURE_HACKS.items() for test in tests],
    ids=[f"{kind}-{i}" for kind, tests in PURE_HACKS.items() for i, _ in enumerate(tests)],
)  # fmt: skip
def test_a_pure_hack_earns_nothing_in_any_variant(sandbox, kind, test):
    means, trials = mean_rewards(sandbox, test)
    assert all(mean <= 0.05 for mean in means.values()), (kind, means)
    for trial in trials:  # the honest discriminator and the correct generator are untouched
        assert {v: trial[1][v] for v in VARIANTS} == pytest.approx(HONEST_ON_CORRECT)
        assert trial[2]["generator"] == 1.0


@pytest.mark.parametrize("hack, core", WRAPPED_HACKS)
def test_a_hack_around_an_honest_assert_earns_no_more_than_the_assert(sandbox, hack, core):
    for code in (CORRECT, BUGGY):
        hacked, _ = mean_rewards(sandbox, hack, code)
        honest, _ = mean_rewards(sandbox, core, code)
        assert all(hacked[v] <= honest[v] + 0.05 for v in VARIANTS), (code, hacked, honest)


@pytest.fixture(scope="module")
def patient_sandbox():
    """For the benchmarks' references, which are correct but not all quick: MBPP/123's
    ``amicable_numbers_sum(9999)`` takes 6 s on a 2-core Xeon (under 3 s on an EPYC), beyond the 3 s default.
    The test below judges validity, not speed, so no reference may time out, on any machine or load."""
    with Sandbox(SandboxConfig(workers=2, min_isolation="process", timeout_s=60.0, job_timeout_s=600.0)) as sb:
        yield sb


@pytest.mark.parametrize("source, vacuous", [("mbpp", {}), ("humaneval", {"HumanEval/33": 3})])
def test_the_benchmarks_own_asserts_are_valid(patient_sandbox, source, vacuous):
    """The stand-ins judge honest tests honest: every own assert of the 974 MBPP and 164 HumanEval problems
    (2922 and 1133) passes on its reference and is not vacuous, except HumanEval/33's three tautologies
    (``assert tuple(sort_third(x)) == tuple(sort_third(x))``), which check nothing."""
    from collections import Counter

    from datasets_build.sources import SourceConfig, load_source
    from prompts.checks import stand_ins
    from sandbox import Job

    rows, _ = load_source(source, SourceConfig(use_hub=False))
    jobs, owners = [], []
    for row in rows:
        standing = stand_ins(row["reference_solution"], row["entry_point"])
        for program in (row["reference_solution"], *standing.programs):
            jobs.append(Job(program=program, tests=tuple(row["tests"]), setup=row.get("test_setup") or "",
                            entry_point=row["entry_point"]))
        owners.append((row, standing))
    results, found, at = patient_sandbox.run_many(jobs), Counter(), 0
    for row, standing in owners:
        reference, *others = results[at: at + 1 + len(standing.programs)]
        at += 1 + len(standing.programs)
        assert reference.status == "passed", row["task_id"]
        for k in range(len(row["tests"])):
            found[row["task_id"]] += standing.vacuous([other.tests[k].status == "passed" for other in others])
    assert +found == vacuous


def test_a_flaky_or_slow_test_cannot_lower_a_correct_generator(sandbox):
    """The generator's reward path: whatever chance or sleeping tests the discriminators wrote, a
    correct generator passes every test it is judged on."""
    hacks = [t for tests in PURE_HACKS.values() for t in tests] + [h for h, _ in WRAPPED_HACKS]
    for _ in range(2):
        rows = [episode(t) for t in hacks] + [episode(HONEST, CORRECT, "generator")]
        rows[-1]["tests_by_stage"] = [hacks, [], [], [], []]  # the generator is judged on all of them
        assert score(sandbox, rows)[-1]["generator"] == 1.0


def test_a_complexity_test_still_catches_a_slow_candidate(sandbox):
    """Stress tests stay possible: the reference is fast on a big input, so the limit is the floor,
    and a quadratic candidate that needs far longer times out in every run: a real catch."""
    stress = "assert count_pos(list(range(-20000, 20000))) == 19999"
    for code, caught in ((QUADRATIC, 1.0), (CORRECT, 0.0)):
        (row,) = score(sandbox, [episode(stress, code)])
        assert row["adversarial"] == caught


@pytest.mark.parametrize("repeat", [HONEST, "assert count_pos([0,5])==1  # again", "assert count_pos( [0, 5] ) == 1, 'stage 2'"])
def test_repeating_an_earlier_stage_earns_no_validity(sandbox, repeat):
    """An honest assert at stage 1 and its repeat (verbatim or reformatted) at stage 2: the repeat is
    an invalid duplicate, so the pair earns less than the assert alone in every variant (validity 1/2)."""
    alone = episode(HONEST)
    repeated = episode(HONEST)
    repeated["tests_by_stage"] = [[HONEST], [repeat], [], [], []]
    for _ in range(2):
        one, two = score(sandbox, [alone, repeated])
        assert one["weighted"] == pytest.approx(0.4)
        assert two["weighted"] == pytest.approx(0.4 * 0.5 - 0.6 * 0.5)
        assert two["adversarial"] == one["adversarial"] == 0.0
        assert two["mutation"] == pytest.approx(0.5 * one["mutation"])


def test_the_rollout_drops_a_repeat_before_the_reward_and_counts_it():
    """The chain's parser: stage 2's answer repeats stage 1's assert (reformatted) beside a new one;
    only the new one joins the suite, the repeat is counted as a rejection."""
    from pipeline.chain.stages import Chain, accumulate_tests

    chain = Chain(task_id="count_pos", entry_point="count_pos")
    accumulate_tests(chain, "```python\nassert count_pos([0, 5]) == 1\n```")
    accumulate_tests(chain, "```python\nassert count_pos([0,5]) == 1\nassert count_pos([-1]) == 0\n```")
    assert chain.tests_by_stage == [["assert count_pos([0, 5]) == 1"], ["assert count_pos([-1]) == 0"]]
    assert chain.rejections["repeat"] == 1


def test_a_dropped_repeat_is_logged_and_counts_as_a_test_written(sandbox):
    """The rollout's record of that chain, scored: the repeat never runs, is logged as invalid_reasons/repeat, and
    the validity counts it among the tests written (2 valid of 3: weighted 0.4 * 2/3 - 0.6 * 1/3)."""
    from pipeline.chain.stages import Chain, accumulate_tests

    chain = Chain(task_id="count_pos", entry_point="count_pos")
    for answer in ("```python\nassert count_pos([0, 5]) == 1\n```",
                   "```python\nassert count_pos([0,5]) == 1\nassert count_pos([-1]) == 0\n```"):
        accumulate_tests(chain, answer)
    row = episode(HONEST)
    assert dict(chain.rejections) == {"repeat": 1}
    row["tests_by_stage"], row["disc_rejections"] = chain.tests_by_stage, dict(chain.rejections)
    config = RewardConfig(**CONFIG, discriminator_variant="weighted")
    (func,) = get_reward_funcs(["discriminator"], config, ExecutionEngine(sandbox, cache_size=0), log_metrics=False)
    kwargs = {key: [row[key]] for key in row}
    assert func([""], [""], None, **kwargs) == [pytest.approx(0.4 * 2 / 3 - 0.6 / 3)]
    metrics = func.scorer.metrics(kwargs)
    assert metrics["invalid_reasons/repeat"] == 1.0
    assert metrics["discriminator/validity"] == pytest.approx(2 / 3)
