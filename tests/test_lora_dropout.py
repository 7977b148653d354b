"""LoRA dropout of adapters loaded from disk (issue 22): the recipe's ``lora_dropout`` applies to them, and no
dropout module is active while the rollout samples, even with the model in training mode as the Trainer
leaves it. On the tiny random model, with adapters saved with dropout 0.05 (peft rebuilds that on load)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator

from pipeline.chain import ChainConfig
from pipeline.chain.rollout import Phase, ProblemIndex, RolloutState, StagedRollout
from pipeline.models import ModelConfig
from pipeline.models.adapters import ROLES, set_active_role, set_lora_dropout
from pipeline.models.policies import load_policies
from pipeline.models.tiny import build_tiny_model

PROBLEMS = [{"task_id": "a", "prompt": "a", "problem": "Add two numbers.", "entry_point": "add",
             "signature": "def add(a, b):"}]
BUDGET = ChainConfig(generator_tokens=(4, 4, 4, 4, 6), discriminator_tokens=(5,), temperature=1.0)


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[Path, Path]:
    """The tiny model, and both role adapters saved with lora_dropout 0.05 and non-zero LoRA B."""
    folder = build_tiny_model(tmp_path_factory.mktemp("tiny"))
    policies = load_policies(ModelConfig(model_name_or_path=str(folder), lora_r=4, lora_dropout=0.05, dtype="float32"))
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        for name, param in policies.model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
    out = policies.save(tmp_path_factory.mktemp("adapters"))
    assert '"lora_dropout": 0.05' in (out / "generator" / "adapter_config.json").read_text()
    return folder, out


def loaded(saved: tuple[Path, Path], dropout: float):
    folder, adapters = saved
    return load_policies(ModelConfig(model_name_or_path=str(folder), lora_r=4, lora_dropout=dropout, dtype="float32",
                                     generator_init_adapter=str(adapters), discriminator_init_adapter=str(adapters)))


def lora_dropouts(model) -> list[torch.nn.Module]:
    return [m.lora_dropout[role] for m in model.modules()
            if isinstance(getattr(m, "lora_dropout", None), torch.nn.ModuleDict) for role in ROLES if role in m.lora_dropout]


def train_mode_logits(model, tokenizer) -> list[torch.Tensor]:
    """Two forward passes of the generator in training mode (as the loss computes log-probabilities)."""
    set_active_role(model, "generator")
    model.train()
    batch = tokenizer(["def add(a, b): return a + b"], return_tensors="pt")
    with torch.no_grad():
        return [model(**batch).logits for _ in range(2)]


def test_the_recipes_dropout_replaces_the_saved_one(saved):
    off = loaded(saved, 0.0)
    modules = lora_dropouts(off.model)
    assert modules and all(isinstance(m, torch.nn.Identity) for m in modules)
    assert {off.model.peft_config[r].lora_dropout for r in ROLES} == {0.0}
    first, second = train_mode_logits(off.model, off.tokenizer)
    assert torch.equal(first, second)  # no dropout: the loss's forward pass is the sampling policy's
    on = loaded(saved, 0.05)  # the same adapters with dropout: two training-mode passes differ (the check can fail)
    assert all(isinstance(m, torch.nn.Dropout) and m.p == 0.05 for m in lora_dropouts(on.model))
    first, second = train_mode_logits(on.model, on.tokenizer)
    assert not torch.equal(first, second)
    with pytest.raises(ValueError, match="dropout"):
        set_lora_dropout(off.model, "generator", 1.0)


@pytest.mark.parametrize("dropout", [0.0, 0.05])
def test_no_dropout_module_is_active_while_the_rollout_samples(saved, dropout):
    """StagedRollout as TRL calls it, the model in training mode: every dropout module that runs during
    generation is inactive (eval mode, or p = 0), whatever dropout the adapters train with."""
    policies = loaded(saved, dropout)
    model = policies.model
    active: list[str] = []
    calls = []

    def record(module, args):
        calls.append(module)
        if module.training and module.p > 0:
            active.append(type(module).__name__)

    hooks = [m.register_forward_pre_hook(record) for m in model.modules() if isinstance(m, torch.nn.Dropout)]
    set_active_role(model, "generator")
    model.train()
    trainer = SimpleNamespace(model_wrapped=model, accelerator=Accelerator(cpu=True), processing_class=policies.tokenizer,
                              args=SimpleNamespace(gradient_checkpointing_kwargs=None), num_generations=2)
    rollout = StagedRollout(ProblemIndex(PROBLEMS), BUDGET, RolloutState(Phase("generator", 0)))
    try:
        out = rollout(["a", "a"], trainer)
    finally:
        for hook in hooks:
            hook.remove()
    assert len(out["completion_ids"]) == 2
    assert (len(calls) > 0) == (dropout > 0)  # with dropout 0 the LoRA layers hold no Dropout module at all
    assert active == []
    assert model.training  # the rollout gives the Trainer its training mode back
