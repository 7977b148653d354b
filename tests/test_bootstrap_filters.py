"""Bootstrap filtering on hand-made chains with known answers, judged in the real sandbox: which chains and
which generated tests become training data, and the reason every other one is counted under."""

from __future__ import annotations

import pytest

from pipeline.bootstrap import BootstrapConfig, BootstrapError, judge_chains, judge_tests, seed_tests
from pipeline.bootstrap.filters import spread_over_stages
from pipeline.bootstrap.data import discriminator_example, discriminator_groups, generator_example
from pipeline.bootstrap.filters import TestRecord, generated_tests
from pipeline.chain import Chain
from prompts.templates import load_templates
from sandbox import Sandbox

ADD = {"task_id": "t/add", "entry_point": "add", "problem": "Return the sum of a and b.",
       "signature": "def add(a, b):", "reference_solution": "def add(a, b):\n    return a + b\n",
       "tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"], "test_setup": ""}
NO_TESTS = {**ADD, "task_id": "t/none", "tests": []}
GOOD = "def add(a, b):\n    return a + b\n"
STAGES = ["Add the numbers.", "1. take a and b 2. add them", "return a + b", "a and b are numbers"]


def chain(code: str, stages: list[str] = STAGES, task: str = "t/add", tests=None) -> Chain:
    return Chain(task_id=task, entry_point="add", stage_texts=[*stages, f"```python\n{code}```"], final_code=code,
                 tests_by_stage=tests or [], test_texts=[""] * len(tests or []))


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox() as pool:
        yield pool


def test_only_passing_well_formed_chains_are_kept_and_every_drop_has_its_reason(sandbox):
    cases = [  # (chain, row, expected reason; None = kept)
        (chain(GOOD), ADD, None),
        (chain(GOOD), ADD, "duplicate"),                                            # the same chain again
        (chain("def add(a, b):\n    return b + a\n"), ADD, "over_quota"),           # passes; quota of 1 is full
        (chain("def add(a, b):\n    return a + b if a > 0 else 5\n"), ADD, "code_failed"),  # 1 of 2
        (chain("def add(a, b):\n    raise ValueError('no')\n"), ADD, "code_error"),
        (chain("def add(a, b):\n    while True:\n        pass\n"), ADD, "code_timeout"),
        (chain(GOOD, [STAGES[0], "  \n", *STAGES[2:]]), ADD, "empty_stage"),
        (chain(GOOD, [STAGES[0], "return return the sum", *STAGES[2:]]), ADD, "collapsed_stage"),
        (chain(GOOD, ["We add the two numbers a and b given to the function and then we return the sum of the "
                      "two numbers to the caller."] * 4), ADD, "repeated_stages"),  # stage 1 copied 3 times
        (chain(""), ADD, "no_code"),
        (chain("def add(a, b):\n    return (a +\n"), ADD, "unparsable"),
        (chain("def plus(a, b):\n    return a + b\n"), ADD, "no_entry_point"),
        (chain(GOOD, task="t/none"), NO_TESTS, "no_tests"),
    ]
    config = BootstrapConfig(max_kept_per_problem=1, test_timeout_s=0.5)
    records, tally = judge_chains([(row, i, c) for i, (c, row, _) in enumerate(cases)], sandbox, config)
    assert [r.reason for r in records] == [reason for _, _, reason in cases]
    assert [r.kept for r in records] == [reason is None for _, _, reason in cases]
    assert records[0].passed == records[0].total == 2 and records[3].passed == 1
    assert tally.kept == 1 and sum(tally.dropped.values()) == len(cases) - 1
    assert tally.to_dict()["dropped"]["code_failed"] == 1 and tally.to_dict()["judged"] == len(cases)


def test_degenerate_thresholds_are_the_configs():
    from pipeline.bootstrap import degenerate_reason

    short = ["ok", *STAGES[1:], "x"]
    assert degenerate_reason(short, GOOD, "add", BootstrapConfig()) is None
    assert degenerate_reason(short, GOOD, "add", BootstrapConfig(min_stage_chars=3)) == ("empty_stage", "stage 1")
    repetitive = " ".join(["sum the two numbers a and b"] * 3)  # a third of its tokens repeat earlier 4-grams
    assert degenerate_reason([repetitive, *STAGES[1:], "x"], GOOD, "add", BootstrapConfig()) is None
    assert degenerate_reason([repetitive, *STAGES[1:], "x"], GOOD, "add",
                             BootstrapConfig(collapse_ngram=4, collapse_threshold=0.3))[0] == "collapsed_stage"


