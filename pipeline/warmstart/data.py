"""Supervised warm-start examples in TRL's prompt-completion conversational format.

Direct examples: the prompt is the chat `direct` evaluation uses, the completion the reference solution
in the answer format (`prompts.parsing.format_code`). TRL's `SFTTrainer` then trains on the completion
only (`completion_only_loss` defaults to True for prompt-completion data).

Stage-format examples: the prompt is the generator's stage-1 conversation and the completion the rest of
the chain (assistant stage 1, user stage 2, assistant stage 2, ..., assistant stage 5 with the code).
TRL would train on every completion token, user turns included, and its `assistant_only_loss` needs a
chat template with `{% generation %}` markers, which TRL can patch in only for the templates it knows
(not SmolLM2's ChatML). So `assistant_only_dataset` tokenizes such examples itself, turn by turn, with
labels on the assistant turns only (their text and the template's end-of-turn), exactly the tokens the
policy writes in a rollout; TRL uses prebuilt `input_ids` + `labels` as they are.

Every dropped row is counted under a reason (`DataReport`) and logged; no row is lost silently.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from datasets import Dataset

from prompts.chat import direct_messages, encode, generator_messages, render_ids, render_text
from prompts.parsing import extract_code, format_code
from prompts.stages import NUM_STAGES
from prompts.templates import TemplateSet, load_templates
from pipeline.warmstart.config import FINAL_CODE_SOURCES, WarmStartError

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label of tokens that carry no loss (PyTorch's cross-entropy default)
DROP_REASONS = (
    "invalid_row",    # no usable entry point or reference solution
    "no_tests",       # keep_only_passing, but the row has no tests to verify with
    "empty_stage",    # a teacher chain left one of stages 1-4 blank
    "no_code",        # final_code='teacher' and the teacher's last stage holds no code
    "code_failed",    # the target's code fails the row's tests in the sandbox
    "sandbox_error",  # the sandbox could not give a verdict (infra_error): unknown, so not trusted
    "too_long",       # prompt + completion longer than max_length tokens
)


@dataclass
class DataReport:
    """How many rows came in, how many became examples, and why the others were dropped."""

    rows: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)

    def drop(self, reason: str, task_id: str, detail: str = "") -> None:
        assert reason in DROP_REASONS, reason
        self.dropped[reason] += 1
        logger.info("warm start: dropped %s (%s)%s", task_id, reason, f": {detail}" if detail else "")

    def summary(self) -> str:
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.dropped.items())) or "none"
        return f"{self.kept} of {self.rows} rows kept; dropped: {reasons}"

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "kept": self.kept, "dropped": dict(sorted(self.dropped.items()))}


def _tests(row: Mapping[str, Any]) -> tuple[str, ...]:
    tests = row.get("tests") or ()
    if isinstance(tests, str):
        return (tests,)
    return tuple(t for t in tests if isinstance(t, str) and t.strip())


def _fields(row: Mapping[str, Any]) -> dict[str, str] | None:
    """The prompt fields of a row, or None when it cannot make an example."""
    entry_point = row.get("entry_point")
    reference = row.get("reference_solution")
    if not isinstance(entry_point, str) or not entry_point.isidentifier():
        return None
    if not isinstance(reference, str) or not reference.strip():
        return None
    return {"problem": str(row.get("problem") or row.get("prompt") or ""), "entry_point": entry_point,
            "signature": str(row.get("signature") or "")}


def _stage_outputs(chain: Any, row: Mapping[str, Any], entry_point: str, final_code: str,
                   report: DataReport, task_id: str) -> tuple[list[str], str] | None:
    """Stages 1-4 of a teacher chain and the target code, or None (counted) when unusable."""
    texts = [str(t).strip() for t in getattr(chain, "stage_texts", [])]
    if len(texts) < NUM_STAGES - 1 or not all(texts[: NUM_STAGES - 1]):
        report.drop("empty_stage", task_id, f"{len(texts)} stage texts, blank ones among stages 1-4")
        return None
    if final_code == "reference":
        return texts[: NUM_STAGES - 1], row["reference_solution"]
    code = extract_code(texts[NUM_STAGES - 1], entry_point).code if len(texts) >= NUM_STAGES else ""
    if not code.strip():
        report.drop("no_code", task_id)
        return None
    return texts[: NUM_STAGES - 1], code


def _verify(candidates: list[tuple[int, str, Mapping[str, Any]]], sandbox: Any | None,
            report: DataReport) -> set[int]:
    """Indices of candidates whose code passes every test of their row (the others are counted)."""
    from sandbox import Job, Sandbox  # the pool is started only when something needs verifying

    runnable, passing = [], set()
    for index, code, row in candidates:
        if _tests(row):
            runnable.append((index, code, row))
        else:
            report.drop("no_tests", str(row.get("task_id", index)))
    if not runnable:
        return passing
    jobs = [Job(program=code, tests=_tests(row), setup=str(row.get("test_setup") or ""),
                entry_point=row["entry_point"]) for _, code, row in runnable]
    if sandbox is None:
        with Sandbox() as owned:
            results = owned.run_many(jobs)
    else:
        results = sandbox.run_many(jobs)
    for (index, _, row), result in zip(runnable, results):
        task_id = str(row.get("task_id", index))
        if result.status == "passed":
            passing.add(index)
        elif result.status == "infra_error":
            report.drop("sandbox_error", task_id)
        else:
            report.drop("code_failed", task_id, f"{result.status}, {result.passed}/{result.total} tests passed")
    return passing


def sft_examples(
    rows: Sequence[Mapping[str, Any]],
    templates: TemplateSet | str = "default",
    tokenizer: Any | None = None,
    *,
    stage_format: bool = False,
    chains: Sequence[Any] | None = None,
    final_code: str = "reference",
    keep_only_passing: bool = True,
    max_length: int | None = None,
    sandbox: Any | None = None,
) -> tuple[list[dict[str, Any]], DataReport]:
    """Examples (`task_id`, `prompt`, `completion`) and the report of what was dropped; see `build_sft_dataset`."""
    if final_code not in FINAL_CODE_SOURCES:
        raise WarmStartError(f"final_code must be one of {FINAL_CODE_SOURCES}, got {final_code!r}")
    if stage_format and (chains is None or len(chains) != len(rows)):
        raise WarmStartError(f"stage_format needs one teacher chain per row: {len(rows)} rows, "
                             f"{'no' if chains is None else len(chains)} chains")
    templates = load_templates(templates) if isinstance(templates, str) else templates
    report = DataReport(rows=len(rows))
    candidates: list[tuple[int, str, Mapping[str, Any]]] = []  # (row index, target code, row)
    outputs: dict[int, list[str]] = {}
    for index, row in enumerate(rows):
        task_id = str(row.get("task_id", index))
        fields = _fields(row)
        if fields is None:
            report.drop("invalid_row", task_id, "needs an identifier entry_point and a reference_solution")
            continue
        code = row["reference_solution"]
        if stage_format:
            assert chains is not None
            chain_id = getattr(chains[index], "task_id", task_id)
            if str(chain_id) != task_id:
                raise WarmStartError(f"chain {index} belongs to task {chain_id!r}, row {index} is {task_id!r}")
            stages = _stage_outputs(chains[index], row, fields["entry_point"], final_code, report, task_id)
            if stages is None:
                continue
            outputs[index], code = stages
        candidates.append((index, code, row))
    kept = _verify(candidates, sandbox, report) if keep_only_passing else {i for i, _, _ in candidates}

    examples = []
    for index, code, row in candidates:
        if index not in kept:
            continue
        task_id = str(row.get("task_id", index))
        fields = _fields(row)
        assert fields is not None
        if stage_format:
            messages = generator_messages(templates, **fields, outputs=[*outputs[index], format_code(code)])
            prompt, completion = messages[:2], messages[2:]
        else:
            prompt = direct_messages(templates, **fields)
            completion = [{"role": "assistant", "content": format_code(code)}]
        if tokenizer is not None and max_length is not None:
            length = len(render_ids(tokenizer, prompt + completion, add_generation_prompt=False))
            if length > max_length:
                report.drop("too_long", task_id, f"{length} tokens > max_length {max_length}")
                continue
        examples.append({"task_id": task_id, "prompt": prompt, "completion": completion})
    report.kept = len(examples)
    return examples, report


def build_sft_dataset(
    rows: Sequence[Mapping[str, Any]],
    templates: TemplateSet | str = "default",
    tokenizer: Any | None = None,
    stage_format: bool = False,
    chains: Sequence[Any] | None = None,
    *,
    final_code: str = "reference",
    keep_only_passing: bool = True,
    max_length: int | None = None,
    sandbox: Any | None = None,
) -> Dataset:
    """A prompt-completion conversational dataset for TRL's `SFTTrainer`, one example per usable row.

    `rows` follow datasets_build/SCHEMA.md. With `stage_format`, `chains[i]` (a `pipeline.chain.Chain`
    of row i, e.g. from `teacher_chains`) supplies stages 1-4; stage 5 is the row's reference
    (`final_code='reference'`) or the teacher's own code (`'teacher'`). With `keep_only_passing` every
    target's code runs against the row's tests in `sandbox` (one is started when None) and failures are
    dropped. `tokenizer` + `max_length` drop examples that would not fit. Raises `WarmStartError` when
    nothing is left, with the count per reason.
    """
    examples, report = sft_examples(rows, templates, tokenizer, stage_format=stage_format, chains=chains,
                                    final_code=final_code, keep_only_passing=keep_only_passing,
                                    max_length=max_length, sandbox=sandbox)
    logger.info("warm start data: %s", report.summary())
    if not examples:
        raise WarmStartError(f"no SFT example left to train on: {report.summary()}")
    return Dataset.from_list(examples)


def assistant_only_tokens(tokenizer: Any, prompt: Sequence[Mapping[str, str]],
                          completion: Sequence[Mapping[str, str]]) -> dict[str, list[int]]:
    """`input_ids` of the whole conversation and `labels` that keep only the assistant turns.

    Each message is tokenized as the difference between the chat template's text with and without it,
    so an assistant turn covers its content and the template's closing (ChatML: `<|im_end|>\\n`), and the
    generation prompt of the next assistant turn (`<|im_start|>assistant\\n`) stays context. Raises
    `WarmStartError` for templates that re-render earlier turns or where tokens merge across turns
    (the rollout cannot use such templates either).
    """
    messages = [dict(m) for m in prompt]
    turns = [dict(m) for m in completion]
    if not turns:
        raise WarmStartError("an example needs a non-empty completion")
    text = render_text(tokenizer, messages, add_generation_prompt=turns[0]["role"] == "assistant")
    input_ids = encode(tokenizer, text)
    labels = [IGNORE_INDEX] * len(input_ids)
    for position, turn in enumerate(turns):
        messages.append(turn)
        next_is_assistant = position + 1 < len(turns) and turns[position + 1]["role"] == "assistant"
        longer = render_text(tokenizer, messages, add_generation_prompt=next_is_assistant)
        if not longer.startswith(text):
            raise WarmStartError("the chat template re-renders earlier turns when one is added; per-turn "
                                 "labels are impossible with it (use an append-only template such as ChatML)")
        segment = encode(tokenizer, longer[len(text):])
        input_ids += segment
        labels += segment if turn["role"] == "assistant" else [IGNORE_INDEX] * len(segment)
        text = longer
    if encode(tokenizer, text) != input_ids:
        raise WarmStartError("tokens merge across turn boundaries with this tokenizer, so turn-wise labels "
                             "would not match the tokenized conversation")
    return {"input_ids": input_ids, "labels": labels}


def assistant_only_dataset(dataset: Dataset, tokenizer: Any) -> Dataset:
    """Add `input_ids` and `labels` (assistant turns only) to a prompt-completion dataset; `SFTTrainer`
    then trains on it as given, skipping its own tokenization."""
    return dataset.map(lambda example: assistant_only_tokens(tokenizer, example["prompt"], example["completion"]))
