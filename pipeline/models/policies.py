"""The generator and discriminator policies built from a `ModelConfig`: one base model with two LoRA adapters."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from peft import PeftModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from prompts.roles import ROLES, Role
from pipeline.models.adapters import attach_role_adapters, save_adapters, set_active_role
from pipeline.models import ModelConfig, load_base_model, load_tokenizer, resolve_model_source


@dataclass
class Policies:
    """One base model holding both role adapters (``generator`` and ``discriminator``), and its tokenizer.

    Both roles share the base, so the pair costs one model's memory; ``acting_as`` / ``activate`` pick the adapter
    that runs or trains.
    """

    model: PeftModel
    tokenizer: PreTrainedTokenizerBase

    def activate(self, role: Role) -> PeftModel:
        """Make `role` the one that runs and trains, and return the model (e.g. for a trainer)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        set_active_role(self.model, role)
        return self.model

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write `out_dir/generator/` and `out_dir/discriminator/`."""
        save_adapters(self.model, out_dir)
        return Path(out_dir)


def load_policies(cfg: ModelConfig, *, trust_remote_code: bool = False) -> Policies:
    """Load the base model and tokenizer of `cfg` and attach the role adapters (generator active).

    ``trust_remote_code`` (run modelling code shipped with a Hub model) is the trainer config's flag, as in TRL."""
    init = {"generator": cfg.generator_init_adapter, "discriminator": cfg.discriminator_init_adapter}
    source = resolve_model_source(cfg.model_name_or_path)
    tokenizer = load_tokenizer(source, revision=cfg.model_revision, trust_remote_code=trust_remote_code)
    base = load_base_model(cfg, source, trust_remote_code=trust_remote_code)
    return Policies(attach_role_adapters(base, cfg, ROLES, init), tokenizer)
