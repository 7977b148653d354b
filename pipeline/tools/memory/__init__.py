"""Peak memory of a training recipe, estimated from the model's shape, part by part.

    python -m pipeline.tools.memory --config configs/qwen2.5-coder-1.5b-4090.yaml
    python -m pipeline.tools.memory --config configs/smoke.yaml --model_config path/to/config.json
    python scripts/measure_memory.py --config configs/smoke.yaml --tensors --max_steps 2   # CPU: run it, compare

The recipe is read with ``train.py``'s dataclasses (``pipeline.training.config``; any further ``--field value``
overrides it), the model's shape from a ``config.json``: ``--model_config``, else the recipe's model (a local folder's
own ``config.json``, the embedded model's, or for a Hub id one of the public configs kept in
``pipeline/models/model_configs/``). docs/training.md ("Memory") explains every part, the formulas and their sources,
and the validation on CPU.

What is counted, in the order the run uses it:

* persistent: the frozen base (4-bit NF4 linear layers, or 16/32-bit), the LoRA weights of both role adapters,
  AdamW's two moments for both adapters (each adapter has them from its first step on), and the CUDA context
  (an assumption);
* generation (the five-stage chain, no gradient): the KV caches of both roles' conversations, alive together
  until the chain ends, plus the largest prefill's working set;
* training (one micro-batch of ``per_device_train_batch_size`` sequences, forward and backward): the active
  adapter's gradients, the activations saved for backward (with or without gradient checkpointing), and the
  working set of TRL's chunked LM head (TRL 1.16 never materialises batch x sequence x vocabulary logits).

The peak is persistent + max(generation, training): the chain's caches are freed before the loss is computed.
"""

from pipeline.tools.memory.estimate import (
    Estimate, Part, estimate, estimate_recipe, layer_activation_bytes, layer_backward_bytes, lm_head_bytes,
    prefill_bytes, recipe_tokens, table, weight_bytes, with_observed_widths,
)  # fmt: skip
from pipeline.tools.memory.live import LiveTensorBytes
from pipeline.tools.memory.recipe import Layout, Precision, Recipe, chain_layout, load_tokenizer_for
from pipeline.tools.memory.shape import (
    ATTENTION_MLP, CUDA_CONTEXT_GIB, DEFAULT_PROBLEM_TOKENS, GIB, LIMITS_GIB, MODEL_CONFIG_DIR, MemoryEstimateError,
    ModelShape, find_model_config,
)  # fmt: skip
from pipeline.tools.memory.cli import main

__all__ = [
    "ATTENTION_MLP", "CUDA_CONTEXT_GIB", "DEFAULT_PROBLEM_TOKENS", "GIB", "LIMITS_GIB", "MODEL_CONFIG_DIR", "Estimate",
    "Layout", "LiveTensorBytes", "MemoryEstimateError", "ModelShape", "Part", "Precision", "Recipe", "chain_layout",
    "estimate", "estimate_recipe", "find_model_config", "layer_activation_bytes", "layer_backward_bytes",
    "lm_head_bytes", "load_tokenizer_for", "main", "prefill_bytes", "recipe_tokens", "table", "weight_bytes",
    "with_observed_widths",
]
