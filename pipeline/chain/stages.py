"""The five-stage chain: the generator reasons stage by stage, the discriminator tests each stage.

For a batch of problems, every stage is one batched call to the generation engine per role
(``pipeline.engines``: transformers or vLLM): the generator writes stage k for all problems, then the
discriminator writes stage k's tests for all problems. Each role keeps its own conversation per problem
(with its KV cache, or as a growing prompt the vLLM server's prefix cache reuses); only new turns are fed.

Everything a trainer or an evaluator needs comes back per problem in a ``Chain``: the texts, the
exact token ids of both conversations split into generated and inserted parts (so that a rollout
can assemble completions and masks), the parsed final code and tests, and timings.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Sequence

from prompts import chat
from prompts.parsing import extract_code
from prompts.stages import DEFAULT_GENERATOR_TOKENS, NUM_STAGES, stage_budgets
from prompts.templates import TemplateSet, load_templates
from prompts.testcases import extract_tests

from pipeline.engines.base import Conversations, GenerationEngine, Sampling
from pipeline.engines.transformers_engine import TransformersEngine
from pipeline.models.policies import Policies


@dataclass
class ChainConfig:
    """Token budgets and sampling for the chain.

    Attributes:
        generator_tokens: max new tokens per generator stage (5 values, or 1 used for all).
        discriminator_tokens: max new tokens per discriminator stage (5 values, or 1 for all).
        temperature, top_p, top_k: sampling (temperature 0 = greedy).
        templates: template set name or folder (see prompts/templates/).
    """

    generator_tokens: Sequence[int] = DEFAULT_GENERATOR_TOKENS
    discriminator_tokens: Sequence[int] = (128,)
    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0
    templates: str = "default"

    def __post_init__(self) -> None:
        for name in ("generator_tokens", "discriminator_tokens"):
            setattr(self, name, stage_budgets(name, getattr(self, name)))
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError("sampling needs temperature >= 0, 0 < top_p <= 1 and top_k >= 0")

    @property
    def sampling(self) -> Sampling:
        return Sampling(temperature=self.temperature, top_p=self.top_p, top_k=self.top_k)


@dataclass
class Turns:
    """One role's conversation as token ids: ``prompt``, then for each stage the ``generated`` ids,
    with ``inserted[k]`` (the end of turn k and the user turn of stage k+1) between them; ``logprobs[k]``
    holds the sampler's log-probability of each id of ``generated[k]`` when the engine reports them."""

    prompt: list[int] = field(default_factory=list)
    generated: list[list[int]] = field(default_factory=list)
    inserted: list[list[int]] = field(default_factory=list)
    logprobs: list[list[float]] | None = None


