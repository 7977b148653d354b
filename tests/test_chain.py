"""The five-stage chain and the rollout TRL calls (issue 4), on a tiny random model.

The tiny model's output is noise, which is what these tests need: they check that the batched,
cache-reusing generation produces exactly what plain one-sequence generation produces, and that
the completions and masks handed to TRL are built from the right tokens.
"""

from __future__ import annotations

import pytest
import torch

from pipeline.models.adapters import acting_as
from pipeline.chain import Chain, ChainConfig, PrefixUnstableError, accumulate_tests, generate_chains
from pipeline.models import ModelConfig
from pipeline.models.policies import Policies, load_policies
from pipeline.chain.rollout import Phase, ProblemIndex, RolloutState, StagedRollout, assemble, roles_for
from pipeline.models.tiny import build_tiny_model
from prompts.record import RECORD_COLUMNS
from rewards.batch import parse_batch

PROBLEMS = [
    {"task_id": "a", "problem": "Add two numbers.", "entry_point": "add", "signature": "def add(a, b):"},
    {"task_id": "b", "problem": "Return the reverse of a list as a new list, without changing the input list.",
     "entry_point": "rev", "signature": "def rev(xs):"},
    {"task_id": "c", "problem": "x", "entry_point": "f"},
]
TIE = 1e-4  # logits of this random model are O(1); float noise between batched and plain sums is ~1e-6
BUDGET = ChainConfig(generator_tokens=(12, 20, 7, 15, 9), discriminator_tokens=(10, 6, 8, 5, 11), temperature=0)


@pytest.fixture(scope="module")
def policies(tmp_path_factory):
    folder = build_tiny_model(tmp_path_factory.mktemp("tiny"))
    # fp32 on every CPU: the cache test below compares logits to 1e-4, finer than bf16 resolves (dtype auto would
    # pick bf16 on a CPU with native bf16)
    policies = load_policies(ModelConfig(model_name_or_path=str(folder), lora_r=4, dtype="float32"))
    with torch.no_grad():  # distinct, non-zero adapters so that the two roles really differ
        generator = torch.Generator().manual_seed(0)
        for name, param in policies.model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    return policies


@pytest.fixture(scope="module")
def chains(policies):
    return generate_chains(policies, PROBLEMS, BUDGET)


def test_cached_batched_generation_equals_plain_generation(policies, chains):
    _assert_every_token_is_the_greedy_choice(policies, chains)


def _assert_every_token_is_the_greedy_choice(policies, chains):
    """Every token of every stage is the greedy choice of a plain forward pass over its exact context.

    One teacher-forced pass per role over prompt + inserted turns + generated stages, with no cache
    and no padding, gives the logits each generated token was chosen from. A wrong cache, a wrong
    padding mask or a misplaced inserted turn changes those logits by far more than float noise, so
    the chosen token stops being the argmax. Comparing token lists with a second greedy run instead
    flakes on this random model: its logits are nearly flat, and batched and unbatched float sums
    break near-ties differently on different CPUs (seen in CI: one flip in 1 600 tokens). So a token
    counts as the argmax when its logit is within ``TIE`` of the best one, and almost all must be
    exact.
    """
    model, tokenizer = policies.model, policies.tokenizer
    exact = total = 0
    for chain in chains:
        for role, turns, budgets in (("generator", chain.generator, BUDGET.generator_tokens),
                                     ("discriminator", chain.discriminator, BUDGET.discriminator_tokens)):
            sequence, positions = list(turns.prompt), []
            for stage, generated in enumerate(turns.generated):
                if stage:
                    sequence += turns.inserted[stage - 1]
                ended = tokenizer.eos_token_id in generated
                assert len(generated) == budgets[stage] or (ended and generated[-1] == tokenizer.eos_token_id), \
                    (chain.task_id, role, stage + 1)
                positions += [(len(sequence) + i, stage) for i in range(len(generated))]
                sequence += generated
            with acting_as(model, role), torch.no_grad():
                logits = model(input_ids=torch.tensor([sequence])).logits[0].float()
            for position, stage in positions:
                scores, chosen = logits[position - 1], sequence[position]
                gap = (scores.max() - scores[chosen]).item()
                assert gap <= TIE, (chain.task_id, role, stage + 1, position, gap)
                exact += gap == 0.0
                total += 1
    assert total > 100 and exact >= 0.98 * total, (exact, total)


