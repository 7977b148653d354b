"""A recipe as the memory estimate sees it: its batch shapes, precisions and the chain's token layout."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from prompts.stages import DEFAULT_GENERATOR_TOKENS, NUM_STAGES

from pipeline.tools.memory.shape import (
    ATTENTION_MLP, DEFAULT_PROBLEM_TOKENS, MemoryEstimateError, ModelShape, find_model_config,
)  # fmt: skip



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
    generator_tokens: tuple[int, ...] = DEFAULT_GENERATOR_TOKENS
    discriminator_tokens: tuple[int, ...] = (128,) * NUM_STAGES
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
        """Read ``path`` (plus ``--field value`` overrides) with train.py's dataclasses for what the estimate needs
        (the schedule, the chain, TRL's config and the model); the recipe's other fields are left to train.py."""
        import yaml

        from trl import GRPOConfig

        from pipeline.models.adapters import DEFAULT_TARGET_MODULES
        from pipeline.models import ModelConfig
        from pipeline.training.config import ChainArguments, ConfigError, device_defaults, parse_recipe
        from pipeline.training.schedule import ScheduleConfig

        try:
            raw = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise MemoryEstimateError(f"--config {path}: {err}") from err
        argv = ["--config", str(path), *overrides]
        cpu = _flag(raw.get("use_cpu"), False) or override_value(overrides, "use_cpu") in ("true", "True", "1")
        # transformers refuses bf16 recipes on a machine without a GPU unless use_cpu is set; the estimate is for
        # the recipe's own device (its use_cpu), so parse with use_cpu forced on where there is no GPU.
        import torch

        if not torch.cuda.is_available() and override_value(overrides, "use_cpu") is None:
            argv += ["--use_cpu", "true"]
        try:
            schedule, chain, training, model = parse_recipe((ScheduleConfig, ChainArguments, GRPOConfig, ModelConfig),
                                                            argv, device_defaults(sft=False), partial=True)
        except ConfigError as err:
            raise MemoryEstimateError(f"--config {path}: {err}") from err
        device = "cpu" if cpu else "cuda"
        weight_dtype = model.dtype
        if weight_dtype == "auto":  # pipeline.models.resolve_dtype on the recipe's device (a bf16-capable GPU)
            from pipeline.models import cpu_has_native_bf16

            weight_dtype = "bfloat16" if device == "cuda" or cpu_has_native_bf16() else "float32"
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
            adapters=1 if schedule.schedule == "unified" else 2,
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


def override_value(overrides: Sequence[str], name: str) -> str | None:
    """The value of ``--name`` among command-line ``overrides`` (``--name v`` or ``--name=v``), or None."""
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

    def started(start: str) -> int:  # a reply's prefilled start is inserted context, before the reply
        return len(chat.encode(tokenizer, start)) if start else 0

    history = chat.generator_messages(templates, **fields)
    gen_prompt = len(chat.render_ids(tokenizer, history)) + started(templates.generator_start(1))
    gen_turns = []
    for stage in range(2, NUM_STAGES + 1):
        reply = templates.generator_start(stage - 1) + gen_out[stage - 2]
        history = history + [{"role": "assistant", "content": reply}]
        turn = chat.generator_turn(templates, stage, **fields)
        gen_turns.append(closing + len(chat.next_turn_ids(tokenizer, history, [turn]).ids)
                         + started(templates.generator_start(stage)))
        history = history + [turn]

    history = chat.discriminator_messages(templates, **fields, stage_outputs=[gen_out[0]])
    disc_prompt = len(chat.render_ids(tokenizer, history)) + started(templates.discriminator_start(1))
    disc_turns = []
    for stage in range(2, NUM_STAGES + 1):
        reply = templates.discriminator_start(stage - 1) + disc_out[stage - 2]
        history = history + [{"role": "assistant", "content": reply}]
        turn = chat.discriminator_turn(templates, stage, gen_out[stage - 1], **fields)
        disc_turns.append(closing + len(chat.next_turn_ids(tokenizer, history, [turn]).ids)
                          + started(templates.discriminator_start(stage)))
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
    from pipeline.models.embedded import embedded_model_dir
    from pipeline.models import load_tokenizer

    folder = Path(recipe.model).expanduser() if recipe.model not in (None, "embedded") else None
    source = str(folder) if folder is not None and folder.is_dir() else str(embedded_model_dir())
    return load_tokenizer(source)
