"""A batch of chat conversations that advance together through one model, keeping their KV cache.

Multi-stage generation re-reads a growing conversation at every stage. Re-encoding it each time
costs as much as decoding (a 1000-token prefill took 10-15 s on 2 cores), so each conversation
keeps its cache and only the new turn is fed. Rows differ in length, so padding ends up *inside*
the batch, not only on the left:

    row 0: [pad pad | prompt ........ | stage-1 output <eos> pad pad | pad | next turn ...]
    row 1: [prompt ............ | stage-1 output ............. <eos> | pad pad | next turn ...]

The attention mask marks every pad 0, and ``generate`` derives position ids from the mask's
cumulative sum, so each row sees exactly its own tokens at contiguous positions, as if it had been
encoded alone. ``tests/test_rollout.py`` checks that equivalence against plain generation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from pipeline.models import decoding_attention


@dataclass
class Sampling:
    """How to pick tokens: greedy when ``temperature`` is 0."""

    temperature: float = 0.7
    top_p: float = 1.0
    top_k: int = 0

    def generate_kwargs(self) -> dict[str, Any]:
        if self.temperature <= 0:
            return {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        return {"do_sample": True, "temperature": self.temperature, "top_p": self.top_p,
                "top_k": self.top_k or None}


class ConversationBatch:
    """B token sequences (one per conversation), their attention mask and their KV cache."""

    def __init__(self, model: Any, tokenizer: Any, prompts: list[list[int]]):
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

    @torch.no_grad()
    def generate(self, max_new_tokens: int, sampling: Sampling) -> list[list[int]]:
        """Generate one turn for every row; return each row's new ids up to and including its EOS."""
        start = self.ids.shape[1]
        with decoding_attention(self.model):
            out = self.model.generate(
                input_ids=self.ids, attention_mask=self.mask, cache=self.cache,
                max_new_tokens=max_new_tokens, pad_token_id=self.pad_id, eos_token_id=sorted(self.eos_ids),
                return_dict_in_generate=True, use_cache=True, **sampling.generate_kwargs(),
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
