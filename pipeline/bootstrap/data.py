"""Kept samples as training examples in the conversations the rollout runs, and the readable round files.

Generator: the whole five-stage conversation, as the warm start's stage format (prompt = system + stage-1
request, completion = the rest), with the model's own stages 1-4 and, as stage 5, the code that passed in
the answer format (`prompts.parsing.format_code`): the sampled stage-5 text may run on past the code or stop
at the token budget, while the code stage asks for exactly one code block.

Discriminator: one example per (chain, stage) with a kept test: the prompt is the discriminator's
conversation up to that stage's request, with its earlier answers as it wrote them (context, no loss), the
completion that stage's kept tests in one code block, the answer format its prompts ask for. A seeded
example (round 1, the problem's own tests) sits at stage 1 of the problem's first chain.

Both are trained with assistant-only labels (`pipeline.warmstart.assistant_only_dataset`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prompts.chat import discriminator_messages, generator_messages
from prompts.parsing import format_code
from prompts.stages import NUM_STAGES
from prompts.templates import TemplateSet

from pipeline.bootstrap.filters import ChainRecord, TestRecord


def problem_fields(row: Mapping[str, Any]) -> dict[str, str]:
    """The fields the prompts show, read as `pipeline.chain` reads them."""
    return {"problem": str(row.get("problem") or row.get("prompt") or ""), "entry_point": str(row["entry_point"]),
            "signature": str(row.get("signature") or "")}


def generator_example(row: Mapping[str, Any], record: ChainRecord, templates: TemplateSet) -> dict[str, Any]:
    """The kept chain as a stage-format example (`task_id`, `prompt`, `completion`)."""
    outputs = [text.strip() for text in record.stage_texts[: NUM_STAGES - 1]] + [format_code(record.final_code)]
    messages = generator_messages(templates, **problem_fields(row), outputs=outputs)
    return {"task_id": record.task_id, "prompt": messages[:2], "completion": messages[2:]}


def discriminator_example(row: Mapping[str, Any], stage_texts: Sequence[str], test_texts: Sequence[str],
                          stage: int, tests: Sequence[str], templates: TemplateSet) -> dict[str, Any]:
    """Stage ``stage``'s kept ``tests`` as the answer to the discriminator's conversation so far (the generator's
    stages 1..stage and the discriminator's own answers to the stages before)."""
    messages = discriminator_messages(templates, **problem_fields(row), stage_outputs=list(stage_texts[:stage]),
                                      test_outputs=list(test_texts[: stage - 1]))
    answer = {"role": "assistant", "content": format_code("\n".join(t.strip("\n") for t in tests))}
    return {"task_id": str(row["task_id"]), "stage": stage, "prompt": messages, "completion": [answer]}


def discriminator_groups(records: Iterable[TestRecord]) -> dict[tuple[str, int, int, str], list[TestRecord]]:
    """Kept tests grouped by (task, sample, stage, source): one example each, in order of appearance."""
    groups: dict[tuple[str, int, int, str], list[TestRecord]] = {}
    for record in records:
        if record.kept:
            groups.setdefault((record.task_id, record.sample, record.stage, record.source), []).append(record)
    return groups


def write_jsonl(path: Path, rows: Iterable[Mapping[str, Any]]) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count
