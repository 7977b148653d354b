"""Loading the model to evaluate: a base model with the `generator` and `discriminator` adapters of a
checkpoint (or fresh ones when there is none, which evaluation then disables: the base model).
"""

from __future__ import annotations

import torch

from prompts.roles import ROLES
from pipeline.models.adapters import attach_role_adapters, load_adapters
from pipeline.models import ModelConfig, load_base_model, load_tokenizer, resolve_model_source
from pipeline.models.policies import Policies


def load_eval_policies(model: str | None, adapter: str | None, *, dtype: str = "auto",
                       trust_remote_code: bool = False, load_in_4bit: bool = False,
                       bnb_4bit_compute_dtype: str = "bfloat16") -> tuple[Policies, str]:
    """Both roles on one base, on the GPU when there is one; returns them and the resolved model source.
    ``load_in_4bit`` evaluates on the NF4 base the adapters were trained on (QLoRA), placed at load time.

    Raises `pipeline.models.ModelLoadError` (or `EmbeddedModelError`) with a message saying what to fix.
    """
    cfg = ModelConfig(model_name_or_path=model, dtype=dtype, load_in_4bit=load_in_4bit, bnb_4bit_compute_dtype=bnb_4bit_compute_dtype)
    source = resolve_model_source(model)
    tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
    base = load_base_model(cfg, source, trust_remote_code=trust_remote_code)
    # Without an adapter, fresh ones (LoRA B = 0) only give the roles their names; runs disable them anyway.
    peft_model = load_adapters(base, adapter) if adapter else attach_role_adapters(base, cfg, ROLES)
    if torch.cuda.is_available() and not load_in_4bit:  # a 4-bit model is placed when it loads and cannot move
        peft_model = peft_model.to("cuda")
    return Policies(peft_model, tokenizer), source
