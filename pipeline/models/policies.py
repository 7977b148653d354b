"""The generator and discriminator policies built from a `ModelConfig`: one shared base with two adapters
(the default), or one base per role when `separate_discriminator_model` is set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from peft import PeftModel
from transformers.tokenization_utils_base import PreTrainedTokenizerBase

from pipeline.adapters import ROLES, Role, attach_role_adapters, save_adapters, set_active_role
from pipeline.models import ModelConfig, load_base_model, load_tokenizer, resolve_model_source


@dataclass
class Policies:
    """Both roles' models and tokenizers. When shared, `generator is discriminator` (one peft model holding
    both adapters) and the tokenizers are the same object too."""

    generator: PeftModel
    discriminator: PeftModel
    tokenizer: PreTrainedTokenizerBase
    discriminator_tokenizer: PreTrainedTokenizerBase

    @property
    def shared(self) -> bool:
        return self.generator is self.discriminator

    def model_for(self, role: Role) -> PeftModel:
        """The peft model holding `role`'s adapter (does not change which adapter is active)."""
        if role not in ROLES:
            raise ValueError(f"role must be one of {ROLES}, got {role!r}")
        return self.generator if role == "generator" else self.discriminator

    def tokenizer_for(self, role: Role) -> PreTrainedTokenizerBase:
        return self.tokenizer if self.model_for(role) is self.generator else self.discriminator_tokenizer

    def activate(self, role: Role) -> PeftModel:
        """Make `role` the one that runs and trains on its model, and return that model (e.g. for a trainer)."""
        model = self.model_for(role)
        set_active_role(model, role)
        return model

    def save(self, out_dir: str | os.PathLike[str]) -> Path:
        """Write `out_dir/generator/` and `out_dir/discriminator/`, whichever way the roles are held."""
        for model in {id(m): m for m in (self.generator, self.discriminator)}.values():
            save_adapters(model, out_dir)
        return Path(out_dir)


def load_policies(cfg: ModelConfig) -> Policies:
    """Load the base model(s) and tokenizer(s) of `cfg` and attach the role adapters (generator active)."""
    init = {"generator": cfg.generator_init_adapter, "discriminator": cfg.discriminator_init_adapter}
    source = resolve_model_source(cfg.model_name_or_path)
    tokenizer = load_tokenizer(source, revision=cfg.model_revision, trust_remote_code=cfg.trust_remote_code)
    if cfg.separate_discriminator_model is None:
        model = attach_role_adapters(load_base_model(cfg, source), cfg, ROLES, init)
        return Policies(model, model, tokenizer, tokenizer)
    generator = attach_role_adapters(load_base_model(cfg, source), cfg, ("generator",), init)
    disc_source = resolve_model_source(cfg.separate_discriminator_model)
    # model_revision applies to the generator's Hub id only; the discriminator's is loaded at its default branch.
    disc_cfg = replace(cfg, model_name_or_path=cfg.separate_discriminator_model, model_revision="main")
    discriminator = attach_role_adapters(load_base_model(disc_cfg, disc_source), disc_cfg, ("discriminator",), init)
    disc_tokenizer = load_tokenizer(disc_source, trust_remote_code=cfg.trust_remote_code)
    return Policies(generator, discriminator, tokenizer, disc_tokenizer)
