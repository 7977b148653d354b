"""A randomly initialised, tiny Llama with SmolLM2's tokenizer, for tests and debugging only.

It exercises every code path of the real model (chat template, padding, LoRA targets, saving, loading
by path) while a forward pass costs milliseconds, so rollout and GRPO tests run in seconds. Its output
is noise: never train or evaluate with it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from pipeline.models import load_tokenizer, resolve_model_source


def build_tiny_model(
    out_dir: str | os.PathLike[str],
    *,
    tokenizer_source: str | None = None,
    hidden_size: int = 64,
    num_layers: int = 2,
    seed: int = 0,
) -> Path:
    """Save a tiny random `LlamaForCausalLM` and its tokenizer to `out_dir`; load it like any model folder.

    `tokenizer_source` is resolved like `--model` (default: the embedded SmolLM2, whose vocabulary of
    49,152 tokens makes up most of the ~3.2M parameters). The same seed gives the same weights.
    """
    tokenizer = load_tokenizer(resolve_model_source(tokenizer_source))
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):  # seeded weights without disturbing the caller's RNG
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    out = Path(out_dir)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
