"""What the chain and evaluation need from a generation engine, whichever runs the model.

A batch of conversations advances turn by turn: token ids in (a prompt per row, then what the caller inserts
between turns), token ids out (each row's new turn up to and including its end-of-turn token), plus the
sampler's log-probability of every new token. Token ids, never text, cross the interface: the trainer's
tokenisation is the one the loss is computed on, so the engine must continue exactly those ids.

Two engines implement it: ``transformers`` (``transformers_engine``: ``generate`` on the peft model, each
conversation keeping its KV cache) and ``vllm`` (``vllm_engine``: vLLM's server over HTTP, a growing prompt
per turn that its prefix cache reuses).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

ENGINES = ("transformers", "vllm")


@dataclass(frozen=True)
class Sampling:
    """How to pick tokens: greedy when ``temperature`` is 0; ``top_k`` 0 means no top-k cut. The one sampling type
    of the chain, the engines and evaluation; ``max_new_tokens`` and ``batch_size`` (sequences per generate call)
    are read by evaluation's backends, the chain passes its budgets per stage."""

    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 512
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be >= 1")
        if self.temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ValueError(f"need temperature >= 0, 0 < top_p <= 1 and top_k >= 0, got {self.temperature}, "
                             f"{self.top_p}, {self.top_k}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class Conversations(Protocol):
    """B conversations that advance together, acting as one adapter per turn."""

    logprobs: list[list[float]] | None
    """The sampler's log-probability of each token of the last turn generated, per row (None: not known)."""

    def __len__(self) -> int: ...

    def append(self, suffixes: list[list[int]]) -> None:
        """Append each row's new tokens (e.g. the end of the last turn and the next user turn)."""

    def generate(self, max_new_tokens: int, sampling: Sampling, adapter: str | None) -> list[list[int]]:
        """Generate one turn for every row as ``adapter`` (None: the base model, adapters off); return each
        row's new ids up to and including its end-of-turn token."""


class GenerationEngine(Protocol):
    """A model with its role adapters that can run batches of conversations."""

    name: str

    def conversations(self, prompts: list[list[int]]) -> Conversations:
        """A batch of conversations starting from these token-id prompts."""