def test_only_valid_generated_tests_are_kept(sandbox):
    tests = [  # (test, expected reason; None = kept)
        ("assert add(1, 2) == 3", None),
        ("assert not add(0, 0)", None),                      # passes on the None stand-in, fails on the marker one
        ("assert add(2, 2) == 5", "reference_failed"),
        ("assert add('a', 1) == 1", "reference_error"),
        ("assert add(1, 2) == 3", "duplicate"),
        ("assert add(1,2)==3  # same AST", "duplicate"),
        ("assert sum([1, 2]) == 3", "no_call"),
        ("def add(a, b):\n    return 0\nassert add(1, 1) == 0", "no_call"),  # tests its own stand-in
        ("import os\nassert add(1, 2) == 3 or os.getpid() > 0", "chance_source"),
        ("assert add(1, 2) == 3 or id(add) % 2 == 0", "chance_source"),
        ("add(1, 2)\nassert isinstance(3, int)", "vacuous"),              # a call whose result nobody checks
        ("try:\n    assert add(1, 2) == 4\nexcept AssertionError:\n    pass", "vacuous"),
    ]
    records = [TestRecord("t/add", i % 2, 1, "generated", test) for i, (test, _) in enumerate(tests)]
    tally = judge_tests(records, {"t/add": ADD}, sandbox, BootstrapConfig())
    assert [r.reason for r in records] == [reason for _, reason in tests]
    assert [r.kept for r in records] == [reason is None for _, reason in tests]
    assert tally.kept == 2
    assert tally.to_dict()["dropped"] == {"chance_source": 2, "duplicate": 2, "no_call": 2, "reference_error": 1,
                                          "reference_failed": 1, "vacuous": 2}


def test_own_tests_seed_only_problems_without_a_valid_generated_test(sandbox):
    other = {**ADD, "task_id": "t/other"}
    judged = [TestRecord("t/add", 0, 1, "generated", "assert add(1, 2) == 3", kept=True),
              TestRecord("t/other", 0, 1, "generated", "assert add(1, 2) == 4", reason="reference_failed")]
    seeds = seed_tests([ADD, other], judged)
    assert [(s.task_id, s.stage, s.source, s.test) for s in seeds] == [
        ("t/other", 1, "own_tests", "assert add(1, 2) == 3"), ("t/other", 1, "own_tests", "assert add(-1, 1) == 0")]
    tally = judge_tests(seeds, {"t/other": other}, sandbox, BootstrapConfig())
    assert tally.kept == 2 and all(s.kept for s in seeds)


def test_seeds_spread_one_per_stage_and_only_the_valid_ones():
    """Two valid own tests spread over five stages (1, 2, 1, 2, 1 cycling); an invalid one stays once, unspread."""
    seeds = [TestRecord("t/a", 0, 1, "own_tests", "assert f(1) == 1", kept=True),
             TestRecord("t/a", 0, 1, "own_tests", "assert f(2) == 2", kept=True),
             TestRecord("t/a", 0, 1, "own_tests", "assert f(3) == 0", reason="reference_failed"),
             TestRecord("t/b", 0, 1, "own_tests", "assert g() == 0", reason="reference_error")]
    spread = spread_over_stages(seeds)
    assert [(r.task_id, r.stage, r.kept) for r in spread[:2]] == [("t/a", 1, False), ("t/b", 1, False)]
    assert [(r.stage, r.test[9]) for r in spread[2:]] == [(1, "1"), (2, "2"), (3, "1"), (4, "2"), (5, "1")]
    assert all(r.kept and r.source == "own_tests" and r.sample == 0 for r in spread[2:])
    assert seeds[0].stage == 1  # copies, the judged records are untouched


def test_kept_samples_become_examples_in_the_rollouts_conversations(sandbox):
    templates = load_templates("default")
    tests = [["assert add(1, 2) == 3", "assert add(2, 2) == 5"], ["assert add(0, 0) == 0"]]
    sampled = chain(GOOD + "\nprint('extra')\n", tests=tests)
    sampled.test_texts = ["```python\nassert add(1, 2) == 3\nassert add(2, 2) == 5\n```", "```python\n...```"]
    records, _ = judge_chains([(ADD, 0, sampled)], sandbox, BootstrapConfig())
    example = generator_example(ADD, records[0], templates)
    roles = [m["role"] for m in example["prompt"] + example["completion"]]
    assert roles == ["system"] + ["user", "assistant"] * 5
    assert [m["content"] for m in example["completion"][0::2]][:4] == STAGES
    assert example["completion"][-1]["content"] == "```python\n" + records[0].final_code.strip("\n") + "\n```"

    candidates = generated_tests([(ADD, 0, sampled)])
    assert [(c.stage, c.test) for c in candidates] == [(1, tests[0][0]), (1, tests[0][1]), (2, tests[1][0])]
    judge_tests(candidates, {"t/add": ADD}, sandbox, BootstrapConfig())
    groups = discriminator_groups(candidates)
    assert list(groups) == [("t/add", 0, 1, "generated"), ("t/add", 0, 2, "generated")]
    second = discriminator_example(ADD, sampled.stage_texts, sampled.test_texts, 2,
                                   [r.test for r in groups[("t/add", 0, 2, "generated")]], templates)
    assert [m["role"] for m in second["prompt"]] == ["system", "user", "assistant", "user"]
    assert second["prompt"][2]["content"] == sampled.test_texts[0]  # its own earlier answer, as written
    assert STAGES[1] in second["prompt"][3]["content"]              # the generator's stage 2 it is shown
    assert second["completion"] == [{"role": "assistant", "content": "```python\nassert add(0, 0) == 0\n```"}]


