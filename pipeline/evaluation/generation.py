"""Batched text generation for evaluation, behind one small interface with two backends.

`HfBackend` runs transformers' `generate` on the peft model that holds both role adapters: one call per
batch of prompts, left-padded, prompts sorted by length so a batch wastes little on padding. With
`use_adapters=False` it runs the same model with every adapter disabled, i.e. the base model, which
costs no second copy of the weights (peft's `disable_adapter()`). `EngineBackend` does the same on a
generation engine of `pipeline.engines` (the vLLM server, each role a LoRA adapter served by name).
"""

from __future__ import annotations

import contextlib
import copy
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm
from transformers import StoppingCriteria, StoppingCriteriaList

from prompts.roles import Role
from pipeline.engines.base import Sampling
from pipeline.models.adapters import acting_as
from pipeline.models import decoding_attention
from prompts.chat import Message
from prompts.parsing import defines_function, fenced_blocks


@dataclass
class Generation:
    """One generated answer.

    seconds: its share of its batch's wall time (batch time / sequences in the batch), so that summing
    over samples gives the real generation time. logprob: mean log-probability of its tokens under the
    model's raw distribution (before temperature and top-p), or None when not requested.
    """

    text: str
    num_tokens: int
    seconds: float
    logprob: float | None = None


class Backend(Protocol):
    """What evaluation needs from a model: answers to chat conversations, acting as one role."""

    def generate(self, conversations: Sequence[list[Message]], role: Role, sampling: Sampling, *,
                 with_logprobs: bool = False, code_for: Sequence[str] | None = None,
                 reply_start: str = "") -> list[Generation]:
        """One answer per conversation, in order. `code_for` (an entry point per conversation) lets a backend
        end an answer once it holds a closed code block defining that function. `reply_start` is prefilled
        into every answer (a template set's reply start): the answer's text begins with it, its tokens are
        context, not counted in `num_tokens`."""


def render_prompts(tokenizer: Any, conversations: Sequence[list[Message]]) -> list[str]:
    return [tokenizer.apply_chat_template(list(c), tokenize=False, add_generation_prompt=True) for c in conversations]


def _stop_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = set(configured if isinstance(configured, (list, tuple)) else [configured])
    ids.add(tokenizer.eos_token_id)
    return {i for i in ids if i is not None}


class CodeBlockDone(StoppingCriteria):
    """Ends a row once its answer holds a closed fenced block that defines its entry point.

    The code-only prompt asks for exactly one such block and nothing after it; small models go on with
    usage examples and explanations that extraction ignores anyway, often longer than the code itself.
    """

    def __init__(self, tokenizer: Any, prompt_width: int, entry_points: Sequence[str], reply_start: str = "") -> None:
        self.tokenizer = tokenizer
        self.prompt_width = prompt_width
        self.reply_start = reply_start
        self.entry_points = list(entry_points)
        self.done = [False] * len(self.entry_points)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        for row, entry_point in enumerate(self.entry_points):
            # A block can only have closed on a token that holds a backtick: decode the rest only then.
            if self.done[row] or "`" not in self.tokenizer.decode(input_ids[row, -1:]):
                continue
            text = self.reply_start + self.tokenizer.decode(input_ids[row, self.prompt_width:], skip_special_tokens=True)
            self.done[row] = any(b.closed and defines_function(b.code, entry_point) for b in fenced_blocks(text))
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)


def _answer_length(tokens: list[int], stop: set[int]) -> int:
    """Generated tokens up to and including the first stop token (the rest is padding)."""
    for position, token in enumerate(tokens):
        if token in stop:
            return position + 1
    return len(tokens)


