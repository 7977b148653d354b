"""The private parts of TRL's GRPOTrainer that DuelGRPOTrainer overrides or reads are still there, as named.

``pipeline.training.trainer.PRIVATE_HOOKS`` lists them with their parameters; a TRL or transformers release that
renames one, drops it or changes its parameters fails here, instead of silently skipping our override (a hook
TRL no longer calls would leave the phase guard or the per-adapter checkpoint restore out of a run). A method can
keep its name and parameters and still stop being called, so one real (tiny) step, save and resume also checks
that TRL or transformers really calls each hook.
"""

from __future__ import annotations

import inspect
import sys
from collections import defaultdict
from pathlib import Path

import pytest
import transformers
import trl
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from datasets_build import load_problems
from pipeline.chain import ChainConfig
from pipeline.chain.rollout import Phase, ProblemIndex
from pipeline.models import ModelConfig
from pipeline.models.policies import load_policies
from pipeline.training.replay import ReplayBuffer, ReplayRollout
from pipeline.training.trainer import PRIVATE_ATTRIBUTES, PRIVATE_HOOKS, DuelGRPOTrainer

from test_train_step import shared_tiny_model

# Where a call from TRL or transformers comes from (their installed packages' folders).
LIBRARIES = tuple(str(Path(module.__file__).parent) + "/" for module in (trl, transformers))


@pytest.mark.parametrize("name", sorted(PRIVATE_HOOKS))
def test_each_private_hook_exists_in_trl_with_the_parameters_we_override(name: str) -> None:
    hook = getattr(GRPOTrainer, name, None)
    assert callable(hook), f"GRPOTrainer has no {name} any more"
    assert tuple(inspect.signature(hook).parameters)[1:] == PRIVATE_HOOKS[name]


def test_every_private_method_we_define_is_declared() -> None:
    ours = {name for name, value in vars(DuelGRPOTrainer).items()
            if name.startswith("_") and not name.startswith("__") and callable(value)}
    undeclared = {name for name in ours if hasattr(GRPOTrainer, name)} - set(PRIVATE_HOOKS)
    assert undeclared == set(), f"overrides of TRL's private methods not in PRIVATE_HOOKS: {undeclared}"


def test_the_private_attributes_we_read_are_set_by_trl() -> None:
    source = inspect.getsource(GRPOTrainer.__init__)
    for name in PRIVATE_ATTRIBUTES:
        assert f"self.{name} =" in source or f"self.{name}:" in source, name


@pytest.mark.slow
def test_trl_calls_each_declared_hook_during_a_real_step_save_and_resume(tmp_path_factory, tmp_path) -> None:
    """Every ``PRIVATE_HOOKS`` method is wrapped on a real trainer instance, which records who called it; one
    generator step (generation, rewards, optimizer step), a checkpoint and a resume from it must reach each
    override from TRL's or transformers' own code (our code calling it does not count). ``_log_metric`` is the
    one hook TRL only hands out (the ``log_metric`` reward kwarg) and our ``_calculate_rewards`` calls: it must
    bring what it is given into the logged metrics."""
    tiny = shared_tiny_model(tmp_path_factory)
    policies = load_policies(ModelConfig(model_name_or_path=str(tiny), lora_r=4, lora_alpha=8, lora_dropout=0.0))
    rows = [dict(row, prompt=row["task_id"]) for row in list(load_problems("humaneval-mini"))[:2]]
    rollout = ReplayRollout(ProblemIndex(rows), ChainConfig(generator_tokens=[3], discriminator_tokens=[4],
                                                            temperature=1.0), Phase("generator", 1),
                            buffer=ReplayBuffer(capacity=1), seed=0)

    def id_checksum(prompts, completions, completion_ids, **kwargs):
        return [float(sum(ids) % 1000) / 1000 for ids in completion_ids]

    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=2, max_steps=1,
                      learning_rate=0.05, use_cpu=True, bf16=False, activation_checkpointing=False,
                      report_to="none", save_steps=1, logging_steps=1, seed=0)
    trainer = DuelGRPOTrainer(model=policies.model, reward_funcs=[id_checksum], args=args,
                              train_dataset=Dataset.from_list(rows), processing_class=policies.tokenizer,
                              rollout_func=rollout, samples_per_step=0)
    callers: dict[str, list[str]] = defaultdict(list)
    logged_through: list[str] = []

    def recorded(name: str, method):
        def hook(*args, **kwargs):
            callers[name].append(sys._getframe(1).f_code.co_filename)
            if name == "_log_metric":
                logged_through.append(kwargs.get("name", args[0] if args else None))
            return method(*args, **kwargs)

        return hook

    for name in PRIVATE_HOOKS:
        setattr(trainer, name, recorded(name, getattr(trainer, name)))
    trainer.train()
    checkpoint = tmp_path / "checkpoint-1"
    assert (checkpoint / "generator" / "adapter_model.safetensors").is_file()
    trainer.train(resume_from_checkpoint=str(checkpoint))  # max_steps reached: loads the checkpoint, trains nothing

    from_libraries = {name for name, files in callers.items() if any(f.startswith(LIBRARIES) for f in files)}
    assert from_libraries >= set(PRIVATE_HOOKS) - {"_log_metric"}, \
        f"not called by TRL/transformers: {sorted(set(PRIVATE_HOOKS) - {'_log_metric'} - from_libraries)}"
    logged = {key for entry in trainer.state.log_history for key in entry}
    assert "generator/collapse_rate" in logged_through and "generator/syntax_valid" in logged_through
    assert set(logged_through) <= logged, f"given to _log_metric but never logged: {set(logged_through) - logged}"
