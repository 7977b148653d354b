"""The ``transformers`` engine: a batch of chat conversations that advance together through the peft model,
keeping their KV cache.

Multi-stage generation re-reads a growing conversation at every stage. Re-encoding it each time
costs as much as decoding (a 1000-token prefill took 10-15 s on 2 cores), so each conversation
keeps its cache and only the new turn is fed. Rows differ in length, so padding ends up *inside*
the batch, not only on the left:

    row 0: [pad pad | prompt ........ | stage-1 output <eos> pad pad | pad | next turn ...]
    row 1: [prompt ............ | stage-1 output ............. <eos> | pad pad | next turn ...]

The attention mask marks every pad 0, and ``generate`` derives position ids from the mask's
cumulative sum, so each row sees exactly its own tokens at contiguous positions, as if it had been
encoded alone. ``tests/test_chain.py`` checks that equivalence against plain generation.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

import torch

from pipeline.engines.base import Sampling
from pipeline.models import decoding_attention
from pipeline.models.adapters import acting_as


def generate_kwargs(sampling: Sampling) -> dict[str, Any]:
    """``generate``'s decoding arguments for ``sampling``."""
    if sampling.greedy:
        return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    return {"do_sample": True, "temperature": sampling.temperature, "top_p": sampling.top_p,
            "top_k": sampling.top_k or None}


class TransformersEngine:
    """``generate`` on the peft model that holds both role adapters (the CPU default).

    With ``use_adapters=False`` every turn runs with the adapters disabled: the base model, at no second copy
    of the weights."""

    name = "transformers"

    def __init__(self, model: Any, tokenizer: Any, *, use_adapters: bool = True) -> None:
        self.model, self.tokenizer, self.use_adapters = model, tokenizer, use_adapters

    def conversations(self, prompts: list[list[int]]) -> ConversationBatch:
        return ConversationBatch(self.model, self.tokenizer, prompts, use_adapters=self.use_adapters)


class ConversationBatch:
    """B token sequences (one per conversation), their attention mask and their KV cache."""

    def __init__(self, model: Any, tokenizer: Any, prompts: list[list[int]], *, use_adapters: bool = True):
        if not prompts or any(not p for p in prompts):
            raise ValueError("every conversation needs a non-empty prompt")
        self.model = model
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        eos = model.generation_config.eos_token_id if model.generation_config.eos_token_id is not None \
            else tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos])
        self.device = next(model.parameters()).device
        self.ids, self.mask = self._left_padded(prompts)
        self.cache: Any = None
        self.use_adapters = use_adapters
        self.logprobs: list[list[float]] | None = None  # the trainer computes its own; nothing to compare
        self.prefill_tokens = sum(len(p) for p in prompts)

    def __len__(self) -> int:
        return self.ids.shape[0]

    def _left_padded(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, row in enumerate(rows):
            if row:
                ids[i, width - len(row):] = torch.tensor(row, dtype=torch.long)
                mask[i, width - len(row):] = 1
        return ids.to(self.device), mask.to(self.device)

    def append(self, suffixes: list[list[int]]) -> None:
        """Append each row's new tokens (e.g. the end of the last turn and the next user turn)."""
        if len(suffixes) != len(self):
            raise ValueError(f"{len(suffixes)} suffixes for {len(self)} conversations")
        if not any(suffixes):
            return
        ids, mask = self._left_padded(suffixes)
        self.ids = torch.cat([self.ids, ids], dim=1)
        self.mask = torch.cat([self.mask, mask], dim=1)
        self.prefill_tokens += sum(len(s) for s in suffixes)

    @contextlib.contextmanager
    def _acting(self, adapter: str | None) -> Iterator[None]:
        adapters_off = self.model.disable_adapter() if adapter is None or not self.use_adapters \
            else contextlib.nullcontext()
        with adapters_off:
            if adapter is None:
                yield
            else:
                with acting_as(self.model, adapter):
                    yield

    @torch.no_grad()
    def generate(self, max_new_tokens: int, sampling: Sampling, adapter: str | None) -> list[list[int]]:
        """Generate one turn for every row as ``adapter``; return each row's new ids up to and including its EOS."""
        start = self.ids.shape[1]
        with self._acting(adapter), decoding_attention(self.model):
            out = self.model.generate(
                input_ids=self.ids, attention_mask=self.mask, cache=self.cache,
                max_new_tokens=max_new_tokens, pad_token_id=self.pad_id, eos_token_id=sorted(self.eos_ids),
                return_dict_in_generate=True, use_cache=True, **generate_kwargs(sampling),
            )
        new = out.sequences[:, start:]
        new_mask = torch.zeros_like(new)
        rows: list[list[int]] = []
        for i, seq in enumerate(new.tolist()):
            end = next((j + 1 for j, t in enumerate(seq) if t in self.eos_ids), len(seq))
            rows.append(seq[:end])
            new_mask[i, :end] = 1
        self.ids = out.sequences
        self.mask = torch.cat([self.mask, new_mask], dim=1)
        self.cache = out.cache
        return rows
