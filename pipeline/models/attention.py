"""The attention the model decodes with on the CPU: grouped-query attention computed per key-value head.

Models such as SmolLM2 and Qwen2.5 share each key-value head among several query heads (SmolLM2-135M: 9 query heads,
3 key-value heads). transformers' eager attention first copies every key and value of the cache once per query head
of its group (``repeat_kv``) and PyTorch's CPU SDPA does the same or worse, so each decoding step rewrites the whole
KV cache several times over: with 20 chains of 1,500 tokens that was most of the step. ``grouped_attention`` instead
multiplies the queries of a group, stacked, against their shared keys and values, the copy never made. Measured on
one core of an idle 2-core Xeon (AMX) at those shapes (`python -m pipeline.tools.bench_attention`), bf16: 62.6 ms a
layer for eager and 63.9 ms for SDPA against 4.4 ms; 8 whole greedy chains 242.8 s against 174.0 s (README).

`decoding_attention` switches a model on the CPU to it while the chain generates, and back afterwards: training
keeps the implementation it was loaded with (SDPA: the faster one for the backward pass). GPUs keep theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

GROUPED = "duelcoder_grouped"  # the name transformers knows it by (``set_attn_implementation``)
SWITCHED_FROM = ("sdpa", "eager")  # implementations it replaces; any other (e.g. flash on a GPU) is left alone
# What `decoding_attention` switches to; `pipeline.tools.bench_attention` sets "eager" or "sdpa" for its baseline.
decoding_implementation = GROUPED


def grouped_attention(module: torch.nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                      attention_mask: torch.Tensor | None, scaling: float, dropout: float = 0.0,
                      **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """transformers' eager attention (the same mask, scaling, float32 softmax and output layout), with the query
    heads that share a key-value head stacked as rows of one product instead of repeating the keys and values.

    query: (batch, heads, q, dim); key, value: (batch, kv_heads, k, dim), query head ``h`` reading key-value head
    ``h // (heads / kv_heads)`` as ``repeat_kv`` lays them out; attention_mask: additive, (batch, 1, q, k).
    """
    batch, heads, q_len, dim = query.shape
    kv_heads, k_len = key.shape[1], key.shape[2]
    group = heads // kv_heads
    scores = torch.matmul(query.reshape(batch, kv_heads, group * q_len, dim), key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        mask = attention_mask[:, :, None]  # (batch, 1, 1, q, k) against (batch, kv_heads, group, q, k)
        scores = (scores.view(batch, kv_heads, group, q_len, k_len) + mask).view(batch, kv_heads, group * q_len, k_len)
    weights = torch.nn.functional.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = torch.nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).view(batch, heads, q_len, dim).transpose(1, 2).contiguous()
    return output, weights.view(batch, heads, q_len, k_len)


AttentionInterface.register(GROUPED, grouped_attention)
# Its mask is eager attention's (additive, causal, padding): an implementation transformers has no mask function for
# gets no mask at all, and a prefill would then attend to later tokens and to padding.
AttentionMaskInterface.register(GROUPED, eager_mask)


@contextmanager
def decoding_attention(model: torch.nn.Module) -> Iterator[None]:
    """Decode with ``grouped_attention`` while the model is on the CPU (and uses SDPA or eager attention); restore
    the model's own implementation afterwards, also when generation raises."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = getattr(base, "config", None)
    current = getattr(config, "_attn_implementation", None)
    first = next(base.parameters(), None)
    switch = (current in SWITCHED_FROM and first is not None and first.device.type == "cpu"
              and hasattr(base, "set_attn_implementation"))
    if not switch:
        yield
        return
    base.set_attn_implementation(decoding_implementation)
    try:
        yield
    finally:
        base.set_attn_implementation(current)