def test_every_stage_is_there_within_its_budget(chains):
    for chain in chains:
        assert len(chain.stage_texts) == len(chain.test_texts) == len(chain.tests_by_stage) == 5
        assert all(n <= b for n, b in zip(chain.stage_tokens, BUDGET.generator_tokens))
        assert all(len(g) <= b for g, b in zip(chain.discriminator.generated, BUDGET.discriminator_tokens))
        assert len(chain.generator.inserted) == len(chain.discriminator.inserted) == 4


def test_discriminator_prompt_contains_the_generator_stage(policies, chains):
    tokenizer = policies.tokenizer
    for chain in chains:
        prompt_text = tokenizer.decode(chain.discriminator.prompt)
        assert chain.stage_texts[0].strip()[:20] in prompt_text
        for stage in range(1, 5):  # each inserted discriminator turn carries that stage's output
            inserted = tokenizer.decode(chain.discriminator.inserted[stage - 1])
            assert chain.stage_texts[stage].strip()[:20] in inserted


@pytest.mark.parametrize("role", ["generator", "discriminator"])
@pytest.mark.parametrize("train_stage", [0, 1, 3, 5])
def test_trained_tokens_are_exactly_the_roles_own_stages_from_k(chains, role, train_stage):
    for chain in chains:
        turns = chain.generator if role == "generator" else chain.discriminator
        prompt, completion, mask = assemble(chain, role, train_stage)
        assert prompt == turns.prompt and len(completion) == len(mask)
        expected_trained = [t for k, g in enumerate(turns.generated, 1) if train_stage == 0 or k >= train_stage
                            for t in g]
        assert [t for t, m in zip(completion, mask) if m] == expected_trained
        # the full sequence is exactly what the model saw while generating
        flat = [t for k, g in enumerate(turns.generated) for t in (turns.inserted[k - 1] if k else []) + g]
        assert completion == flat


def test_tests_accumulate_stage_by_stage():
    chain = Chain(task_id="t", entry_point="add")
    accumulate_tests(chain, "```python\nassert add(1, 2) == 3\nassert add(0, 0) == 0\n```")
    accumulate_tests(chain, "```python\nassert add(0, 0) == 0\nassert add(-1, 1) == 0\nassert sub(1) == 2\n```")
    accumulate_tests(chain, "no tests here")
    assert chain.tests_by_stage[0] == ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]
    assert chain.tests_by_stage[1] == ["assert add(-1, 1) == 0"]
    assert chain.tests_by_stage[2] == []
    assert chain.rejections["repeat"] == 1 and chain.rejections["wrong_function"] == 1
    assert chain.rejections["no_assert"] == 1


def test_unified_mode_keeps_one_role_per_group():
    assert roles_for(Phase("unified"), 8, 2) == ["generator", "generator", "discriminator", "discriminator"] * 2
    assert roles_for(Phase("discriminator", 2), 3, 3) == ["discriminator"] * 3


def test_to_trl_fields(chains):
    rows = [dict(p, prompt=p["task_id"], tests=[], reference_solution="", test_setup="") for p in PROBLEMS]
    rollout = StagedRollout(ProblemIndex(rows), BUDGET, RolloutState(Phase("discriminator", 2)))
    out = rollout.to_trl(chains, ["discriminator"] * len(chains), rows, [False, True, False])
    assert out["logprobs"] is None
    # the extra fields are exactly the rollout's record (prompts.record), one entry per completion
    assert set(out) - {"prompt_ids", "completion_ids", "logprobs", "env_mask"} == set(RECORD_COLUMNS)
    for key in ("prompt_ids", "completion_ids", "env_mask", *RECORD_COLUMNS):
        assert len(out[key]) == len(chains), key
    assert out["task_id"] == [p["task_id"] for p in PROBLEMS] and out["replayed"] == [False, True, False]
    # alone, they are what the rewards parse: no column missing, the same record back
    records = parse_batch(out, num_stages=5)
    assert [r.role for r in records] == ["discriminator"] * 3 and records[0].stage_texts == tuple(chains[0].stage_texts)
    assert [r.replayed for r in records] == [False, True, False] and records[1].task_id == PROBLEMS[1]["task_id"]
    assert out["train_stage"] == [2, 2, 2]
    assert all(len(c) == len(m) for c, m in zip(out["completion_ids"], out["env_mask"]))