@dataclass
class Chain:
    """One problem's pass through the stages."""

    task_id: str
    entry_point: str
    stage_texts: list[str] = field(default_factory=list)
    test_texts: list[str] = field(default_factory=list)
    tests_by_stage: list[list[str]] = field(default_factory=list)
    rejections: Counter = field(default_factory=Counter)
    final_code: str = ""
    generator: Turns = field(default_factory=Turns)
    discriminator: Turns = field(default_factory=Turns)
    stage_seconds: list[float] = field(default_factory=list)

    @property
    def stage_tokens(self) -> list[int]:
        return [len(ids) for ids in self.generator.generated]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (``from_dict`` reads it back equal)."""
        return {**asdict(self), "rejections": dict(self.rejections)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Chain:
        return cls(**{**data, "rejections": Counter(data["rejections"]), "generator": Turns(**data["generator"]),
                      "discriminator": Turns(**data["discriminator"])})


def _problem_fields(problem: dict[str, Any]) -> dict[str, str]:
    entry_point = problem.get("entry_point")
    if not isinstance(entry_point, str) or not entry_point.isidentifier():
        raise ValueError(f"problem {problem.get('task_id')!r} has no valid entry_point: {entry_point!r}")
    return {"problem": str(problem.get("problem") or problem.get("prompt") or ""),
            "entry_point": entry_point, "signature": str(problem.get("signature") or "")}


class PrefixUnstableError(RuntimeError):
    """The chat template re-renders earlier turns; token-exact rollouts are not possible with it."""


class _Role:
    """A role's conversations for the batch: messages (for rendering) and the cached token batch.

    A reply start (``reply_starts.json`` of the template set) is inserted context: its ids end the prompt or
    the inserted turn before the reply, never the generated ids, and the reply's text begins with it."""

    def __init__(self, engine: GenerationEngine, tokenizer: Any, adapter: str):
        self.engine, self.tokenizer, self.adapter = engine, tokenizer, adapter
        self.histories: list[list[dict[str, str]]] = []
        self.batch: Conversations | None = None
        self.last: list[list[int]] = []
        self.last_logprobs: list[list[float]] | None = None
        self.reply_start = ""

    def start(self, histories: list[list[dict[str, str]]], reply_start: str) -> list[list[int]]:
        self.histories, self.reply_start = histories, reply_start
        start_ids = chat.encode(self.tokenizer, reply_start) if reply_start else []
        prompts = [chat.render_ids(self.tokenizer, h) + start_ids for h in histories]
        self.batch = self.engine.conversations(prompts)
        return prompts

    def add_turn(self, answers: list[str], new_turns: list[dict[str, str]], reply_start: str) -> list[list[int]]:
        """Close the last answers (whole replies, their start included), append the next user turns and the next
        reply's start; return what was inserted per row."""
        start_ids = chat.encode(self.tokenizer, reply_start) if reply_start else []
        inserted = []
        for i, (answer, turn) in enumerate(zip(answers, new_turns)):
            closing = chat.close_turn_ids(self.tokenizer, self.last[i])
            history = self.histories[i] + [{"role": "assistant", "content": answer}]
            nxt = chat.next_turn_ids(self.tokenizer, history, [turn])
            if not nxt.incremental:
                raise PrefixUnstableError(
                    "this model's chat template re-renders earlier turns when a turn is added, so token-exact "
                    "multi-stage rollouts are impossible with it; use a template that only appends (ChatML, "
                    "Llama 3, Qwen 2.5 do)")
            inserted.append(closing + nxt.ids + start_ids)
            self.histories[i] = history + [turn]
        assert self.batch is not None
        self.batch.append(inserted)
        self.reply_start = reply_start
        return inserted

    def generate(self, max_new_tokens: int, sampling: Sampling) -> list[str]:
        """The replies' texts: the reply start, then what was generated."""
        assert self.batch is not None
        self.last = self.batch.generate(max_new_tokens, sampling, self.adapter)
        self.last_logprobs = self.batch.logprobs
        return [self.reply_start + text for text in self.tokenizer.batch_decode(self.last, skip_special_tokens=True)]


def generate_chains(policies: Policies, problems: Sequence[dict[str, Any]], config: ChainConfig, *,
                    with_tests: bool = True, templates: TemplateSet | None = None,
                    adapters: dict[str, str] | None = None, engine: GenerationEngine | None = None) -> list[Chain]:
    """Run the five stages for every problem in one batch; with_tests adds the discriminator.

    ``policies`` holds the model with both role adapters and its tokenizer (``pipeline.models.policies.Policies``);
    ``adapters`` names the adapter that plays each role (default: the role's own name); ``engine`` generates
    (default: transformers on ``policies.model``).
    """
    chains: list[Chain] = []
    for chains in iter_chain_stages(policies, problems, config, with_tests=with_tests, templates=templates,
                                    adapters=adapters, engine=engine):
        pass
    return chains


