"""Peak memory of a training recipe, estimated from the model's shape, part by part.

    python -m pipeline.memory --config configs/qwen2.5-coder-1.5b-4090.yaml
    python -m pipeline.memory --config configs/smoke.yaml --model_config path/to/config.json
    python -m pipeline.memory --config configs/smoke.yaml --measure --max_steps 2   # CPU: run it and compare

The recipe is read the way ``train.py`` reads it (``train.parse_config``; any further ``--field value`` overrides
it), the model's shape from a ``config.json``: ``--model_config``, else the recipe's model (a local folder's
own ``config.json``, the embedded model's, or for a Hub id one of the public configs kept in
``pipeline/model_configs/``). docs/training.md ("Memory") explains every part, the formulas and their sources,
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

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

GIB = 2**30
MODEL_CONFIG_DIR = Path(__file__).resolve().parent / "model_configs"
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
        from pipeline.embedded import embedded_model_dir

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


# ----------------------------------------------------------------------------- the recipe


@dataclass
class Recipe:
    """The numbers of a recipe the estimate needs (``from_config`` reads them as train.py does)."""

    name: str = "recipe"
    model: str | None = None
    device: str = "cuda"  # where the recipe trains: "cuda" or "cpu" (use_cpu)
    load_in_4bit: bool = False
    nested_quant: bool = True
    weight_dtype: str = "bfloat16"  # unquantised base weights as loaded
    autocast: str | None = "bfloat16"  # the Trainer's mixed precision (bf16 / fp16), None in full precision
    lora_r: int = 16
    lora_targets: tuple[str, ...] = ATTENTION_MLP
    lora_dropout: float = 0.05
    adapters: int = 2  # adversarial: generator + discriminator; unified: 1
    micro_batch: int = 8  # per_device_train_batch_size: sequences per forward/backward
    generation_rows: int = 32  # sequences generated at once per process (per_device x steps_per_generation)
    gradient_checkpointing: bool = True
    beta: float = 0.0
    generator_tokens: tuple[int, ...] = (96, 128, 128, 96, 256)
    discriminator_tokens: tuple[int, ...] = (128,) * 5
    templates: str = "default"
    problem_tokens: int = DEFAULT_PROBLEM_TOKENS

    def adapter_bytes(self) -> list[int]:
        """Bytes per LoRA weight of each adapter. On a quantised base, GRPOTrainer.__init__ casts the parameters
        that require grad at that moment to bf16 (QLoRA's recommendation, trl/trainer/grpo_trainer.py): the
        generator's, the adapter train.py leaves active; the discriminator's stays fp32 (peft's dtype)."""
        if self.load_in_4bit:
            return [2, 4][: self.adapters]
        return [4] * self.adapters

    @classmethod
    def from_config(cls, path: str | os.PathLike[str], overrides: Sequence[str] = (),
                    problem_tokens: int = DEFAULT_PROBLEM_TOKENS) -> "Recipe":
        """Read ``path`` (plus ``--field value`` overrides) with train.py's own parser."""
        import yaml

        import train
        from pipeline.adapters import DEFAULT_TARGET_MODULES

        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise MemoryEstimateError(f"--config {path}: {err}") from err
        argv = ["--config", str(path), *overrides]
        cpu = _flag(raw.get("use_cpu"), False) or _override(overrides, "use_cpu") in ("true", "True", "1")
        # transformers refuses bf16 recipes on a machine without a GPU unless use_cpu is set; the estimate is for
        # the recipe's own device (its use_cpu), so parse with use_cpu forced on where there is no GPU.
        import torch

        if not torch.cuda.is_available() and _override(overrides, "use_cpu") is None:
            argv += ["--use_cpu", "true"]
        try:
            _, schedule, chain, _, training, model, _ = train.parse_config(argv)
        except train.ConfigError as err:
            raise MemoryEstimateError(f"--config {path}: {err}") from err
        device = "cpu" if cpu else "cuda"
        weight_dtype = model.dtype
        if weight_dtype == "auto":  # pipeline.models.resolve_dtype on the recipe's device (a bf16-capable GPU)
            weight_dtype = "bfloat16" if device == "cuda" else "float32"
        targets = model.lora_target_modules
        if targets is None or targets == ["all-linear"]:
            model_type = ModelShape.from_file(find_model_config(model.model_name_or_path)).model_type
            targets = DEFAULT_TARGET_MODULES.get(model_type, list(ATTENTION_MLP)) if targets is None \
                else list(ATTENTION_MLP)
        autocast = "bfloat16" if training.bf16 else "float16" if training.fp16 else None
        return cls(
            name=Path(path).name, model=model.model_name_or_path, device=device,
            load_in_4bit=model.load_in_4bit, nested_quant=model.use_bnb_nested_quant, weight_dtype=weight_dtype,
            autocast=autocast, lora_r=model.lora_r, lora_targets=tuple(targets), lora_dropout=model.lora_dropout,
            adapters=1 if schedule.mode == "unified" else 2,
            micro_batch=training.per_device_train_batch_size,
            generation_rows=training.per_device_train_batch_size * training.steps_per_generation,
            gradient_checkpointing=bool(training.gradient_checkpointing), beta=training.beta,
            generator_tokens=tuple(chain.generator_tokens), discriminator_tokens=tuple(chain.discriminator_tokens),
            templates=chain.templates, problem_tokens=problem_tokens,
        )


def _flag(value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _override(overrides: Sequence[str], name: str) -> str | None:
    args = list(overrides)
    for at, token in enumerate(args):
        if token == f"--{name}" and at + 1 < len(args):
            return args[at + 1]
        if token.startswith(f"--{name}="):
            return token.partition("=")[2]
    return None


# ----------------------------------------------------------------------------- precision of each tensor kind

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


@dataclass(frozen=True)
class Precision:
    """Bytes per element of each kind of tensor, for a recipe's precision settings (checked on CPU against the
    tensors autograd saves: tests/test_memory.py)."""

    device: str
    load_in_4bit: bool
    weight: int  # unquantised base weights as loaded
    autocast: int | None  # autocast dtype of the training forward, None without

    @classmethod
    def of(cls, recipe: Recipe) -> "Precision":
        return cls(recipe.device, recipe.load_in_4bit, DTYPE_BYTES[recipe.weight_dtype],
                   DTYPE_BYTES[recipe.autocast] if recipe.autocast else None)

    @property
    def unquantised(self) -> int:
        """Embedding, LM head, norms and biases: peft's prepare_model_for_kbit_training casts every
        non-4-bit parameter of a 4-bit model to fp32."""
        return 4 if self.load_in_4bit else self.weight

    @property
    def residual(self) -> int:
        """The residual stream: the embedding's dtype (fp32 after prepare_model_for_kbit_training)."""
        return self.unquantised

    @property
    def linear_out(self) -> int:
        """Outputs of the base linear layers in training (q/k/v, MLP intermediates): bitsandbytes' Linear4bit casts
        its output back to its input's dtype (the fp32 residual); nn.Linear runs in the autocast dtype."""
        if self.load_in_4bit:
            return self.residual
        return self.autocast or self.weight

    @property
    def attention(self) -> int:
        """What SDPA saves (q, k, v, output, the float mask): scaled_dot_product_attention is autocast-eligible."""
        return self.autocast or self.linear_out

    @property
    def generation(self) -> int:
        """KV cache and prefill activations of the rollout (no autocast; a 4-bit model computes in fp32 around
        its 4-bit matmuls, so its cache is fp32)."""
        return self.residual

    lora = 4  # peft keeps adapter weights in fp32 (autocast_adapter_dtype) even on a 16-bit base

    @property
    def dropout_mask(self) -> int:
        """LoRA dropout's saved mask: CUDA's fused native_dropout keeps a bool mask; the CPU kernel keeps the
        fp32 noise it multiplied by (peft casts the LoRA input to fp32 first)."""
        return 1 if self.device == "cuda" else 4


# ----------------------------------------------------------------------------- token lengths of the chain


@dataclass(frozen=True)
class Layout:
    """Token widths of the five-stage chain with every stage at its budget (the caps: the worst case, and what a
    batch of sampled rows reaches, since a batch is as wide as its longest row)."""

    generator_prompt: int
    generator_width: int  # whole conversation: prompt + 5 stages + inserted turns
    discriminator_prompt: int
    discriminator_width: int
    generator_turns: tuple[int, ...]  # inserted tokens before stages 2..5
    discriminator_turns: tuple[int, ...]
    tokenizer: str = ""

    def width(self, role: str) -> int:
        return self.generator_width if role == "generator" else self.discriminator_width

    def prompt(self, role: str) -> int:
        return self.generator_prompt if role == "generator" else self.discriminator_prompt

    def completion(self, role: str) -> int:
        return self.width(role) - self.prompt(role)


def _filler(tokenizer: Any, n: int) -> str:
    """A text of about ``n`` tokens."""
    if n <= 0:
        return ""
    text = "a" + " a" * (n - 1)
    got = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    return text if got == n else "a" + " a" * max(0, n - 1 - (got - n))


def chain_layout(tokenizer: Any, recipe: Recipe, problem: dict[str, str] | None = None) -> Layout:
    """Render both roles' conversations exactly as pipeline.chain does, with stage outputs of the budgets' length
    and a problem of ``recipe.problem_tokens`` tokens (or ``problem``: a row's problem, entry_point and
    signature), and count the tokens of each part."""
    from prompts import chat
    from prompts.stages import NUM_STAGES
    from prompts.templates import load_templates

    from pipeline.chain import ChainConfig

    chain = ChainConfig(generator_tokens=recipe.generator_tokens, discriminator_tokens=recipe.discriminator_tokens,
                        templates=recipe.templates)
    templates = load_templates(chain.templates)
    fields = {"problem": _filler(tokenizer, recipe.problem_tokens - 12), "entry_point": "solve",
              "signature": "def solve(xs: list[int]) -> int:"}
    if problem is not None:
        fields = {"problem": problem.get("problem", ""), "entry_point": problem["entry_point"],
                  "signature": problem.get("signature") or ""}
    gen_out = [_filler(tokenizer, n) for n in chain.generator_tokens]
    disc_out = [_filler(tokenizer, n) for n in chain.discriminator_tokens]
    closing = len(chat.close_turn_ids(tokenizer, []))  # a stage cut at its budget lacks the whole closing

    history = chat.generator_messages(templates, **fields)
    gen_prompt = len(chat.render_ids(tokenizer, history))
    gen_turns = []
    for stage in range(2, NUM_STAGES + 1):
        history = history + [{"role": "assistant", "content": gen_out[stage - 2]}]
        turn = chat.generator_turn(templates, stage, **fields)
        gen_turns.append(closing + len(chat.next_turn_ids(tokenizer, history, [turn]).ids))
        history = history + [turn]

    history = chat.discriminator_messages(templates, **fields, stage_outputs=[gen_out[0]])
    disc_prompt = len(chat.render_ids(tokenizer, history))
    disc_turns = []
    for stage in range(2, NUM_STAGES + 1):
        history = history + [{"role": "assistant", "content": disc_out[stage - 2]}]
        turn = chat.discriminator_turn(templates, stage, gen_out[stage - 1], **fields)
        disc_turns.append(closing + len(chat.next_turn_ids(tokenizer, history, [turn]).ids))
        history = history + [turn]
    return Layout(
        generator_prompt=gen_prompt, generator_width=gen_prompt + sum(chain.generator_tokens) + sum(gen_turns),
        discriminator_prompt=disc_prompt,
        discriminator_width=disc_prompt + sum(chain.discriminator_tokens) + sum(disc_turns),
        generator_turns=tuple(gen_turns), discriminator_turns=tuple(disc_turns),
        tokenizer=str(getattr(tokenizer, "name_or_path", "")),
    )


def load_tokenizer_for(recipe: Recipe) -> Any:
    """The recipe's own tokenizer when its model is local (or embedded); for a Hub id, which cannot be read here,
    the embedded model's (SmolLM2, ChatML like Qwen2.5; a 49k vocabulary splits text into somewhat more tokens
    than Qwen's 152k one, so the widths err long)."""
    from pipeline.embedded import embedded_model_dir
    from pipeline.models import load_tokenizer

    folder = Path(recipe.model).expanduser() if recipe.model not in (None, "embedded") else None
    source = str(folder) if folder is not None and folder.is_dir() else str(embedded_model_dir())
    return load_tokenizer(source)


# ----------------------------------------------------------------------------- the estimate


@dataclass
class Part:
    key: str
    label: str
    phase: str  # "persistent", "generation", "training", "scoring", or "info" (shown, not added)
    bytes: float
    how: str
    alternative: bool = False  # one of a phase's transients that come one after another: the phase takes the max

    @property
    def gib(self) -> float:
        return self.bytes / GIB


@dataclass
class Estimate:
    recipe: Recipe
    shape: ModelShape
    layout: Layout
    parts: list[Part] = field(default_factory=list)

    def phase_bytes(self, phase: str) -> float:
        """The phase's peak: everything it holds, plus the largest of its alternative transients."""
        held = sum(p.bytes for p in self.parts if p.phase == phase and not p.alternative)
        return held + max([p.bytes for p in self.parts if p.phase == phase and p.alternative], default=0.0)

    @property
    def phases(self) -> list[str]:
        """The phases that follow one another (their peaks do not add up)."""
        return [ph for ph in dict.fromkeys(p.phase for p in self.parts) if ph not in ("persistent", "info")]

    @property
    def total_bytes(self) -> float:
        return self.phase_bytes("persistent") + max(self.phase_bytes(ph) for ph in self.phases)

    @property
    def total_gib(self) -> float:
        return self.total_bytes / GIB

    @property
    def peak_phase(self) -> str:
        return max(self.phases, key=self.phase_bytes)

    def part(self, key: str) -> Part:
        return next(p for p in self.parts if p.key == key)

    def fits(self, limit_gib: float) -> bool:
        return self.total_gib <= limit_gib

    def to_dict(self) -> dict[str, Any]:
        return {
            "recipe": asdict(self.recipe), "model": asdict(self.shape), "layout": asdict(self.layout),
            "parts": [{**asdict(p), "gib": p.gib} for p in self.parts],
            "persistent_gib": self.phase_bytes("persistent") / GIB,
            "generation_gib": self.phase_bytes("generation") / GIB,
            "training_gib": self.phase_bytes("training") / GIB,
            "total_gib": self.total_gib, "peak_phase": self.peak_phase,
            "fits": {f"{limit}GiB": self.fits(limit) for limit in LIMITS_GIB},
        }


def weight_bytes(shape: ModelShape, recipe: Recipe) -> tuple[float, str]:
    """The frozen base model."""
    prec = Precision.of(recipe)
    if not recipe.load_in_4bit:
        n = shape.parameters
        return n * prec.weight, f"{n / 1e9:.3f}B params x {prec.weight} B ({recipe.weight_dtype})"
    linear = shape.num_layers * shape.layer_linear_weights()
    # 4 bits per weight + one absmax per 64-weight block: a byte with double quantisation (plus an fp32 per 256
    # blocks and a 256-entry fp32 code per matrix), else an fp32.
    per_param = 0.5 + (1 / NF4_BLOCK + 4 / (NF4_BLOCK * NESTED_BLOCK) if recipe.nested_quant else 4 / NF4_BLOCK)
    tables = shape.num_layers * 7 * (256 * 4 + 16 * 4) if recipe.nested_quant else shape.num_layers * 7 * 16 * 4
    kept = shape.parameters - linear  # embedding, LM head (untied), norms, biases
    how = (f"{linear / 1e9:.3f}B linear-layer params in NF4 ({per_param * 8:.3f} bit/param"
           f"{' with double quantisation' if recipe.nested_quant else ''}) + {kept / 1e9:.3f}B kept unquantised "
           f"(embedding{'' if shape.tied_embeddings else ', LM head'}, norms, biases) in fp32: "
           "prepare_model_for_kbit_training upcasts them")
    return linear * per_param + tables + kept * prec.unquantised, how


def layer_activation_bytes(shape: ModelShape, prec: Precision, recipe: Recipe, seq_len: int) -> dict[str, float]:
    """Bytes saved for backward by one decoder layer, per token of the micro-batch (the attention mask term grows
    with the padded sequence length ``seq_len``).

    Korthikanti et al. 2022 ("Reducing Activation Recomputation in Large Transformer Models", arXiv:2205.05198,
    sec. 4.1, eq. 1) count s*b*h*(34 + 5*a*s/h) bytes per layer for a GPT layer with 16-bit activations, 4h MLP,
    dropout, and attention scores in memory. Adapted, term by term, to what this stack saves: RMSNorm instead of
    LayerNorm, grouped KV heads expanded to all heads before SDPA (transformers' repeat_kv when a padding mask is
    present), SDPA's fused kernels (q, k, v, output and log-sum-exp saved, no a*s^2 scores, but the padding mask
    converted to a float mask per layer), a SwiGLU MLP of width I, no dropout in the base model, and LoRA's
    inputs on the adapted layers.
    """
    h, i, nq, r = shape.hidden_size, shape.intermediate_size, shape.q_width, recipe.lora_r
    out = {
        # two RMSNorms: each saves its input upcast to fp32 (the input itself when it is fp32) and 1/rms
        "norms": 2 * (4 * h + 4),
        # q, k and v (k and v expanded to every head), the output, and the fp32 log-sum-exp per head
        "attention": 4 * nq * prec.attention + 4 * shape.num_heads,
        # the boolean padding mask, converted per layer to a float mask in the query dtype and saved (b x s x s)
        "attention_mask": prec.attention * seq_len,
        # SwiGLU: silu saves gate, the product saves silu(gate) and up (I wide each)
        "mlp": 3 * i * prec.linear_out,
    }
    groups = {  # input of each adapted layer: (layers, width, dtype bytes of that input)
        "qkv": ([t for t in ("q_proj", "k_proj", "v_proj") if t in recipe.lora_targets], h, prec.residual),
        "o": ([t for t in ("o_proj",) if t in recipe.lora_targets], nq, prec.attention),
        "gate_up": ([t for t in ("gate_proj", "up_proj") if t in recipe.lora_targets], h, prec.residual),
        "down": ([t for t in ("down_proj",) if t in recipe.lora_targets], i, prec.linear_out),
    }
    lora = {}
    for name, (layers, width, in_bytes) in groups.items():
        if not layers:
            lora[name] = 0.0
        elif recipe.lora_dropout > 0:
            # each layer: its dropout mask, and lora_A's input (the dropped tensor, as autocast casts it)
            lora[name] = len(layers) * width * (prec.dropout_mask + (prec.autocast or prec.lora))
        elif prec.autocast:
            lora[name] = len(layers) * width * prec.autocast  # each lora_A saves its own autocast copy of the input
        elif in_bytes == prec.lora:
            # lora_A saves the layer's input itself, shared by the group; o_proj's input is a view of the SDPA
            # output that attention already saves
            lora[name] = 0 if name == "o" else width * prec.lora
        else:
            lora[name] = len(layers) * width * prec.lora  # peft casts the input to the adapter's fp32, per layer
    out["lora_inputs"] = lora["qkv"] + lora["o"] + lora["gate_up"]
    out["lora_down_input"] = lora["down"]
    out["lora_rank"] = len(recipe.lora_targets) * r * (prec.autocast or prec.lora)  # lora_A outputs, for lora_B
    return out


def layer_backward_bytes(shape: ModelShape, prec: Precision, saved: dict[str, float]) -> float:
    """What one layer's backward adds at its peak, per token, on top of what the layer saved: the MLP's gradient
    tensors (of the product, of silu(gate) and of up: 3 x I) and a few hidden-size ones, less down_proj's LoRA
    input, which its backward (the first to run) frees before those appear. A model of the order autograd runs
    and frees things in, checked against measured peaks on CPU (tests/test_memory.py)."""
    grads = 3 * shape.intermediate_size * prec.linear_out + 3 * shape.hidden_size * 4
    return max(0.0, grads - saved["lora_down_input"])


def lm_head_bytes(shape: ModelShape, prec: Precision, tokens: int, scored: int) -> dict[str, float]:
    """Working memory of TRL's fused LM head (trl.kernels.ChunkedLogProbFunction) beyond the activations:
    ``scored`` positions are projected in tiles of min(scored, 4096) tokens x 32768 vocabulary entries.

    On CUDA a Triton kernel folds each tile in place: one tile buffer, plus 16-bit copies of the hidden chunk and
    of the weight chunk when they are stored in fp32. On CPU the tile is folded with torch ops, whose temporaries
    are fp32 tiles: 3 more in the forward (the scaled logits, exp(z - max), their product) and 7 more in the
    backward (scaled logits twice, log p, p, the gradient, and two temporaries of its update) plus the boolean
    target mask. The backward also holds the fp32 gradient of the hidden states."""
    compute = prec.autocast or prec.residual
    tile_rows = min(scored, LM_HEAD_TOKEN_TILE)
    buffer = tile_rows * LM_HEAD_VOCAB_TILE * compute  # mm_buf is allocated 32768 wide whatever the vocabulary
    tile = tile_rows * min(LM_HEAD_VOCAB_TILE, shape.vocab_size)
    h = shape.hidden_size
    copies = 0.0
    if prec.unquantised != compute:  # weight[start:end].to(compute_dtype), hidden[chunk].to(compute_dtype)
        copies = min(LM_HEAD_VOCAB_TILE, shape.vocab_size) * h * compute + tile_rows * h * compute
    if prec.device == "cuda":
        forward = buffer + copies
        backward = buffer + copies
    else:
        forward = buffer + tile * 3 * 4 + copies
        backward = buffer + tile * (7 * 4 + 1) + copies
    grad_hidden = scored * h * 4 + tokens * h * prec.residual  # the kernel's fp32 accumulator, d(hidden states)
    return {"forward": forward, "backward": backward + grad_hidden, "buffer": buffer}


def prefill_bytes(shape: ModelShape, prec: Precision, rows: int, new: int, width: int) -> float:
    """Largest transient of one layer while ``rows`` conversations prefill ``new`` tokens on a cache ``width``
    wide (no gradient: nothing is kept between layers): attention (k and v of the whole cache expanded to every
    head by repeat_kv, the float mask, q and the output) or the MLP (3 intermediates), whichever is larger."""
    b = prec.generation
    expand = 2 * width * shape.q_width * b if shape.num_kv_heads < shape.num_heads else 0
    attention = rows * (expand + new * width * b + 2 * new * shape.q_width * b)
    mlp = rows * new * 3 * shape.intermediate_size * b
    return max(attention, mlp) + rows * new * shape.hidden_size * b * 2


def estimate(shape: ModelShape, recipe: Recipe, layout: Layout) -> Estimate:
    prec = Precision.of(recipe)
    est = Estimate(recipe, shape, layout)
    add = est.parts.append
    L, h = shape.num_layers, shape.hidden_size
    gpu = recipe.device == "cuda"

    # ---- persistent
    w, how = weight_bytes(shape, recipe)
    add(Part("weights", "base model weights", "persistent", w, how))
    lora_params = shape.lora_parameters(recipe.lora_r, recipe.lora_targets)
    sizes = recipe.adapter_bytes()
    dtypes = " + ".join(f"{b} B" for b in sizes)
    add(Part("lora", f"LoRA weights, {recipe.adapters} adapter(s)", "persistent", lora_params * sum(sizes),
             f"{recipe.adapters} x {lora_params / 1e6:.2f}M params (r={recipe.lora_r} on "
             f"{', '.join(recipe.lora_targets)}) x {dtypes}"
             + (" (generator cast to bf16 by GRPOTrainer on a 4-bit base, discriminator fp32)"
                if recipe.load_in_4bit else " (fp32)")))
    add(Part("optimizer", "AdamW states, both adapters", "persistent", 2 * lora_params * sum(sizes),
             f"exp_avg + exp_avg_sq in each adapter's dtype ({dtypes} per param, twice): DuelGRPOTrainer puts "
             "both adapters in one AdamW, and each has its states from its first step on"))
    if gpu:
        add(Part("cuda_context", "CUDA context (assumption)", "persistent", CUDA_CONTEXT_GIB * GIB,
                 f"assumption: {CUDA_CONTEXT_GIB} GiB for the CUDA context and library workspaces"))

    # ---- generation: both roles' conversations keep their caches until the chain ends
    rows = recipe.generation_rows
    kv_per_token = L * 2 * shape.kv_width * prec.generation
    widths = {role: layout.width(role) for role in ("generator", "discriminator")}
    add(Part("kv_cache", "KV cache, five-stage chain, both roles", "generation",
             kv_per_token * rows * sum(widths.values()),
             f"{L} layers x 2 x {shape.num_kv_heads} KV heads x {shape.head_dim} x {prec.generation} B = "
             f"{kv_per_token / 1024:.1f} KiB/token x {rows} sequences x (generator {widths['generator']} + "
             f"discriminator {widths['discriminator']} tokens)"))
    prefills = [(layout.generator_prompt, layout.generator_prompt), (layout.discriminator_prompt,
                                                                     layout.discriminator_prompt)]
    done = layout.generator_prompt + recipe_tokens(recipe, "generator")[0]
    for turn, out in zip(layout.generator_turns, recipe_tokens(recipe, "generator")[1:]):
        prefills.append((turn, done + turn))
        done += turn + out
    done = layout.discriminator_prompt + recipe_tokens(recipe, "discriminator")[0]
    for turn, out in zip(layout.discriminator_turns, recipe_tokens(recipe, "discriminator")[1:]):
        prefills.append((turn, done + turn))
        done += turn + out
    prefill = max(prefill_bytes(shape, prec, rows, new, width) for new, width in prefills)
    growth = max(widths.values()) * rows * 2 * shape.kv_width * prec.generation  # one layer's cache re-concatenated
    sampling = 3 * rows * shape.vocab_size * 4
    dequant = _dequant_bytes(shape, recipe)
    add(Part("generation_transient", "generation working set", "generation", prefill + growth + sampling + dequant,
             "the largest prefill's layer (expanded KV heads, float mask, or MLP), one layer's cache copy, "
             "sampling logits" + (", one dequantised 4-bit weight" if dequant else "")))

    # ---- training: one micro-batch, the longer role's sequences
    b = recipe.micro_batch
    role = max(("generator", "discriminator"), key=layout.width)
    seq = layout.width(role)
    tokens = b * seq
    scored = b * layout.completion(role) if gpu else b * (seq - 1)  # CUDA scores completion tokens only
    per_layer = layer_activation_bytes(shape, prec, recipe, seq)
    per_token_layer = sum(per_layer.values())
    outside = tokens * (4 * h + 4) + 2 * tokens * shape.head_dim * 4 + scored * h * prec.residual
    lm = lm_head_bytes(shape, prec, tokens, scored)
    layer_bwd = tokens * layer_backward_bytes(shape, prec, per_layer)
    saved_full = L * tokens * per_token_layer + outside
    no_ckpt = saved_full + max(lm["forward"], lm["backward"], layer_bwd + tokens * h * 4)
    saved_ckpt = L * tokens * h * prec.residual + outside
    ckpt = saved_ckpt + max(lm["forward"], lm["backward"], tokens * per_token_layer + layer_bwd)
    # the trained adapter's gradients (its dtype), plus autocast's cached 16-bit copies of its weights if fp32
    largest = max(sizes)
    grads = lora_params * largest + (lora_params * prec.autocast if prec.autocast and largest > prec.autocast else 0)
    add(Part("gradients", "LoRA gradients (active adapter)", "training", grads,
             f"{lora_params / 1e6:.2f}M grads x {largest} B of the adapter being trained (the other has none)"
             + (f" + autocast's {prec.autocast}-byte copies of its weights" if grads > lora_params * largest
                else "")))
    # The training peak comes when the saved activations meet the largest transient: the LM head's working set
    # (its forward or its backward) or, later, one layer's backward (with checkpointing: that layer recomputed,
    # plus its gradient buffers). These come one after another: the phase takes the larger.
    which = "with" if recipe.gradient_checkpointing else "without"
    formula = (f"{b} sequences x {seq} tokens ({role}: prompt {layout.prompt(role)} + completion "
               f"{layout.completion(role)}); per layer and token {per_token_layer / 1024:.1f} KiB "
               f"({', '.join(f'{k} {v:.0f} B' for k, v in per_layer.items())}) x {L} layers")
    if recipe.gradient_checkpointing:
        saved, layer_extra = saved_ckpt, tokens * per_token_layer + layer_bwd
        formula = (f"{b} sequences x {seq} tokens ({role}: prompt {layout.prompt(role)} + completion "
                   f"{layout.completion(role)}): the {L} checkpointed layer inputs ({h} x {prec.residual} B per "
                   "token), the final norm's input and the LM head's hidden states")
        layer_how = (f"the layer recomputed in the backward, {per_token_layer / 1024:.1f} KiB per token "
                     f"({', '.join(f'{k} {v:.0f} B' for k, v in per_layer.items())}), + its gradient buffers")
    else:
        saved, layer_extra = saved_full, layer_bwd + tokens * h * 4
        layer_how = "gradient buffers of the first layer's backward (3 x MLP width + hidden-size tensors per token)"
    add(Part("activations", f"activations saved for backward, {which} checkpointing", "training", saved, formula))
    add(Part("layer_backward", "one layer's backward working set", "training", layer_extra, layer_how,
             alternative=True))
    add(Part("lm_head", "logits: TRL's fused LM head working set", "training", max(lm["forward"], lm["backward"]),
             f"{scored} scored positions in tiles of {min(scored, LM_HEAD_TOKEN_TILE)} x "
             f"{min(LM_HEAD_VOCAB_TILE, shape.vocab_size)} "
             + ("(Triton, in place)" if gpu else "(torch ops on CPU: fp32 temporaries)")
             + ", + the fp32 gradient of the hidden states; the full logits are never materialised",
             alternative=True))
    add(Part("activations_other", f"(training phase {'without' if recipe.gradient_checkpointing else 'with'} "
             "checkpointing)", "info", grads + (no_ckpt if recipe.gradient_checkpointing else ckpt),
             "the same micro-batch with the other gradient checkpointing setting, for comparison; not added"))
    full_logits = scored * shape.vocab_size * 4
    add(Part("logits_full", "logits if materialised (b x s x V fp32, + log-softmax copy)", "info", 2 * full_logits,
             f"{scored} x {shape.vocab_size} x 4 B, twice: what a non-fused selective_log_softmax path would hold; "
             "TRL 1.16's GRPOTrainer computes log-probs with its fused LM head instead"))
    ref = 0.0
    ref_how = "beta = 0: no reference model (train.py refuses beta > 0)"
    if recipe.beta > 0:  # reference log-probs: a no-grad forward with the adapter disabled
        ref = tokens * (per_token_layer + 4 * h) + lm["forward"]
        ref_how = ("a no-grad forward of the micro-batch with the adapter disabled: one layer's activations + "
                   "the LM head's tile")
    add(Part("reference", "reference model log-probs (scoring, before training)", "scoring", ref, ref_how))
    if dequant:
        add(Part("dequant", "4-bit dequantisation buffer", "training", dequant,
                 "the largest linear layer dequantised to 16 bits for a matmul or its backward"))
    return est


def recipe_tokens(recipe: Recipe, role: str) -> tuple[int, ...]:
    values = recipe.generator_tokens if role == "generator" else recipe.discriminator_tokens
    return tuple(values) * 5 if len(values) == 1 else tuple(values)


def _dequant_bytes(shape: ModelShape, recipe: Recipe) -> float:
    if not recipe.load_in_4bit:
        return 0.0
    return max(a * b for a, b in shape.linear_shapes().values()) * 2


def estimate_recipe(config: str | os.PathLike[str], overrides: Sequence[str] = (), model_config: str | None = None,
                    problem_tokens: int = DEFAULT_PROBLEM_TOKENS) -> Estimate:
    """Read a recipe and its model's config, render the chain's token layout, and estimate."""
    recipe = Recipe.from_config(config, overrides, problem_tokens=problem_tokens)
    shape = ModelShape.from_file(model_config or find_model_config(recipe.model))
    layout = chain_layout(load_tokenizer_for(recipe), recipe)
    return estimate(shape, recipe, layout)


# ----------------------------------------------------------------------------- output


def table(est: Estimate) -> str:
    r, s = est.recipe, est.shape
    lines = [
        f"{r.name}: {s.name} ({s.parameters / 1e9:.3f}B params; {s.num_layers} layers, hidden {s.hidden_size}, "
        f"MLP {s.intermediate_size}, {s.num_heads} heads / {s.num_kv_heads} KV x {s.head_dim}, vocab "
        f"{s.vocab_size}, {'tied' if s.tied_embeddings else 'untied'} embeddings)",
        f"  device {r.device}, {'4-bit NF4' if r.load_in_4bit else r.weight_dtype} base, "
        f"autocast {r.autocast or 'off'}, micro-batch {r.micro_batch}, generation {r.generation_rows} sequences, "
        f"gradient checkpointing {'on' if r.gradient_checkpointing else 'off'}; chain widths: generator "
        f"{est.layout.generator_width}, discriminator {est.layout.discriminator_width} tokens",
        "",
        f"  {'part':<62} {'phase':<11} {'GiB':>7}",
    ]
    for p in est.parts:
        phase = p.phase + ("*" if p.alternative else "")
        lines.append(f"  {p.label:<62} {phase:<11} {p.gib:>7.2f}")
    lines += [
        "",
        f"  {'persistent':<62} {'':<11} {est.phase_bytes('persistent') / GIB:>7.2f}",
        f"  {'generation phase':<62} {'':<11} {est.phase_bytes('generation') / GIB:>7.2f}",
        f"  {'training phase':<62} {'':<11} {est.phase_bytes('training') / GIB:>7.2f}",
        f"  {'TOTAL peak = persistent + max(generation, training)':<62} {est.peak_phase:<11} {est.total_gib:>7.2f}",
        "  (* transients of a phase that come one after another: the phase counts the largest)",
        "",
    ]
    for limit in LIMITS_GIB:
        verdict = "fits" if est.fits(limit) else "DOES NOT FIT"
        lines.append(f"  {limit} GiB: {verdict} ({limit - est.total_gib:+.2f} GiB headroom)")
    if r.device == "cpu":
        lines.append("  (a CPU recipe: these are host RAM figures, with no CUDA context)")
    lines += ["", "  how each part is computed:"]
    lines += [f"    {p.label}: {p.how}" for p in est.parts]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- measuring a CPU run


class LiveTensorBytes:
    """A TorchDispatchMode (built on first use) that follows every tensor storage an op creates until it is freed,
    and keeps the peak of their total: what PyTorch really holds, without the allocator's or Python's overhead.
    ``forget`` drops storages (e.g. frozen weights) from the count."""

    def __new__(cls, ignore: Sequence[Any] = ()):
        import weakref

        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils._pytree import tree_flatten

        class _Mode(TorchDispatchMode):
            def __init__(self) -> None:
                super().__init__()
                self.ignore = {id(t.untyped_storage()) for t in ignore}
                self.live: dict[int, int] = {}
                self.current = self.peak = 0

            def forget(self, tensors: Sequence[Any]) -> None:
                for t in tensors:
                    key = id(t.untyped_storage())
                    self.ignore.add(key)
                    self.current -= self.live.pop(key, 0)

            def _free(self, key: int) -> None:
                self.current -= self.live.pop(key, 0)

            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                for t in tree_flatten(out)[0]:
                    if hasattr(t, "untyped_storage"):
                        storage = t.untyped_storage()
                        key = id(storage)
                        if key not in self.live and key not in self.ignore and storage.nbytes():
                            self.live[key] = storage.nbytes()
                            self.current += storage.nbytes()
                            self.peak = max(self.peak, self.current)
                            weakref.finalize(storage, self._free, key)
                return out

        return _Mode()


def _status_kib(field_name: str, pid: str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {field_name}")


def measure_training(config: str, overrides: Sequence[str], tensors: bool = False) -> dict[str, Any]:
    """Run ``train.py``'s job in this process and measure its resident memory (Linux /proc).

    The baseline is VmRSS when the model starts loading (every import done, the datasets loaded); the kernel's
    high-water mark (VmHWM) is reset there and read after the run, so the peak minus the baseline is what the
    model, the rollout and the training steps added. A thread samples VmRSS every 0.2 s to tell which phase
    peaked (the rollout's chain or the rest), and the chains' real token widths are recorded (the estimate
    assumes every stage runs to its budget). With ``tensors``, a LiveTensorBytes mode also follows every tensor
    the run creates after the model has loaded (the frozen weights are counted by the estimate's weights part)."""
    import contextlib
    import gc
    import tempfile

    import train
    import pipeline.rollout as rollout_module

    state: dict[str, Any] = {"marks": [], "widths": {"generator": [0, 0], "discriminator": [0, 0]}}
    original_chains, original_load = rollout_module.generate_chains, train.load_policies

    def timed_chains(*args: Any, **kwargs: Any):
        state["marks"].append((time.monotonic(), "start"))
        try:
            chains = original_chains(*args, **kwargs)
        finally:
            state["marks"].append((time.monotonic(), "end"))
        for chain in chains:
            for role, turns in (("generator", chain.generator), ("discriminator", chain.discriminator)):
                completion = sum(map(len, turns.generated)) + sum(map(len, turns.inserted))
                seen = state["widths"][role]
                seen[0], seen[1] = max(seen[0], len(turns.prompt)), max(seen[1], completion)
        return chains

    live = LiveTensorBytes() if tensors else None

    def measured_load(*args: Any, **kwargs: Any):
        gc.collect()
        state["baseline_kib"] = _status_kib("VmRSS")
        try:  # reset the high-water mark to the current RSS, so that VmHWM is the peak from here on
            Path("/proc/self/clear_refs").write_text("5")
            state["hwm_reset"] = True
        except OSError:
            state["hwm_reset"] = False
        policies = original_load(*args, **kwargs)
        if live is not None:  # count what the run adds, not the frozen base it loaded
            models = {id(m): m for m in (policies.generator, policies.discriminator)}.values()
            live.forget([t for m in models for t in [*m.parameters(), *m.buffers()] if not t.requires_grad])
            live.peak = live.current
        return policies

    samples: list[tuple[float, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append((time.monotonic(), _status_kib("VmRSS")))
            stop.wait(0.2)

    argv = ["--config", config, *overrides]
    if _override(overrides, "output_dir") is None:
        argv += ["--output_dir", tempfile.mkdtemp(prefix="memory-measure-")]
    after_imports_kib = _status_kib("VmRSS")
    rollout_module.generate_chains, train.load_policies = timed_chains, measured_load
    sampler = threading.Thread(target=sample, daemon=True)
    started = time.monotonic()
    sampler.start()
    try:
        with live if live is not None else contextlib.nullcontext():
            code = train.main(argv)
    finally:
        stop.set()
        sampler.join()
        rollout_module.generate_chains, train.load_policies = original_chains, original_load
    if "baseline_kib" not in state:
        raise RuntimeError(f"the run ended (exit code {code}) before loading the model: nothing was measured")
    peak_kib, baseline_kib = _status_kib("VmHWM"), state["baseline_kib"]
    windows = [(a, b) for (a, _), (b, _) in zip(state["marks"][0::2], state["marks"][1::2])]
    after = [(t, kib) for t, kib in samples if t >= started]

    def peak(values: list[int]) -> float | None:
        return (max(values) - baseline_kib) * 1024 / GIB if values else None

    return {
        "exit_code": code, "seconds": time.monotonic() - started,
        "after_imports_gib": after_imports_kib * 1024 / GIB, "baseline_gib": baseline_kib * 1024 / GIB,
        "peak_rss_gib": peak_kib * 1024 / GIB, "hwm_reset": state["hwm_reset"],
        "measured_gib": (peak_kib - baseline_kib) * 1024 / GIB,
        "sampled_generation_peak_gib": peak([k for t, k in after if any(a <= t <= b for a, b in windows)]),
        "sampled_other_peak_gib": peak([k for t, k in after if not any(a <= t <= b for a, b in windows)]),
        "generation_calls": len(windows),
        "live_tensor_peak_gib": live.peak / GIB if live is not None else None,
        "observed_widths": {role: {"prompt": p, "completion": c} for role, (p, c) in state["widths"].items()},
    }


def with_observed_widths(est: Estimate, widths: dict[str, dict[str, int]]) -> Estimate:
    """The same estimate with the chain widths a run really produced (each role's longest prompt + longest
    completion, as TRL pads them) instead of every stage at its budget."""
    g, d = widths["generator"], widths["discriminator"]
    layout = Layout(g["prompt"], g["prompt"] + g["completion"], d["prompt"], d["prompt"] + d["completion"],
                    est.layout.generator_turns, est.layout.discriminator_turns, est.layout.tokenizer)
    return estimate(est.shape, est.recipe, layout)


# ----------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.memory", description=__doc__.split("\n\n")[0],
        epilog="Any other --field value is a recipe override, as on train.py's command line.")
    parser.add_argument("--config", required=True, help="the recipe (YAML), as train.py takes it")
    parser.add_argument("--model_config", help="a config.json (or a model folder) to use instead of the recipe's model")
    parser.add_argument("--problem_tokens", type=int, default=DEFAULT_PROBLEM_TOKENS,
                        help=f"tokens of the problem statement and signature (default {DEFAULT_PROBLEM_TOKENS})")
    parser.add_argument("--json", action="store_true", help="print the estimate as JSON")
    parser.add_argument("--measure", action="store_true",
                        help="also run the recipe's training in this process (CPU recipes) and compare the peak "
                             "resident memory with the estimate")
    parser.add_argument("--tensors", action="store_true",
                        help="with --measure: also follow every tensor the run creates (slower) and report the peak "
                             "of live tensor bytes, which excludes the allocator's and Python's overhead")
    args, overrides = parser.parse_known_args(argv)
    try:
        est = estimate_recipe(args.config, overrides, args.model_config, args.problem_tokens)
    except MemoryEstimateError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    result: dict[str, Any] = est.to_dict()
    if args.measure:
        if est.recipe.device != "cpu":
            print("error: --measure runs the recipe here; it measures host memory of CPU recipes only",
                  file=sys.stderr)
            return 2
        measured = measure_training(args.config, overrides, tensors=args.tensors)
        measured["estimate_gib"] = est.total_gib
        measured["error"] = (est.total_gib - measured["measured_gib"]) / measured["measured_gib"]
        observed = with_observed_widths(est, measured["observed_widths"])
        measured["estimate_at_observed_widths_gib"] = observed.total_gib
        measured["error_at_observed_widths"] = \
            (observed.total_gib - measured["measured_gib"]) / measured["measured_gib"]
        measured["observed_parts_gib"] = {p.key: p.gib for p in observed.parts}
        result["measured"] = measured
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(table(est))
        if args.measure:
            m = result["measured"]
            print(f"\n  measured: peak RSS {m['peak_rss_gib']:.2f} GiB - baseline {m['baseline_gib']:.2f} GiB "
                  f"(imports done, data loaded, model not yet) = {m['measured_gib']:.2f} GiB "
                  f"(exit code {m['exit_code']}, {m['seconds']:.0f} s)")
            print(f"  estimate {m['estimate_gib']:.2f} GiB: error {m['error']:+.1%}")
            print(f"  estimate at the widths the run produced {m['observed_widths']}: "
                  f"{m['estimate_at_observed_widths_gib']:.2f} GiB, error {m['error_at_observed_widths']:+.1%}")
            print(f"  sampled peaks above the baseline: during the chain {m['sampled_generation_peak_gib']:.2f}, "
                  f"elsewhere {m['sampled_other_peak_gib']:.2f} GiB")
            if m["live_tensor_peak_gib"] is not None:
                weights = est.part("weights").gib
                print(f"  live tensors: peak {m['live_tensor_peak_gib']:.2f} GiB beyond the frozen weights, "
                      f"+ {weights:.2f} GiB of weights = {m['live_tensor_peak_gib'] + weights:.2f} GiB "
                      f"(estimate at the real widths {m['estimate_at_observed_widths_gib']:.2f} GiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
