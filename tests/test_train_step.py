"""Real GRPOTrainer steps with the staged rollout on a tiny model (CPU): each phase moves only its own adapter.

Step 0 trains the discriminator, step 1 the generator (``ScheduleConfig(role_steps=1)``). The reward is
computed from the completion ids, so it differs between the completions of a group and the policy
gradient is not zero. AdamW runs with weight decay: had it touched the inactive adapter, that adapter's
(non-zero) LoRA A matrices would have shrunk.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from datasets import Dataset
from transformers import TrainerCallback
from trl import GRPOConfig

from datasets_build import load_problems
from pipeline.chain import ChainConfig
from pipeline.models.embedded import embedded_model_dir
from pipeline.models import ModelConfig
from pipeline.models.policies import load_policies
from pipeline.chain.rollout import ProblemIndex, StagedRollout
from pipeline.models.tiny import build_tiny_model
from pipeline.training.callbacks import DuelCallback
from pipeline.training.checkpoints import BestTracker
from pipeline.training.records import RunFiles
from pipeline.training.replay import ReplayBuffer
from pipeline.training.schedule import AdversarialSchedule, ScheduleConfig
from pipeline.training.state import DuelState
from pipeline.training.trainer import DuelGRPOTrainer, role_adapter_parameters
from prompts.record import PROBLEM_COLUMNS
from rewards import RewardConfig, make_scorer


def shared_tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model, built once per session (the embedded tokenizer is converted into the session's tmp)."""
    root = tmp_path_factory.getbasetemp()
    tiny = root / "train-tiny-model"
    if not (tiny / "config.json").is_file():
        build_tiny_model(tiny, tokenizer_source=str(embedded_model_dir(root / "train-embedded-cache")))
    return tiny


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return shared_tiny_model(tmp_path_factory)


def duel_parts(rows, schedule, chain, output_dir, replay: ReplayBuffer | None = None, num_generations: int = 2):
    """The run's state and the rollout that reads it, as train.py wires them."""
    duel = DuelState(schedule, replay if replay is not None else ReplayBuffer(1), BestTracker(output_dir))
    return duel, StagedRollout(ProblemIndex(rows), chain, duel, num_generations=num_generations)


def duel_trainer(policies, rows, duel, rollout, reward, args, *extra_callbacks):
    """A DuelGRPOTrainer with the one DuelCallback (its scorer is the rewards' one; a custom reward leaves it idle)."""
    scorer = make_scorer(["format"], RewardConfig(), keep_scored=True)
    return DuelGRPOTrainer(model=policies.model, reward_funcs=[reward], args=args, train_dataset=Dataset.from_list(rows),
                           processing_class=policies.tokenizer, rollout_func=rollout, duel=duel,
                           callbacks=[DuelCallback(duel, policies.model, scorer, RunFiles({})), *extra_callbacks])


class Probe(TrainerCallback):
    """Per step: the phase, which adapters hold a gradient at the optimizer step, which ones changed."""

    def __init__(self, model, duel):
        self.model, self.duel = model, duel
        self.records: list[tuple[str, set[str], set[str]]] = []

    def _params(self):
        return role_adapter_parameters(self.model)

    def on_step_begin(self, args, state, control, **kwargs):
        self.before = {role: [p.detach().clone() for _, p in ps] for role, ps in self._params().items()}

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.with_grad = {role for role, ps in self._params().items() if any(p.grad is not None for _, p in ps)}

    def on_step_end(self, args, state, control, **kwargs):
        changed = {role for role, ps in self._params().items()
                   if any(not torch.equal(p, old) for (_, p), old in zip(ps, self.before[role]))}
        self.records.append((self.duel.phase.role, self.with_grad, changed))