def iter_chain_stages(policies: Policies, problems: Sequence[dict[str, Any]], config: ChainConfig, *,
                      with_tests: bool = True, templates: TemplateSet | None = None,
                      adapters: dict[str, str] | None = None,
                      engine: GenerationEngine | None = None) -> Iterator[list[Chain]]:
    """Like ``generate_chains`` but yields the chains after every stage (for progress reporting)."""
    engine = engine or TransformersEngine(policies.model, policies.tokenizer)
    templates = templates or load_templates(config.templates)
    adapters = adapters or {"generator": "generator", "discriminator": "discriminator"}
    fields = [_problem_fields(p) for p in problems]
    chains = [Chain(task_id=str(p.get("task_id", i)), entry_point=f["entry_point"]) for i, (p, f) in
              enumerate(zip(problems, fields))]
    gen = _Role(engine, policies.tokenizer, adapters["generator"])
    disc = _Role(engine, policies.tokenizer, adapters["discriminator"])
    prompts = gen.start([chat.generator_messages(templates, **f) for f in fields], templates.generator_start(1))
    for chain, prompt in zip(chains, prompts):
        chain.generator.prompt = prompt
    for stage in range(1, NUM_STAGES + 1):
        started = time.perf_counter()
        if stage > 1:
            turns = [chat.generator_turn(templates, stage, **f) for f in fields]
            for chain, ids in zip(chains, gen.add_turn([c.stage_texts[-1] for c in chains], turns,
                                                       templates.generator_start(stage))):
                chain.generator.inserted.append(ids)
        texts = gen.generate(config.generator_tokens[stage - 1], config.sampling)
        seconds = time.perf_counter() - started
        for row, (chain, text, ids) in enumerate(zip(chains, texts, gen.last)):
            chain.stage_texts.append(text)
            chain.generator.generated.append(ids)
            _keep_logprobs(chain.generator, gen.last_logprobs, row)
            chain.stage_seconds.append(seconds)
        if with_tests:
            _discriminator_stage(disc, chains, fields, templates, stage, texts, config)
        yield chains
    for chain, f in zip(chains, fields):
        chain.final_code = extract_code(chain.stage_texts[-1], f["entry_point"]).code


def _discriminator_stage(disc: _Role, chains: list[Chain], fields: list[dict[str, str]], templates: TemplateSet,
                         stage: int, stage_outputs: list[str], config: ChainConfig) -> None:
    turns = [chat.discriminator_turn(templates, stage, out, **f) for out, f in zip(stage_outputs, fields)]
    if stage == 1:
        system = chat.discriminator_messages(templates, stage_outputs=[stage_outputs[0]], **fields[0])[0]
        prompts = disc.start([[system, turn] for turn in turns], templates.discriminator_start(1))
        for chain, prompt in zip(chains, prompts):
            chain.discriminator.prompt = prompt
    else:
        for chain, ids in zip(chains, disc.add_turn([c.test_texts[-1] for c in chains], turns,
                                                    templates.discriminator_start(stage))):
            chain.discriminator.inserted.append(ids)
    texts = disc.generate(config.discriminator_tokens[stage - 1], config.sampling)
    for row, (chain, text, ids) in enumerate(zip(chains, texts, disc.last)):
        chain.discriminator.generated.append(ids)
        _keep_logprobs(chain.discriminator, disc.last_logprobs, row)
        accumulate_tests(chain, text)


def _keep_logprobs(turns: Turns, logprobs: list[list[float]] | None, row: int) -> None:
    """Record the sampler's logprobs of the turn just generated (engines that report none leave None)."""
    if logprobs is None:
        turns.logprobs = None
        return
    if turns.logprobs is None:
        turns.logprobs = []
    turns.logprobs.append(list(logprobs[row]))


def accumulate_tests(chain: Chain, text: str) -> None:
    """Add one stage's discriminator answer: its new tests join the suite; repeats of earlier
    stages' tests (same AST) are dropped here, before any reward sees them, and counted under
    ``repeat`` with the other rejections (``disc_rejections``: the rewards count them as invalid
    tests written, and log them as ``invalid_reasons/repeat``)."""
    known = [t for stage_tests in chain.tests_by_stage for t in stage_tests]
    parsed = extract_tests(text, chain.entry_point, known=known)
    chain.test_texts.append(text)
    chain.tests_by_stage.append(list(parsed.tests))
    chain.rejections.update(parsed.rejected)