def test_bad_inputs_get_clear_errors():
    with pytest.raises(ValueError, match="generator_tokens"):
        ChainConfig(generator_tokens=(1, 2))
    with pytest.raises(ValueError, match="train_stage"):
        Phase("generator", 7)
    with pytest.raises(ValueError, match="role"):
        Phase("judge")
    with pytest.raises(KeyError, match="none of its problems"):
        ProblemIndex([{"prompt": "p"}])["q"]


def test_a_template_that_rewrites_earlier_turns_is_refused_with_the_reason(policies):
    """Token-exact rollouts need a template that only appends: one that re-renders history is an error, not a
    silent fallback that would train on token ids the model never saw."""
    import copy

    rewriting = copy.deepcopy(policies.tokenizer)
    rewriting.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
        "{% if m['role'] == 'assistant' and not loop.last %}[earlier answer]{% else %}{{ m['content'] }}{% endif %}"
        "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    with pytest.raises(PrefixUnstableError, match="re-renders earlier turns"):
        generate_chains(Policies(policies.model, rewriting), PROBLEMS[:1], BUDGET)


STARTS = {"generator": ["Idea:", "1.", "", "- ", "```python\n"],
          "discriminator": ["```python\nassert", "", "```python\n", "", "```python\nassert"]}


@pytest.fixture(scope="module")
def started_chains(policies, tmp_path_factory):
    """Chains from a template set whose replies start with prefilled text at most stages, in both roles."""
    import json
    import shutil

    from prompts.templates import TEMPLATES_ROOT

    folder = tmp_path_factory.mktemp("templates") / "started"
    shutil.copytree(TEMPLATES_ROOT / "default", folder)
    (folder / "reply_starts.json").write_text(json.dumps(STARTS))
    return generate_chains(policies, PROBLEMS, ChainConfig(generator_tokens=BUDGET.generator_tokens,
                                                           discriminator_tokens=BUDGET.discriminator_tokens,
                                                           temperature=0, templates=str(folder)))


def test_reply_starts_are_inserted_context_and_begin_the_replies(policies, started_chains):
    """A reply's start ends the prompt (stage 1) or the inserted turn before the reply, so it is context the
    policy is never trained on; the reply's text, which the other role and the parsers read, begins with it."""
    tokenizer = policies.tokenizer
    for chain in started_chains:
        for role, turns, texts in (("generator", chain.generator, chain.stage_texts),
                                   ("discriminator", chain.discriminator, chain.test_texts)):
            for stage, start in enumerate(STARTS[role], start=1):
                ids = tokenizer(start, add_special_tokens=False)["input_ids"] if start else []
                before = turns.prompt if stage == 1 else turns.inserted[stage - 2]
                assert before[len(before) - len(ids):] == ids, (chain.task_id, role, stage)
                assert texts[stage - 1].startswith(start)
                assert texts[stage - 1][len(start):] == tokenizer.decode(turns.generated[stage - 1],
                                                                          skip_special_tokens=True)
            _, completion, mask = assemble(chain, role, 0)
            assert [t for t, m in zip(completion, mask) if m] == [t for g in turns.generated for t in g]
        # the final code is read from the whole code reply, fence included
        assert chain.stage_texts[4].startswith("```python\n")


def test_generation_after_a_reply_start_is_the_greedy_choice_in_its_context(policies, started_chains):
    _assert_every_token_is_the_greedy_choice(policies, started_chains)


def test_the_default_code_reply_starts_with_the_fence(policies, chains):
    fence = policies.tokenizer("```python\n", add_special_tokens=False)["input_ids"]
    for chain in chains:
        assert chain.generator.inserted[3][-len(fence):] == fence and chain.stage_texts[4].startswith("```python\n")
