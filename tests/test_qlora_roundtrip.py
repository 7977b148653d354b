"""The QLoRA round trip a user makes, on a 4-bit (NF4) base on the CPU (bitsandbytes >= 0.50 runs it there):
a warm start (SFT) on the 4-bit base; RL from its adapters on the 4-bit base, interrupted and resumed from a
checkpoint; the saved adapters evaluated by `evaluate.py` on a 4-bit base and on a full-precision one.

The RL run carries real gradients (`text_spread`, tests/spread_train.py: a reward that differs within every group,
`grad_norm > 0` checked), so the resumed run's adapters equal the uninterrupted run's only if the resume restored
the adapters, the optimizer's moments, the scheduler and the sampling RNG.

The model is the tiny Llama built from the embedded tokenizer (the code path is the model's size apart the
same); compute is fp32 (`bnb_4bit_compute_dtype: float32`), the dtype the rest of these tests pin.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import datasets_build
import train
from rewards import RewardConfig, default_reward_names
from rewards.registry import REWARD_FUNCS
from pipeline.models import ModelConfig
from pipeline.warmstart import WarmStartConfig, run_warm_start, sft_training_args

from conftest import load_evaluate_cli
from spread_train import SPREAD, text_spread
from test_train_step import shared_tiny_model

cli = load_evaluate_cli("duelcoder_evaluate_qlora")
QUANT = {"load_in_4bit": True, "bnb_4bit_compute_dtype": "float32"}


def lora(folder: Path, role: str) -> dict[str, torch.Tensor]:
    return load_file(str(folder / role / "adapter_model.safetensors"))


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_warm_start_rl_resume_and_evaluation_on_a_4bit_base(tmp_path_factory, tmp_path, monkeypatch):
    tiny = shared_tiny_model(tmp_path_factory)
    rows = list(datasets_build.load_problems("humaneval-mini"))[:4]

    # 1. Warm start on the 4-bit base: the generator adapter learns, the discriminator's stays fresh (B = 0).
    model_config = ModelConfig(model_name_or_path=str(tiny), lora_r=4, lora_alpha=8, **QUANT)
    args = sft_training_args(str(tmp_path / "sft"), max_steps=2, per_device_train_batch_size=2, warmup_steps=0,
                             save_strategy="no", learning_rate=1e-2, max_length=512)
    sft = run_warm_start(model_config, args, WarmStartConfig(max_examples=3), rows)
    assert any(v.any() for k, v in lora(sft, "generator").items() if "lora_B" in k)
    assert not any(v.any() for k, v in lora(sft, "discriminator").items() if "lora_B" in k)

    # 2. RL from the warm start on the 4-bit base, 4 steps (discriminator, generator, discriminator, generator).
    data = tmp_path / "data"
    datasets_build.build(datasets_build.BuildConfig(sources=("humaneval-mini",), out=str(data), progress=False))
    out = tmp_path / "rl"
    monkeypatch.setitem(REWARD_FUNCS, SPREAD, text_spread)
    recipe = tmp_path / "rl.yaml"
    recipe.write_text(yaml.safe_dump({
        "model_name_or_path": str(tiny), **QUANT, "lora_r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
        "generator_init_adapter": str(sft), "discriminator_init_adapter": str(sft),
        "dataset_dir": str(data), "train_splits": ["humaneval_mini_test"], "eval_splits": [],
        "allow_contamination": True, "max_train_problems": 4,
        "generator_tokens": [3], "discriminator_tokens": [4], "temperature": 1.0,
        "stages": [1, 2], "role_steps": 1, "alternating_steps": 0, "max_steps": 4,
        "per_device_train_batch_size": 2, "num_generations": 2, "learning_rate": 0.05, "weight_decay": 0.1,
        "reward_funcs": [*default_reward_names(RewardConfig()), SPREAD],
        "use_cpu": True, "bf16": False, "activation_checkpointing": True, "torch_threads": 1,
        "output_dir": str(out), "save_steps": 1, "logging_steps": 1, "report_to": "none", "seed": 0,
    }))  # fmt: skip
    assert train.main(["--config", str(recipe)]) == 0
    history = json.loads((out / "final" / "trainer_state.json").read_text())["log_history"]
    norms = [h["grad_norm"] for h in history if "loss" in h]
    assert len(norms) == 4 and all(n > 0 for n in norms), norms
    # Step 1 trained the discriminator only: the generator is the warm start's, bit for bit (AdamW's weight decay
    # moves every LoRA matrix of the adapter it updates, so "changed" means "updated" even with a zero gradient).
    assert same(lora(out / "checkpoint-1", "generator"), lora(sft, "generator"))
    assert not same(lora(out / "checkpoint-1", "discriminator"), lora(sft, "discriminator"))
    # Step 2 trained the generator only.
    assert same(lora(out / "checkpoint-2", "discriminator"), lora(out / "checkpoint-1", "discriminator"))
    assert not same(lora(out / "checkpoint-2", "generator"), lora(out / "checkpoint-1", "generator"))
    uninterrupted = {role: lora(out / "checkpoint-4", role) for role in ("generator", "discriminator")}

    # 3. Interrupted after step 2: resume from checkpoint-2 on the 4-bit base. Step 3 (discriminator) leaves the
    # generator exactly as checkpoint-2 restored it; the run finishes the schedule.
    for leftover in ("checkpoint-3", "checkpoint-4", "final"):
        shutil.rmtree(out / leftover)
    assert train.main(["--config", str(recipe), "--resume_from_checkpoint", "latest"]) == 0
    assert same(lora(out / "checkpoint-3", "generator"), lora(out / "checkpoint-2", "generator"))
    assert not same(lora(out / "checkpoint-3", "discriminator"), lora(out / "checkpoint-2", "discriminator"))
    assert json.loads((out / "final" / "trainer_state.json").read_text())["global_step"] == 4
    # The resumed run ends where the uninterrupted one ended: the adapters' values, bit for bit (same seed, the
    # checkpoint's optimizer, scheduler and RNG states restored on the 4-bit base).
    for role, expected in uninterrupted.items():
        assert same(lora(out / "final", role), expected), f"{role}: the resumed run's adapter differs"

    # 4. The adapters RL saved evaluate on a 4-bit base and on a full-precision base.
    for name, extra in (("nf4", ["--load_in_4bit", "true", "--bnb_4bit_compute_dtype", "float32"]),
                        ("full", ["--dtype", "float32"])):
        folder = tmp_path / f"eval-{name}"
        assert cli.main(["--model", str(tiny), "--adapter", str(out / "final"), "--benchmark", "humaneval-mini",
                         "--limit", "2", "--max_new_tokens", "8", "--output_dir", str(folder), *extra]) == 0
        results = json.loads((folder / "results.json").read_text())
        assert results["adapter"] == str(out / "final") and results["num_tasks"] == 2
        assert results["config"]["load_in_4bit"] is (name == "nf4")