class HfBackend:
    """transformers generation on a peft model holding the `generator` and `discriminator` adapters."""

    def __init__(self, model: Any, tokenizer: Any, *, use_adapters: bool = True) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.use_adapters = use_adapters
        # A row that has finished is padded: the pad token ends an answer too.
        self.stop = _stop_ids(model, tokenizer) | {tokenizer.pad_token_id}

    def with_adapters(self, enabled: bool) -> HfBackend:
        """The same model, with the role adapters on or off (off: the base model)."""
        view = copy.copy(self)
        view.use_adapters = enabled
        return view

    @contextlib.contextmanager
    def _acting(self, role: Role) -> Iterator[None]:
        if self.use_adapters:
            with acting_as(self.model, role):
                yield
        else:
            with self.model.disable_adapter(), torch.no_grad():
                yield

    def generate(self, conversations: Sequence[list[Message]], role: Role, sampling: Sampling, *,
                 with_logprobs: bool = False, code_for: Sequence[str] | None = None,
                 reply_start: str = "") -> list[Generation]:
        prompts = [p + reply_start for p in render_prompts(self.tokenizer, conversations)]
        lengths = [len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
        order = sorted(range(len(prompts)), key=lengths.__getitem__)
        results: list[Generation | None] = [None] * len(prompts)
        bar = tqdm(total=len(prompts), desc=f"{role} answers", unit="answer", leave=False, disable=len(prompts) < 2)
        with self._acting(role), bar:
            for start in range(0, len(order), sampling.batch_size):
                batch = order[start:start + sampling.batch_size]
                entry_points = [code_for[i] for i in batch] if code_for is not None else None
                for index, generation in zip(batch, self._generate_batch([prompts[i] for i in batch], sampling,
                                                                        with_logprobs, entry_points, reply_start)):
                    results[index] = generation
                bar.update(len(batch))
        return [r for r in results if r is not None]

    def _generate_batch(self, prompts: list[str], sampling: Sampling, with_logprobs: bool,
                        entry_points: list[str] | None, reply_start: str) -> list[Generation]:
        device = next(self.model.parameters()).device
        encoded = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        width = encoded["input_ids"].shape[1]
        decoding: dict[str, Any] = {"do_sample": False} if sampling.greedy else {
            "do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": 0}
        if entry_points is not None:
            decoding["stopping_criteria"] = StoppingCriteriaList([CodeBlockDone(self.tokenizer, width, entry_points,
                                                                                reply_start)])
        started = time.perf_counter()
        with decoding_attention(self.model):
            out = self.model.generate(**encoded, max_new_tokens=sampling.max_new_tokens,
                                      pad_token_id=self.tokenizer.pad_token_id, return_dict_in_generate=True,
                                      output_logits=with_logprobs, **decoding)
        seconds = (time.perf_counter() - started) / len(prompts)
        new_tokens = out.sequences[:, width:].tolist()
        token_logprobs = None
        if with_logprobs:
            # Raw logits renormalised: the likelihood of the sample under the model, not under the sampler.
            token_logprobs = self.model.compute_transition_scores(out.sequences, out.logits, normalize_logits=True)
        generations = []
        for row, tokens in enumerate(new_tokens):
            length = _answer_length(tokens, self.stop)
            logprob = None
            if token_logprobs is not None and length:
                logprob = float(token_logprobs[row, :length].float().mean())
            text = reply_start + self.tokenizer.decode(tokens[:length], skip_special_tokens=True)
            generations.append(Generation(text, length, seconds, logprob))
        return generations


class EngineBackend:
    """Direct-mode generation on a generation engine (``pipeline.engines``; used for vLLM): each conversation
    is rendered to token ids with the trainer's tokenizer and answered in one turn. ``code_for`` is not used:
    the server decodes whole answers (extraction reads the first block that defines the function either way).
    ``logprob`` is the mean of the sampler's token logprobs: greedy, those of the raw distribution (as the
    transformers backend's); sampling, those after temperature and top-p (the server's ``--logprobs-mode``)."""

    def __init__(self, engine: Any, tokenizer: Any) -> None:
        self.engine, self.tokenizer = engine, tokenizer

    def with_adapters(self, enabled: bool) -> EngineBackend:
        return EngineBackend(self.engine.with_adapters(enabled), self.tokenizer)

    def generate(self, conversations: Sequence[list[Message]], role: Role, sampling: Sampling, *,
                 with_logprobs: bool = False, code_for: Sequence[str] | None = None,
                 reply_start: str = "") -> list[Generation]:
        from prompts.chat import encode, render_ids

        start_ids = encode(self.tokenizer, reply_start) if reply_start else []
        prompts = [render_ids(self.tokenizer, list(c)) + start_ids for c in conversations]
        decoding = Sampling(temperature=sampling.temperature, top_p=1.0 if sampling.greedy else sampling.top_p, top_k=0)
        generations: list[Generation] = []
        for start in range(0, len(prompts), sampling.batch_size):
            batch = self.engine.conversations(prompts[start:start + sampling.batch_size])
            started = time.perf_counter()
            rows = batch.generate(sampling.max_new_tokens, decoding, role)
            seconds = (time.perf_counter() - started) / len(rows)
            for row, tokens in enumerate(rows):
                values = batch.logprobs[row] if with_logprobs and batch.logprobs is not None else None
                logprob = sum(values) / len(values) if values else None
                generations.append(Generation(reply_start + self.tokenizer.decode(tokens, skip_special_tokens=True),
                                              len(tokens), seconds, logprob))
        return generations
