"""End to end on the embedded SmolLM2-135M-Instruct, through `accelerate launch` on CPU: the warm-start recipe
(`configs/sft_warmstart.yaml`, `mode: sft`) for two steps with the HumanEval-mini benchmark evaluated during
training, then RL (GRPO) starting from the adapters it saved.

Checked: the benchmark's numbers reach the trainer's log history and best_eval/; only the generator
adapter moved in the warm start; RL loads exactly the warm start's weights (the generator adapter of RL's
first checkpoint, taken in a discriminator phase, is bit-identical to the warm start's) and trains from
them; run_info.json and the model card record where RL started.

The tiny RL run's rewards do not differ within a group (zero advantages, zero gradients), so what moves the
weights there is AdamW's decoupled weight decay: enough to see which adapter the optimizer updated.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from pipeline.training.card import render_model_card
from test_train_e2e import REPO_ROOT, adapter, changed, launch

SFT_STEPS = 2
BENCH = "eval_bench/direct/pass@1"


def _run(recipe: Path, log: Path, *extra: str, timeout: int = 400) -> str:
    process = launch(recipe, log, *extra, num_processes=1)
    code = process.wait(timeout=timeout)
    text = log.read_text()
    assert code == 0, text[-4000:]
    return text


def _logged(folder: Path) -> list[dict]:
    return json.loads((folder / "trainer_state.json").read_text())["log_history"]


@pytest.fixture(scope="module")
def sft_run(tmp_path_factory, mbpp_file) -> tuple[Path, str]:
    """The warm-start recipe, shortened: 8 problems, 2 steps, the benchmark at step 2 on 2 tasks."""
    out = tmp_path_factory.mktemp("sft") / "run"
    text = _run(REPO_ROOT / "configs" / "sft_warmstart.yaml", out.parent / "sft.log",
                "--output_dir", str(out), "--mbpp_file", str(mbpp_file), "--report_to", "none",
                "--max_steps", str(SFT_STEPS), "--save_steps", "1", "--max_train_problems", "8", "--max_examples", "8",
                "--bench_eval_steps", str(SFT_STEPS), "--bench_limit", "2", "--bench_max_new_tokens", "48")
    return out, text


@pytest.mark.slow
def test_sft_recipe_trains_the_generator_and_logs_the_benchmark(sft_run):
    out, text = sft_run
    final = out / "final"
    assert f"adapters saved: {final / 'generator'}" in text
    record = json.loads((final / "warmstart.json").read_text())
    assert record["steps"] == SFT_STEPS and record["lora"] == {"r": 8, "alpha": 16}
    assert record["learning_rate"] == 1e-4 and record["data"]["kept"] == 8

    evaluated = [entry for entry in _logged(final) if BENCH in entry]
    assert [entry["step"] for entry in evaluated] == [SFT_STEPS]
    for name in ("pass@1", "syntax_valid", "collapse_rate"):
        assert 0.0 <= evaluated[0][f"eval_bench/direct/{name}"] <= 1.0
    assert "loss" in evaluated[0] and "probe/collapse_rate" in evaluated[0]  # the same log line as the loss and probe
    best = json.loads((out / "best_eval" / "best_eval.json").read_text())
    assert best["step"] == SFT_STEPS and best["metric"] == BENCH and best["num_tasks"] == 2

    generator, discriminator = adapter(final, "generator"), adapter(final, "discriminator")
    assert any(v.any() for k, v in generator.items() if "lora_B" in k)          # trained
    assert not any(v.any() for k, v in discriminator.items() if "lora_B" in k)  # untouched: still the base
    assert yaml.safe_load((final / "recipe.yaml").read_text())["max_steps"] == SFT_STEPS


@pytest.mark.slow
def test_an_interrupted_warm_start_resumes_from_its_latest_checkpoint(sft_run, mbpp_file, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(sft_run[0], out)
    shutil.rmtree(out / "checkpoint-2")  # as if the run had been killed after step 1's checkpoint
    _run(REPO_ROOT / "configs" / "sft_warmstart.yaml", tmp_path / "resume.log",
         "--output_dir", str(out), "--mbpp_file", str(mbpp_file), "--report_to", "none",
         "--max_steps", "3", "--save_steps", "1", "--max_train_problems", "8", "--max_examples", "8",
         "--resume_from_checkpoint", "latest")
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    losses = [entry["step"] for entry in state["log_history"] if "loss" in entry]
    assert state["global_step"] == 3 and losses == [1, 2, 3]  # step 1 from the checkpoint, 2 and 3 trained again
    assert json.loads((out / "final" / "warmstart.json").read_text())["steps"] == 3


@pytest.mark.slow
def test_rl_starts_from_the_warm_start_adapters_and_trains_them(sft_run, mbpp_file, tmp_path):
    sft_final = sft_run[0] / "final"
    out = tmp_path / "rl"
    recipe = tmp_path / "rl.yaml"
    recipe.write_text(yaml.safe_dump({
        "generator_init_adapter": str(sft_final), "discriminator_init_adapter": str(sft_final),
        "mbpp_file": str(mbpp_file), "train_splits": ["mbpp_train"], "max_reference_lines": 3,
        "max_train_problems": 2, "generator_tokens": [4], "discriminator_tokens": [8], "temperature": 1.0,
        "stages": [1], "role_steps": 1, "alternating_steps": 0, "max_steps": 2,
        "per_device_train_batch_size": 2, "num_generations": 2, "learning_rate": 1e-3, "weight_decay": 0.1,
        "torch_threads": 1, "use_cpu": True, "bf16": False, "activation_checkpointing": False,
        "output_dir": str(out), "save_steps": 1, "logging_steps": 1, "report_to": "none", "seed": 0,
        "bench_eval_steps": 2, "bench_limit": 1, "bench_max_new_tokens": 48,
    }))  # fmt: skip
    _run(recipe, tmp_path / "rl.log")

    # The recorded start point is the warm start's folder, down to the bytes of its weights.
    start = json.loads((out / "run_info.json").read_text())["start"]
    for role in ("generator", "discriminator"):
        weights = sft_final / role / "adapter_model.safetensors"
        assert start[role]["from"] == str(sft_final)
        assert start[role]["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
        assert start[role]["warmstart"]["steps"] == SFT_STEPS
    card = render_model_card(out / "final", "someone/duel")
    assert f"started from a supervised warm start ({SFT_STEPS} steps" in card and str(sft_final) in card

    # Step 1 (discriminator phase) leaves the generator as loaded: exactly the warm start's weights.
    sft_generator = adapter(sft_final, "generator")
    first = out / "checkpoint-1"
    loaded = adapter(first, "generator")
    assert loaded.keys() == sft_generator.keys()
    assert all(torch.equal(loaded[k], sft_generator[k]) for k in loaded)
    assert changed(adapter(sft_final, "discriminator"), adapter(first, "discriminator"))
    # Step 2 (generator phase) trains the warm-started generator.
    assert changed(loaded, adapter(out / "checkpoint-2", "generator"))
    assert changed(sft_generator, adapter(out / "final", "generator"))

    logs = _logged(out / "final")
    at_step_2 = [entry for entry in logs if entry.get("step") == 2 and "loss" in entry]
    assert at_step_2 and 0.0 <= at_step_2[0][BENCH] <= 1.0
    assert 0.0 <= at_step_2[0]["generator/collapse_rate"] <= 1.0  # what the RL collapse guard watches
    assert (out / "best_eval" / "best_eval.json").is_file()