def train_two_phases(policies, rows, duel, rollout, reward, tmp_path):
    """Two real GRPO steps (one per role, the schedule's order) on CPU; returns the trainer and its Probe."""
    probe = Probe(policies.model, duel)
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=2, max_steps=2,
                      learning_rate=0.05, weight_decay=0.1, use_cpu=True, bf16=False, activation_checkpointing=False,
                      report_to="none", save_strategy="no", logging_steps=1, seed=0)
    trainer = duel_trainer(policies, rows, duel, rollout, reward, args, probe)
    trainer.train()
    return trainer, probe


@pytest.mark.slow
def test_each_phase_trains_only_its_own_adapter_and_replayed_rows_reach_the_rewards(tiny_dir, tmp_path):
    policies = load_policies(ModelConfig(model_name_or_path=str(tiny_dir), lora_r=4, lora_alpha=8, lora_dropout=0.0))
    model = policies.model
    problems = list(load_problems("humaneval-mini"))[:3]
    rows = [dict(row, prompt=row["task_id"]) for row in problems[:2]]
    replayed = dict(problems[2], tests=[*problems[2]["tests"], "assert True or 'a caught bug'"])
    buffer = ReplayBuffer(capacity=4, ratio=1.0, seed=0)
    buffer.update([{"task_id": replayed["task_id"], "failed": True, "replayed": False,
                    "item": {k: replayed[k] for k in PROBLEM_COLUMNS}}])
    schedule = AdversarialSchedule(ScheduleConfig(stages=[1], role_steps=1, alternating_steps=0))
    chain = ChainConfig(generator_tokens=[3], discriminator_tokens=[4], temperature=1.0)
    duel, rollout = duel_parts(rows, schedule, chain, tmp_path, replay=buffer)
    seen: list[dict] = []

    def id_checksum(prompts, completions, completion_ids, **kwargs):
        seen.append({k: kwargs[k] for k in ("task_id", "tests", "replayed", "role")})
        return [float(sum(ids) % 1000) / 1000 for ids in completion_ids]

    trainer, probe = train_two_phases(policies, rows, duel, rollout, id_checksum, tmp_path)
    assert probe.records == [
        ("discriminator", {"discriminator"}, {"discriminator"}),
        ("generator", {"generator"}, {"generator"}),
    ]
    # Both adapters sit in the optimizer, in the weight-decayed group: only the missing gradient spared one.
    decayed = {id(p) for group in trainer.optimizer.param_groups if group["weight_decay"] > 0 for p in group["params"]}
    for params in role_adapter_parameters(model).values():
        assert {id(p) for _, p in params if "lora_A" in _} <= decayed
    # The replayed problem replaced the dataset's rows in what the rewards saw (TRL merged the rollout's fields).
    assert [s["role"] for s in seen] == [["discriminator"] * 2, ["generator"] * 2]
    for batch in seen:
        assert batch["task_id"] == [replayed["task_id"]] * 2 and batch["replayed"] == [True, True]
        assert batch["tests"] == [replayed["tests"]] * 2


@pytest.mark.slow
def test_unified_mode_trains_one_adapter_on_both_roles_in_the_same_batch(tiny_dir, tmp_path):
    import json

    import yaml

    import datasets_build
    import train

    data = tmp_path / "data"
    datasets_build.build(datasets_build.BuildConfig(sources=("humaneval-mini",), out=str(data), progress=False))
    recipe = tmp_path / "unified.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny_dir), "lora_r": 4, "lora_alpha": 8, "dataset_dir": str(data),
        "train_splits": ["humaneval_mini_test"], "eval_splits": [], "allow_contamination": True,
        "max_train_problems": 4, "generator_tokens": [3], "discriminator_tokens": [4],
        "schedule": "unified", "curriculum": "all", "role_steps": 1, "alternating_steps": 0, "max_steps": 1,
        "per_device_train_batch_size": 4, "num_generations": 2, "use_cpu": True, "bf16": False,
        "activation_checkpointing": False, "output_dir": str(tmp_path / "out"), "save_strategy": "no",
        "logging_steps": 1, "report_to": "none",
    }))  # fmt: skip
    assert train.main(["--config", str(recipe)]) == 0
    final = tmp_path / "out" / "final"
    assert (final / "generator" / "adapter_config.json").is_file() and not (final / "discriminator").exists()
    logged = json.loads((final / "trainer_state.json").read_text())["log_history"][0]
    assert logged["phase/role"] == 2.0 and logged["phase/train_stage"] == 0.0
    # One batch held both roles: each role's metrics were computed from its own prompt group.
    assert "generator/format" in logged and "discriminator/format" in logged
    assert "all_stages/generator/format" in logged


