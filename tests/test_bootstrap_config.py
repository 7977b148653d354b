"""train.py's `job: bootstrap`: the recipe and flags (TRL style), its defaults, and clear errors before anything
loads (no model, no data)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import train
from pipeline.bootstrap import SUMMARY_FILE, finished_rounds

RECIPE = Path(train.__file__).resolve().parent / "configs" / "bootstrap.yaml"


@pytest.mark.parametrize("native_bf16", [True, False], ids=["avx512_bf16", "avx2_only"])
def test_the_recipe_is_read_as_the_bootstrap_job(native_bf16, monkeypatch):
    """The recipe and flags as the bootstrap reads them. Its bf16 autocast follows the CPU without a CUDA GPU: both
    CPUs are faked (the capabilities PyTorch reports), so every machine checks both branches."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: native_bf16)
    argv = ["--config", str(RECIPE)]
    assert train.recipe_job(argv) == "bootstrap"
    data, run, boot, sft, model = train.parse_bootstrap_config(argv + ["--rounds", "3", "--seed", "7"])
    assert boot.rounds == 3 and sft.seed == 7  # one seed flag: SFTConfig's, which the rounds sample with
    assert len(boot.generator_tokens) == 5 and boot.samples_per_problem >= 2 and boot.temperature > 0
    assert (model.lora_r, model.lora_alpha, sft.learning_rate) == (8, 16, 1e-4)  # the warm start's recipe
    assert sft.bf16 is native_bf16 and sft.use_cpu  # bf16 where native (here AMX), fp32 elsewhere


def test_defaults_without_a_recipe():
    data, run, boot, sft, model = train.parse_bootstrap_config(["--job", "bootstrap", "--output_dir", "unused"])
    assert boot.rounds == 2 and boot.seed_with_own_tests and boot.train_generator and boot.train_discriminator
    assert run.job == "bootstrap" and sft.warmup_steps == 0 and sft.lr_scheduler_type == "cosine"


@pytest.mark.parametrize("overrides, message", [
    (["--rounds", "0"], "rounds must be a positive integer"),
    (["--temperature", "0"], "temperature must be > 0"),
    (["--generator_tokens", "8", "8"], "generator_tokens must be 1 or 5 positive integers"),
    (["--train_generator", "false", "--train_discriminator", "false"], "nothing would train"),
    (["--resume_from_checkpoint", "some/checkpoint-3"], "resumes by round"),
    (["--eval_strategy", "steps", "--eval_steps", "1"], "has no eval dataset"),
    (["--generator_init_adapter", "/no/such/folder"], "no such folder"),
])  # fmt: skip
def test_configurations_that_cannot_work_end_with_a_config_error(overrides, message, tmp_path, capsys):
    assert train.main(["--config", str(RECIPE), "--output_dir", str(tmp_path / "out"), *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error:") and message in err


def test_finished_rounds_need_resume(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "round-1").mkdir(parents=True)
    (out / ".round-2.partial").mkdir()  # unfinished: not a round
    assert finished_rounds(out) == []   # no summary yet: not finished either
    (out / "round-1" / SUMMARY_FILE).write_text(json.dumps({"round": 1}))
    assert finished_rounds(out) == [1]
    assert train.main(["--config", str(RECIPE), "--output_dir", str(out)]) == 2
    err = capsys.readouterr().err
    assert "already holds finished bootstrap rounds [1]" in err and "--resume_from_checkpoint latest" in err
