"""Each GPU recipe (`configs/qwen2.5-coder-*.yaml`) runs one training step on the CPU, so a recipe that cannot
start fails here rather than on the user's card.

Everything the recipe says is kept (4-bit NF4 with nested quantization and bf16 compute, LoRA shape, gradient
checkpointing, bf16 training, group size, batch shape and accumulation, the per-stage schedule, GRPO's loss and
clipping, replay) except what a CPU machine without the Hub cannot have: the model is the tiny Llama built from
the embedded model's tokenizer (the Qwen weights are not here; the code path is the same), the device is the CPU
(`use_cpu`), the token budgets are cut to 2 per stage, the data is HumanEval-mini, and the run stops after one step.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import datasets_build
import train

from test_train_step import shared_tiny_model

RECIPES = sorted((Path(__file__).resolve().parents[1] / "configs").glob("qwen2.5-coder-*.yaml"))
CPU_OVERRIDES = ("use_cpu", "model_name_or_path", "generator_tokens", "discriminator_tokens", "max_steps",
                 "output_dir", "report_to", "dataset_dir", "train_splits", "eval_splits", "allow_contamination",
                 "torch_threads")


@pytest.fixture(scope="module")
def humaneval_mini(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("gpu-recipe-data")
    datasets_build.build(datasets_build.BuildConfig(sources=("humaneval-mini",), out=str(data), progress=False))
    return data


def test_there_are_two_gpu_recipes_and_the_overrides_leave_their_training_settings_alone():
    assert [p.name for p in RECIPES] == ["qwen2.5-coder-1.5b-4090.yaml", "qwen2.5-coder-7b-5090.yaml"]
    for path in RECIPES:
        recipe = yaml.safe_load(path.read_text())
        assert recipe["load_in_4bit"] and recipe["bf16"] and recipe["activation_checkpointing"]
        assert not set(recipe) & {"use_cpu", "max_steps", "torch_threads"}  # the test adds these; the rest is the recipe's


@pytest.mark.slow
@pytest.mark.parametrize("recipe_file", RECIPES, ids=lambda p: p.stem)
def test_gpu_recipe_runs_one_step_on_the_cpu(recipe_file: Path, humaneval_mini: Path, tmp_path_factory, tmp_path):
    recipe = yaml.safe_load(recipe_file.read_text())
    tiny = shared_tiny_model(tmp_path_factory)
    out = tmp_path / "run"
    argv = ["--config", str(recipe_file), "--use_cpu", "true", "--model_name_or_path", str(tiny),
            "--generator_tokens", "2", "--discriminator_tokens", "2", "--max_steps", "1", "--output_dir", str(out),
            "--report_to", "none", "--dataset_dir", str(humaneval_mini), "--train_splits", "humaneval_mini_test",
            "--eval_splits", "humaneval_mini_test", "--allow_contamination", "true", "--torch_threads", "1"]
    data, run, rl, schedule, chain, engine, reward, bench, training, model = train.parse_config(argv)
    # What the recipe says is what runs: 4-bit base, bf16, checkpointing, the batch shape and the group size.
    assert (model.load_in_4bit, model.use_bnb_nested_quant, model.bnb_4bit_compute_dtype) == (
        True, True, "bfloat16")
    assert (training.bf16, training.activation_checkpointing, training.use_cpu) == (True, True, True)
    assert (training.per_device_train_batch_size, training.gradient_accumulation_steps,
            training.num_generations) == (recipe["per_device_train_batch_size"],
                                          recipe["gradient_accumulation_steps"], recipe["num_generations"])
    assert (schedule.role_steps, schedule.curriculum) == (recipe["role_steps"], recipe["curriculum"])

    assert train.main(argv) == 0
    final = out / "final"
    for role in ("generator", "discriminator"):
        config = json.loads((final / role / "adapter_config.json").read_text())
        assert (config["r"], config["lora_alpha"]) == (recipe["lora_r"], recipe["lora_alpha"])
    state = json.loads((final / "trainer_state.json").read_text())
    assert state["global_step"] == 1
    step = next(h for h in state["log_history"] if "phase/role" in h)
    assert (step["phase/role"], step["phase/train_stage"]) == (0.0, 1.0)  # the schedule's first phase: discriminator, stage 1
    recorded = yaml.safe_load((final / "recipe.yaml").read_text())
    assert recorded["load_in_4bit"] is True and recorded["per_device_train_batch_size"] == recipe[
        "per_device_train_batch_size"]