@pytest.mark.slow
def test_a_4bit_base_trains_each_adapter_in_its_own_phase(tiny_dir, tmp_path):
    """QLoRA, the users' path, on the CPU (bitsandbytes' NF4 kernels): the base is really 4-bit, a
    discriminator step moves only the discriminator's LoRA weights and a generator step only the generator's."""
    import bitsandbytes as bnb

    policies = load_policies(ModelConfig(model_name_or_path=str(tiny_dir), lora_r=4, lora_alpha=8, lora_dropout=0.0,
                                         load_in_4bit=True, bnb_4bit_compute_dtype="float32"))
    model = policies.model
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    rows = [dict(row, prompt=row["task_id"]) for row in list(load_problems("humaneval-mini"))[:2]]
    schedule = AdversarialSchedule(ScheduleConfig(stages=[1], role_steps=1, alternating_steps=0))
    duel, rollout = duel_parts(rows, schedule, ChainConfig(generator_tokens=[3], discriminator_tokens=[4],
                                                           temperature=1.0), tmp_path)

    def id_checksum(prompts, completions, completion_ids, **kwargs):  # a reward with spread: non-zero gradients
        return [float(sum(ids) % 1000) / 1000 for ids in completion_ids]

    _, probe = train_two_phases(policies, rows, duel, rollout, id_checksum, tmp_path)
    assert probe.records == [
        ("discriminator", {"discriminator"}, {"discriminator"}),
        ("generator", {"generator"}, {"generator"}),
    ]


@pytest.mark.slow
def test_the_phase_guard_refuses_a_buffered_batch_generated_under_another_phase(tiny_dir, tmp_path):
    """The duel's last line of defence when a schedule is not aligned with generation batches (train.py refuses
    such recipes before anything loads, so only a direct trainer can reach it): with ``steps_per_generation=2`` one
    batch is generated for two optimizer steps, and the schedule hands step 1 to the generator. Training the
    discriminator's buffered completions under the generator's phase (its adapter, its rewards) must stop the run,
    at step 1, before that step trains anything."""
    policies = load_policies(ModelConfig(model_name_or_path=str(tiny_dir), lora_r=4, lora_alpha=8, lora_dropout=0.0))
    rows = [dict(row, prompt=row["task_id"]) for row in list(load_problems("humaneval-mini"))[:2]]
    schedule = AdversarialSchedule(ScheduleConfig(stages=[1], role_steps=1, alternating_steps=0))
    duel, rollout = duel_parts(rows, schedule, ChainConfig(generator_tokens=[3], discriminator_tokens=[4],
                                                           temperature=1.0), tmp_path)
    probe = Probe(policies.model, duel)

    def id_checksum(prompts, completions, completion_ids, **kwargs):
        return [float(sum(ids) % 1000) / 1000 for ids in completion_ids]

    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=2, max_steps=2,
                      steps_per_generation=2, learning_rate=0.05, use_cpu=True, bf16=False,
                      activation_checkpointing=False, report_to="none", save_strategy="no", logging_steps=1, seed=0)
    trainer = duel_trainer(policies, rows, duel, rollout, id_checksum, args, probe)
    with pytest.raises(RuntimeError, match="inside a generation batch generated under"):
        trainer.train()
    assert trainer.state.global_step == 1  # step 0 trained the discriminator on the fresh batch
    assert probe.records == [("discriminator", {"discriminator"}, {"discriminator"})]
    assert duel.phase.role == "generator" and duel.batch_phase.role == "discriminator"  # refused as step 1 began
