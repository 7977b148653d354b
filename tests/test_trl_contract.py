"""The private parts of TRL's GRPOTrainer that the project overrides or reads are still there, as named, and no
other private name of TRL's trainer is used anywhere in the project.

``pipeline.training.trainer.PRIVATE_HOOKS`` lists the overridden methods with their parameters,
``PRIVATE_ATTRIBUTES`` the private attributes read or written; a TRL or transformers release that renames one,
drops it or changes its parameters fails here, instead of silently skipping our override (a hook TRL no longer
calls would leave the per-adapter checkpoint restore out of a run). A method can keep its name and parameters and
still stop being called, so one real (tiny) step, save and resume also checks that TRL or transformers really calls
each hook. The source check reads every module of the project as Python tokens: an attribute access ``._name``
or a string ``"_name"`` (``getattr``) naming a private member of TRL's or transformers' trainer must be declared.
"""

from __future__ import annotations

import inspect
import io
import re
import sys
import tokenize
from collections import defaultdict
from pathlib import Path

import pytest
import transformers
import trl
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

from datasets_build import load_problems
from pipeline.chain import ChainConfig
from pipeline.chain.rollout import Phase
from pipeline.models import ModelConfig
from pipeline.models.policies import load_policies
from pipeline.training.schedule import AdversarialSchedule, ScheduleConfig
from pipeline.training.trainer import PRIVATE_ATTRIBUTES, PRIVATE_HOOKS, DuelGRPOTrainer

from test_train_step import duel_parts, duel_trainer, shared_tiny_model

# Where a call from TRL or transformers comes from (their installed packages' folders).
LIBRARIES = tuple(str(Path(module.__file__).parent) + "/" for module in (trl, transformers))
REPO = Path(__file__).resolve().parents[1]
PROJECT_SOURCES = sorted([*(p for d in ("pipeline", "rewards", "prompts", "sandbox", "datasets_build")
                            for p in (REPO / d).rglob("*.py")), REPO / "train.py", REPO / "evaluate.py"])


def trl_private_names() -> set[str]:
    """Private members of GRPOTrainer: its methods (with the Trainer's) and every ``self._x`` the two sources set
    or read."""
    import transformers.trainer
    import trl.trainer.grpo_trainer

    names = {n for n in dir(GRPOTrainer) if n.startswith("_") and not n.startswith("__")}
    for module in (trl.trainer.grpo_trainer, transformers.trainer):
        names |= set(re.findall(r"self\.(_[A-Za-z]\w*)", inspect.getsource(module)))
    return names


def private_uses(source: str, names: set[str]) -> set[str]:
    """``names`` used in ``source``: as an attribute (``x._name``) or as a bare string ("_name", as ``getattr`` takes
    it). Overrides are checked on the trainer class itself (``test_every_private_method_we_define_is_declared``)."""
    used: set[str] = set()
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    for before, token in zip(tokens, tokens[1:]):
        if token.type == tokenize.NAME and token.string in names and before.string == ".":
            used.add(token.string)
        elif token.type == tokenize.STRING and token.string.strip("'\"") in names:
            used.add(token.string.strip("'\""))
    return used


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


def test_no_private_trl_name_is_used_outside_the_declared_lists() -> None:
    names = trl_private_names()
    assert {"_prepare_inputs", "_calculate_rewards", "_metrics", "_log_metric"} <= names  # the check sees them
    declared = set(PRIVATE_HOOKS) | set(PRIVATE_ATTRIBUTES)
    undeclared = {f"{path.relative_to(REPO)}: {name}" for path in PROJECT_SOURCES
                  for name in private_uses(path.read_text(), names) - declared}
    assert undeclared == set(), f"private TRL names used but not declared in pipeline/training/trainer.py: {undeclared}"
    assert len(PRIVATE_HOOKS) <= 3  # issue 24: TRL's private surface down to what cannot be done otherwise


def test_the_source_check_finds_a_private_name_however_it_is_written() -> None:
    names = {"_prepare_inputs", "_metrics"}
    assert private_uses("x = trainer._prepare_inputs(batch)\n", names) == {"_prepare_inputs"}
    assert private_uses("super()._prepare_inputs(batch)\n", names) == {"_prepare_inputs"}
    assert private_uses("store = getattr(trainer, '_metrics', None)\n", names) == {"_metrics"}
    assert private_uses('"""TRL calls _prepare_inputs."""\n# trainer._metrics\n', names) == set()


def test_the_private_attributes_we_read_are_set_by_trl() -> None:
    source = inspect.getsource(GRPOTrainer.__init__)
    for name in PRIVATE_ATTRIBUTES:
        assert f"self.{name} =" in source or f"self.{name}:" in source, name


@pytest.mark.slow
def test_trl_calls_each_declared_hook_during_a_real_step_save_and_resume(tmp_path_factory, tmp_path) -> None:
    """Every ``PRIVATE_HOOKS`` method is wrapped on a real trainer instance, which records who called it; one
    discriminator step (generation, rewards, optimizer step), a checkpoint and a resume from it must reach each
    override from TRL's or transformers' own code (our code calling it does not count)."""
    tiny = shared_tiny_model(tmp_path_factory)
    policies = load_policies(ModelConfig(model_name_or_path=str(tiny), lora_r=4, lora_alpha=8, lora_dropout=0.0))
    rows = [dict(row, prompt=row["task_id"]) for row in list(load_problems("humaneval-mini"))[:2]]
    schedule = AdversarialSchedule(ScheduleConfig(stages=[1], role_steps=1, alternating_steps=0))
    assert schedule.phase_at(0) == Phase("discriminator", 1)
    duel, rollout = duel_parts(rows, schedule, ChainConfig(generator_tokens=[3], discriminator_tokens=[4],
                                                           temperature=1.0), tmp_path)

    def id_checksum(prompts, completions, completion_ids, **kwargs):
        return [float(sum(ids) % 1000) / 1000 for ids in completion_ids]

    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=2, max_steps=1,
                      learning_rate=0.05, use_cpu=True, bf16=False, activation_checkpointing=False,
                      report_to="none", save_steps=1, logging_steps=1, seed=0)
    trainer = duel_trainer(policies, rows, duel, rollout, id_checksum, args)
    callers: dict[str, list[str]] = defaultdict(list)

    def recorded(name: str, method):
        def hook(*args, **kwargs):
            callers[name].append(sys._getframe(1).f_code.co_filename)
            return method(*args, **kwargs)

        return hook

    for name in PRIVATE_HOOKS:
        setattr(trainer, name, recorded(name, getattr(trainer, name)))
    trainer.train()
    checkpoint = tmp_path / "checkpoint-1"
    assert (checkpoint / "generator" / "adapter_model.safetensors").is_file()
    trainer.train(resume_from_checkpoint=str(checkpoint))  # max_steps reached: loads the checkpoint, trains nothing

    from_libraries = {name for name, files in callers.items() if any(f.startswith(LIBRARIES) for f in files)}
    assert from_libraries == set(PRIVATE_HOOKS), f"not called by TRL/transformers: {set(PRIVATE_HOOKS) - from_libraries}"