@pytest.mark.parametrize("bad", [{"rounds": 0}, {"temperature": 0.0}, {"generator_tokens": [1, 2]},
                                 {"max_kept_per_problem": 0}, {"train_generator": False, "train_discriminator": False},
                                 {"collapse_threshold": 1.5}])
def test_bad_configs_are_refused_with_a_message(bad):
    with pytest.raises(BootstrapError):
        BootstrapConfig(**bad)


def test_each_round_draws_its_problems_with_its_own_seed():
    from pipeline.bootstrap.run import round_problems

    rows = [{**ADD, "task_id": f"t/{i}"} for i in range(10)]
    config = BootstrapConfig(max_problems_per_round=4)
    first, again, second = (round_problems(rows, config, k, seed=3) for k in (1, 1, 2))
    assert first == again and first != second and len(first) == len(second) == 4
    assert [r["task_id"] for r in first] == sorted((r["task_id"] for r in first), key=lambda t: int(t[2:]))
    assert round_problems(rows, BootstrapConfig(), 1, seed=3) == rows


def test_examples_over_max_length_are_dropped_and_counted_never_truncated():
    from datasets import Dataset

    from pipeline.bootstrap.filters import GENERATOR_REASONS, ChainRecord, Tally
    from pipeline.bootstrap.run import _drop_too_long

    records = [ChainRecord("t/add", i, True, None, "", STAGES, GOOD) for i in range(3)]
    tally = Tally(GENERATOR_REASONS, kept=3)
    examples = [{"task_id": "t/add", "n": n} for n in (4, 9, 5)]
    dataset = Dataset.from_list([{"input_ids": [1] * n, "labels": [1] * n} for n in (4, 9, 5)])
    kept, kept_examples = _drop_too_long(dataset, examples, 5, [[r] for r in records], lambda _: tally)
    assert [len(ids) for ids in kept["input_ids"]] == [4, 5] and [e["n"] for e in kept_examples] == [4, 5]
    assert [r.reason for r in records] == [None, "too_long", None] and records[1].detail == "9 tokens > 5"
    assert tally.to_dict() == {"judged": 3, "kept": 2, "dropped": {"too_long": 1}}


COPIES = ["We add the two numbers a and b given to the function and then we return the sum of the two numbers."] * 4
# A reference long enough that, joined with the four copies, the chain as a whole would not count as collapsed.
LONG = {**ADD, "reference_solution": "def add(a, b):\n" + "".join(f"    step_{i} = a + b + {i} - {i}\n" for i in range(40))
        + "    return step_0\n"}


def test_rationalization_lends_the_reference_only_where_no_sampled_chain_passed(sandbox):
    from pipeline.bootstrap.filters import rationales

    wrong_ref = {**ADD, "task_id": "t/wrong", "reference_solution": "def add(a, b):\n    return a - b\n"}
    solved = {**ADD, "task_id": "t/solved"}
    looping = [STAGES[0], "return return the sum", *STAGES[2:]]
    samples = [
        (ADD, 0, chain("def add(a, b):\n    return 0\n", looping)),   # collapsed stages: skipped for sample 1
        (ADD, 1, chain("def add(a, b):\n    return a * b\n")),        # clean stages, wrong code
        (solved, 0, chain(GOOD, task="t/solved")),                     # solved: no rationale
        (wrong_ref, 0, chain("def add(a, b):\n    return 1\n", task="t/wrong")),  # the reference itself fails
        ({**ADD, "task_id": "t/loops"}, 0, chain("", looping, task="t/loops")),     # no clean stages at all
        ({**LONG, "task_id": "t/copies"}, 0, chain("", COPIES, task="t/copies")),   # stage 1 copied, long reference
    ]
    config = BootstrapConfig()
    records, tally = judge_chains(samples, sandbox, config)
    assert [r.kept for r in records] == [False, False, True, False, False, False]
    made = rationales(samples, records, config)
    assert [(row["task_id"], sample) for row, sample, _ in made] == [
        ("t/add", 1), ("t/wrong", 0), ("t/loops", 0), ("t/copies", 0)]
    assert made[0][2].stage_texts == (*STAGES, ADD["reference_solution"])
    judged, rationale_tally = judge_chains(made, sandbox, config, source="rationalized")
    assert [(r.kept, r.reason, r.source) for r in judged] == [
        (True, None, "rationalized"), (False, "code_failed", "rationalized"),
        (False, "collapsed_stage", "rationalized"), (False, "repeated_stages", "rationalized")]
    assert judged[0].final_code == ADD["reference_solution"] and judged[0].stage_texts[:4] == STAGES
    assert rationale_tally.to_dict() == {"judged": 4, "kept": 1,
                                         "dropped": {"code_failed": 1, "collapsed_stage": 1, "repeated_stages": 1}}
    # As a sampled chain the same text would pass the repetition check: the long code dilutes it.
    sampled, _ = judge_chains([(LONG, 0, chain(LONG["reference_solution"], COPIES))], sandbox, config)
    assert sampled[0].kept
    example = generator_example(ADD, judged[0], load_templates("default"))
    assert "return a + b" in example["completion"][-1]["content"] and STAGES[3] in str(example["completion"])
