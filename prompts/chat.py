"""Chat messages for the generator, discriminator and direct prompts, and incremental token ids.

The rollout keeps one KV cache per conversation and, each stage, appends only the new turn:
`next_turn_ids` gives exactly those tokens (and says when the chat template makes that
impossible), `close_turn_ids` the tokens that end a just-generated assistant turn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .stages import NUM_STAGES, get_stage
from .templates import TemplateSet

Message = dict[str, str]


def _fields(problem: str, entry_point: str, signature: str) -> dict[str, object]:
    if not isinstance(entry_point, str) or not entry_point.isidentifier():
        raise ValueError(f"entry_point must be a Python identifier, got {entry_point!r}")
    # Datasets without a reference signature still name the function: show that much.
    return {"problem": problem, "entry_point": entry_point,
            "signature": signature or f"def {entry_point}(...):", "num_stages": NUM_STAGES}


def _stage_fields(stage_id: int) -> dict[str, object]:
    stage = get_stage(stage_id)
    return {"stage_id": stage.id, "stage_name": stage.name}


def _system(template_text: str) -> Message:
    return {"role": "system", "content": template_text}


def generator_turn(templates: TemplateSet, stage_id: int, *, problem: str, entry_point: str,
                   signature: str = "") -> Message:
    """The user message that asks the generator for stage `stage_id`."""
    text = templates.generator_stage(stage_id).render(
        **_fields(problem, entry_point, signature), **_stage_fields(stage_id))
    return {"role": "user", "content": text}


def generator_messages(templates: TemplateSet, *, problem: str, entry_point: str, signature: str = "",
                       outputs: Sequence[str] = ()) -> list[Message]:
    """The generator's conversation after `len(outputs)` answered stages.

    Ends with the user turn asking for the next stage, or with the last answer once all
    stages are answered.
    """
    if len(outputs) > NUM_STAGES:
        raise ValueError(f"{len(outputs)} stage outputs given; there are {NUM_STAGES} stages")
    system = templates.system_generator.render(num_stages=NUM_STAGES)
    messages = [_system(system)]
    for stage_id in range(1, NUM_STAGES + 1):
        messages.append(generator_turn(templates, stage_id, problem=problem, entry_point=entry_point,
                                       signature=signature))
        if stage_id > len(outputs):
            break
        messages.append({"role": "assistant", "content": outputs[stage_id - 1]})
    return messages


def discriminator_turn(templates: TemplateSet, stage_id: int, stage_output: str, *, problem: str,
                       entry_point: str, signature: str = "") -> Message:
    """The user message that shows the generator's stage output and asks for that stage's tests."""
    text = templates.discriminator_stage(stage_id).render(
        **_fields(problem, entry_point, signature), **_stage_fields(stage_id), stage_output=stage_output)
    return {"role": "user", "content": text}


def discriminator_messages(templates: TemplateSet, *, problem: str, entry_point: str, signature: str = "",
                           stage_outputs: Sequence[str], test_outputs: Sequence[str] = ()) -> list[Message]:
    """The discriminator's conversation: one user turn per generator stage, answered by tests.

    `stage_outputs` are the generator's answers so far, `test_outputs` the discriminator's
    answers so far (one fewer, or as many once the last stage is answered).
    """
    if not 1 <= len(stage_outputs) <= NUM_STAGES:
        raise ValueError(f"need 1..{NUM_STAGES} generator stage outputs, got {len(stage_outputs)}")
    if len(test_outputs) not in (len(stage_outputs) - 1, len(stage_outputs)):
        raise ValueError(f"{len(test_outputs)} test outputs do not fit {len(stage_outputs)} stage outputs")
    messages = [_system(templates.system_discriminator.render(num_stages=NUM_STAGES))]
    for stage_id, stage_output in enumerate(stage_outputs, start=1):
        messages.append(discriminator_turn(templates, stage_id, stage_output, problem=problem,
                                           entry_point=entry_point, signature=signature))
        if stage_id <= len(test_outputs):
            messages.append({"role": "assistant", "content": test_outputs[stage_id - 1]})
    return messages


def direct_messages(templates: TemplateSet, *, problem: str, entry_point: str,
                    signature: str = "") -> list[Message]:
    """One-shot prompt asking for the code only (direct evaluation, SFT warm start)."""
    text = templates.direct.render(**_fields(problem, entry_point, signature))
    return [_system(templates.system_direct.render(num_stages=NUM_STAGES)), {"role": "user", "content": text}]


# ---------------------------------------------------------------------------------------------
# Token ids (the only tokenizer-dependent part: a Hugging Face tokenizer with a chat template)


def render_text(tokenizer: Any, messages: Sequence[Message], *, add_generation_prompt: bool) -> str:
    """The conversation as the chat template writes it (text, so prefixes can be compared)."""
    return tokenizer.apply_chat_template(list(messages), tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of already-templated text: the template wrote any special tokens itself."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def render_ids(tokenizer: Any, messages: Sequence[Message], *, add_generation_prompt: bool = True) -> list[int]:
    """Token ids of a whole conversation, as the model sees it before generating."""
    return encode(tokenizer, render_text(tokenizer, messages, add_generation_prompt=add_generation_prompt))


@dataclass(frozen=True)
class TurnIds:
    """Tokens for the next turn.

    incremental=True: `ids` are to be appended to the history already in the cache.
    incremental=False: the chat template re-renders earlier turns differently once a turn is
    added (e.g. templates that drop earlier reasoning), so `ids` is the whole conversation and
    the caller must discard its cache and prefill from scratch.
    """

    ids: list[int]
    incremental: bool


def next_turn_ids(tokenizer: Any, history: Sequence[Message], new_messages: Sequence[Message], *,
                  add_generation_prompt: bool = True) -> TurnIds:
    """Ids of only the new turn(s): render(history + new) minus render(history), checked.

    The difference is taken on text and then tokenized; it is accepted only if the text of
    the history is a prefix of the full text AND tokenizing the two parts separately gives the
    same ids as tokenizing the whole (no token merges across the boundary).
    """
    before = render_text(tokenizer, history, add_generation_prompt=False)
    full = render_text(tokenizer, [*history, *new_messages], add_generation_prompt=add_generation_prompt)
    full_ids = encode(tokenizer, full)
    if full.startswith(before):
        suffix_ids = encode(tokenizer, full[len(before):])
        if encode(tokenizer, before) + suffix_ids == full_ids:
            return TurnIds(suffix_ids, True)
    return TurnIds(full_ids, False)


def assistant_closing(tokenizer: Any) -> str:
    """What the chat template writes right after an assistant message's content (ChatML: '<|im_end|>\\n')."""
    marker = "\x00CONTENT\x00"
    messages = [{"role": "user", "content": "u"}, {"role": "assistant", "content": marker}]
    text = render_text(tokenizer, messages, add_generation_prompt=False)
    return text[text.index(marker) + len(marker):] if marker in text else ""


def close_turn_ids(tokenizer: Any, completion_ids: Sequence[int]) -> list[int]:
    """Ids to append after raw generated ids so the cache ends like a rendered assistant turn.

    A completion that stopped on the end-of-turn token still lacks what the template writes
    after it (ChatML: the newline); one cut off by the token limit lacks the whole closing.
    Pass the completion without padding.
    """
    closing = encode(tokenizer, assistant_closing(tokenizer))
    done = list(completion_ids[-len(closing):]) if closing else []
    for k in range(len(closing), 0, -1):
        if done[len(done) - k:] == closing[:k]:
            return closing[k:]
    return closing
