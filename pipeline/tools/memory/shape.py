"""The model's shape (from a ``config.json``) and the constants of the memory estimate."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

GIB = 2**30
MODEL_CONFIG_DIR = Path(__file__).resolve().parents[2] / "models" / "model_configs"
LIMITS_GIB = (24, 32)  # RTX 4090, RTX 5090
CUDA_CONTEXT_GIB = 0.5  # assumption: CUDA context + cuBLAS workspaces, not seen by torch's allocator
# TRL 1.16's fused LM head (trl/kernels/chunked_logprob.py): tiles of TOKEN_CHUNK_SIZE tokens x
# _CHUNKED_LOGPROB_CHUNK_SIZE vocabulary entries (trl/trainer/utils.py).
LM_HEAD_TOKEN_TILE = 4096
LM_HEAD_VOCAB_TILE = 32768
# bitsandbytes NF4 with blocksize 64: 4 bits per weight plus one absmax per block; with double quantisation
# (use_bnb_nested_quant) the absmax is one byte, plus one fp32 per 256 absmax values (the second level).
NF4_BLOCK = 64
NESTED_BLOCK = 256
ATTENTION_MLP = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
SUPPORTED_MODEL_TYPES = ("llama", "mistral", "qwen2", "qwen3")
# MBPP's longest problem statement plus signature is 61 tokens (SmolLM2's tokenizer, all 974 tasks of the
# original release): the training problems' prompts are short. Override with --problem_tokens.
DEFAULT_PROBLEM_TOKENS = 64


class MemoryEstimateError(ValueError):
    """A recipe or model config the estimator cannot read; the message says what to change."""


# ----------------------------------------------------------------------------- the model's shape


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs from a decoder-only model's ``config.json`` (Llama-style: RMSNorm, rotary
    attention with grouped KV heads, SwiGLU MLP)."""

    name: str
    model_type: str
    hidden_size: int
    intermediate_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    vocab_size: int
    tied_embeddings: bool
    qkv_bias: bool = False
    o_bias: bool = False
    mlp_bias: bool = False
    qk_norm: bool = False
    source: str = ""

    @classmethod
    def from_config(cls, config: dict[str, Any], source: str = "") -> "ModelShape":
        model_type = str(config.get("model_type", ""))
        if model_type not in SUPPORTED_MODEL_TYPES:
            raise MemoryEstimateError(f"{source or 'config'}: model_type {model_type!r} is not a Llama-style decoder "
                                      f"this estimator knows ({', '.join(SUPPORTED_MODEL_TYPES)})")
        try:
            hidden = int(config["hidden_size"])
            heads = int(config["num_attention_heads"])
            attention_bias = bool(config.get("attention_bias", False))
            return cls(
                name=str(config.get("_name_or_path") or source),
                model_type=model_type,
                hidden_size=hidden,
                intermediate_size=int(config["intermediate_size"]),
                num_layers=int(config["num_hidden_layers"]),
                num_heads=heads,
                num_kv_heads=int(config.get("num_key_value_heads") or heads),
                head_dim=int(config.get("head_dim") or hidden // heads),
                vocab_size=int(config["vocab_size"]),
                # transformers' PretrainedConfig default is True when the key is absent
                tied_embeddings=bool(config.get("tie_word_embeddings", True)),
                qkv_bias=model_type == "qwen2" or attention_bias,  # Qwen2 always has q/k/v biases
                o_bias=attention_bias,
                mlp_bias=bool(config.get("mlp_bias", False)),
                qk_norm=model_type == "qwen3",
                source=source,
            )
        except KeyError as err:
            raise MemoryEstimateError(f"{source or 'config'}: no {err.args[0]!r}") from None

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> "ModelShape":
        path = Path(path)
        if path.is_dir():
            path = path / "config.json"
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise MemoryEstimateError(f"cannot read a model config from {path}: {err}") from err
        return cls.from_config(config, str(path))

    # --------------------------------------------------------------- parameter counts

    @property
    def q_width(self) -> int:
        return self.num_heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.num_kv_heads * self.head_dim

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in_features, out_features) of each linear layer of one decoder layer."""
        h, q, kv, i = self.hidden_size, self.q_width, self.kv_width, self.intermediate_size
        return {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h),
                "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h)}

    def layer_linear_weights(self) -> int:
        return sum(a * b for a, b in self.linear_shapes().values())

    def layer_small_params(self) -> int:
        """Biases and norm weights of one layer: never quantised."""
        h = self.hidden_size
        n = 2 * h  # input and post-attention RMSNorm
        if self.qkv_bias:
            n += self.q_width + 2 * self.kv_width
        if self.o_bias:
            n += h
        if self.mlp_bias:
            n += 2 * self.intermediate_size + h
        if self.qk_norm:
            n += 2 * self.head_dim
        return n

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        return 0 if self.tied_embeddings else self.vocab_size * self.hidden_size

    @property
    def parameters(self) -> int:
        """All parameters, as ``sum(p.numel() for p in model.parameters())`` counts them (tied weights once)."""
        return (self.num_layers * (self.layer_linear_weights() + self.layer_small_params())
                + self.embedding_params + self.lm_head_params + self.hidden_size)

    @property
    def non_embedding_parameters(self) -> int:
        return self.parameters - self.embedding_params - self.lm_head_params

    def lora_parameters(self, rank: int, targets: Sequence[str]) -> int:
        """Parameters of one LoRA adapter of rank ``rank`` on ``targets``: r x (in + out) per adapted layer."""
        shapes = self.linear_shapes()
        unknown = [t for t in targets if t not in shapes]
        if unknown:
            raise MemoryEstimateError(f"LoRA targets {unknown} are not linear layers of {self.model_type} "
                                      f"({', '.join(shapes)})")
        return self.num_layers * sum(rank * (shapes[t][0] + shapes[t][1]) for t in targets)


def find_model_config(name_or_path: str | None) -> Path:
    """The ``config.json`` of a recipe's model: the embedded model's, a local folder's, or a stored public one."""
    if name_or_path is None or name_or_path == "embedded":
        from pipeline.models.embedded import embedded_model_dir

        return embedded_model_dir() / "config.json"
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        return path / "config.json"
    if path.is_file():
        return path
    for stored in sorted(MODEL_CONFIG_DIR.glob("*.json")):
        if json.loads(stored.read_text()).get("_name_or_path", "").lower() == name_or_path.lower():
            return stored
    known = [json.loads(p.read_text()).get("_name_or_path") for p in sorted(MODEL_CONFIG_DIR.glob("*.json"))]
    raise MemoryEstimateError(f"no config.json for {name_or_path!r}: not a local folder, and not one of the stored "
                              f"public configs {known}; pass --model_config path/to/config.json")
