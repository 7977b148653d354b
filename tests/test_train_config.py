"""train.py's configuration: YAML + command line (TRL style), and clear errors before anything heavy loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

import datasets_build
import train
from datasets_build import DataSelectionError
from pipeline.models import resolve_dtype


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real built DatasetDict with one split (HumanEval-mini), references verified in the sandbox."""
    out = tmp_path_factory.mktemp("data") / "built"
    datasets_build.build(datasets_build.BuildConfig(sources=("humaneval-mini",), out=str(out), progress=False))
    return out


@pytest.fixture
def recipe(tmp_path: Path, dataset_dir: Path) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "out"), "dataset_dir": str(dataset_dir),
        "train_splits": ["humaneval_mini_test"], "eval_splits": [], "allow_contamination": True,
        "use_cpu": True, "bf16": False, "per_device_train_batch_size": 2, "num_generations": 2,
        "stages": [1, 2], "role_steps": 1, "alternating_steps": 0, "report_to": "none",
    }))  # fmt: skip
    return path


def run_main(recipe: Path, *overrides: str) -> int:
    return train.main(["--config", str(recipe), *overrides])


@pytest.mark.parametrize("overrides, message", [
    (["--reward_funcs", "generator_pass_rate", "nope"], "unknown reward function"),
    (["--stages", "1", "7"], "1..5"),
    (["--per_device_train_batch_size", "3"], "must be divisible by num_generations"),
    (["--beta", "0.04"], "beta=0.04"),
    (["--num_iterations", "2"], "inside a generation batch"),
    (["--save_steps", "3", "--role_steps", "2", "--num_iterations", "2"], "save_steps=3"),
    (["--train_splits", "mbpp_train"], "mbpp_train"),
    (["--save_total_limit", "1"], "save_total_limit"),
    (["--use_vllm", "true"], "use_vllm"),
    (["--generation_engine", "sglang"], "generation_engine must be one of"),
    (["--generation_engine", "vllm", "--engine_max_loras", "1"], "engine_max_loras must be >= 2"),
    (["--generation_engine", "vllm", "--engine_url", "localhost:8000"], "engine_url must start with http://"),
    (["--schedule", "unified"], "needs >= 2 groups"),
    (["--eval_splits", "humaneval_mini_test", "--allow_contamination", "false"], "overlap evaluation tasks"),
    (["--allow_contamination", "false"], "contamination cannot be checked"),
    (["--replay_ratio", "1.5"], "replay_ratio"),
    (["--generator_init_adapter", "/nonexistent/final"], "generator_init_adapter '/nonexistent/final': no such"),
    (["--discriminator_init_adapter", "outputs/no/such/run/final"], "discriminator_init_adapter"),
    (["--schedule", "unified", "--discriminator_init_adapter", "/x"], "the unified schedule trains the generator adapter alone"),
    (["--bench_modes", "direct", "nope"], "bench_modes must be distinct values"),
    (["--bench_benchmark", "apps"], "bench_benchmark must be one of"),
    (["--bench_metric_for_best", "eval_bench/staged/pass@1"], "is not logged by the evaluation"),
    (["--collapse_guard_threshold", "0"], "collapse guard: threshold"),
])  # fmt: skip
def test_configs_that_cannot_work_fail_before_loading_anything(recipe, capsys, overrides, message):
    assert run_main(recipe, *overrides) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error:") and message in err


def test_an_init_adapter_folder_must_hold_that_roles_adapter(recipe, tmp_path, capsys):
    empty = tmp_path / "not_an_adapter"
    empty.mkdir()
    assert run_main(recipe, "--generator_init_adapter", str(empty)) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error: generator_init_adapter:") and "is not a peft adapter folder" in err


SFT_RECIPE = Path(__file__).resolve().parents[1] / "configs" / "sft_warmstart.yaml"


@pytest.mark.parametrize("overrides, message", [
    (["--generator_init_adapter", "/nonexistent/final"], "generator_init_adapter '/nonexistent/final': no such folder"),
    (["--eval_strategy", "steps"], "the warm start has no eval dataset"),
    (["--stage_format", "true"], "stage_format needs a teacher"),
    (["--bench_modes", "nope"], "bench_modes must be distinct values"),
    (["--num_generations", "4"], "num_generations"),       # a GRPO flag: not part of a warm start
    (["--max_train_problems", "0"], "max_train_problems must be >= 1"),
    (["--push_to_hub", "true"], "push_to_hub"),
    (["--resume_from_checkpoint", "/nonexistent/checkpoint-4"], "resume_from_checkpoint '/nonexistent/checkpoint-4'"),
])  # fmt: skip
def test_warm_start_configs_that_cannot_work_fail_before_loading_anything(capsys, overrides, message):
    assert train.main(["--config", str(SFT_RECIPE), *overrides]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error:") and message in err


def test_the_job_is_read_before_parsing(recipe, tmp_path, capsys):
    assert train.recipe_job(["--config", str(SFT_RECIPE)]) == "sft"
    assert train.recipe_job(["--config", str(recipe)]) == "rl"
    assert train.recipe_job(["--config", str(recipe), "--job=sft"]) == "sft"
    assert train.main(["--config", str(recipe), "--job", "sft"]) == 2  # an RL recipe read as a warm start
    assert "Unknown arguments from config file" in capsys.readouterr().err
    assert train.main(["--config", str(recipe), "--job", "ppo"]) == 2
    assert "job must be one of ('rl', 'sft', 'bootstrap'), got 'ppo'" in capsys.readouterr().err
    old = tmp_path / "old.yaml"  # a recipe from before the redesign names its replacement, not "unknown field"
    old.write_text("mode: sft\n")
    assert train.main(["--config", str(old)]) == 2
    assert "`mode:` was renamed: `job: rl|sft|bootstrap`" in capsys.readouterr().err
    assert train.main(["--config", str(recipe), "--mode", "unified"]) == 2
    assert "--mode was renamed" in capsys.readouterr().err
    broken = tmp_path / "broken.yaml"
    broken.write_text("- a list, not a mapping\n")
    assert train.main(["--config", str(broken)]) == 2
    assert "must hold a YAML mapping" in capsys.readouterr().err


@pytest.mark.parametrize("recipe_file", sorted((SFT_RECIPE.parent).glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_recipe_parses_as_its_job(recipe_file):
    import torch

    recipe = yaml.safe_load(recipe_file.read_text())
    argv = ["--config", str(recipe_file)]
    if recipe.get("bf16") and not recipe.get("use_cpu") and not torch.cuda.is_available():
        argv += ["--use_cpu", "true"]  # a GPU recipe: TrainingArguments refuses bf16 on a machine without a GPU
    parsers = {"sft": train.parse_sft_config, "bootstrap": train.parse_bootstrap_config}
    parsed = parsers.get(train.recipe_job(argv), train.parse_config)(argv)
    assert parsed


@pytest.mark.parametrize("native_bf16", [True, False], ids=["avx512_bf16", "avx2_only"])
def test_warm_start_defaults_are_the_plans_recipe_and_cpu_safe(native_bf16, monkeypatch):
    """Without a CUDA GPU, bf16 autocast exactly where the CPU has native bf16, as `dtype: auto` picks bf16 weights
    there. Both CPUs are faked (the capabilities PyTorch reports), so every machine checks both branches."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    data, run, warm, bench, sft, model = train.parse_sft_config(["--job", "sft", "--output_dir", "unused"])
    assert (model.lora_r, model.lora_alpha, sft.learning_rate, sft.warmup_steps) == (8, 16, 1e-4, 0.1)
    assert (sft.bf16, sft.use_cpu, sft.activation_checkpointing) == (native_bf16, True, False)
    assert resolve_dtype(model.dtype) == (torch.bfloat16 if native_bf16 else torch.float32)
    rl = train.parse_config(["--output_dir", "unused", "--use_cpu", "true"])[train.RL_TYPES.index(train.GRPOConfig)]
    assert (rl.bf16, rl.activation_checkpointing) == (native_bf16, False)
    data, run, warm, bench, sft, model = train.parse_sft_config(["--config", str(SFT_RECIPE), "--lora_r", "4"])
    assert (model.lora_r, model.lora_alpha, sft.learning_rate, sft.max_steps) == (4, 16, 1e-4, 4)
    assert bench.bench_modes == ["direct"] and bench.bench_eval_steps == 4 and data.train_splits[0] == "mbpp_train"


def test_missing_data_files_are_named(recipe, capsys):
    without_data = recipe.parent / "no_data.yaml"
    config = yaml.safe_load(recipe.read_text())
    del config["dataset_dir"]
    without_data.write_text(yaml.safe_dump(config))
    assert run_main(without_data, "--mbpp_file", "/nonexistent/mbpp.jsonl") == 2
    assert "mbpp_file /nonexistent/mbpp.jsonl does not exist" in capsys.readouterr().err
    assert run_main(recipe, "--dataset_dir", str(recipe.parent)) == 2
    assert "not a DatasetDict folder" in capsys.readouterr().err


def test_existing_checkpoints_need_an_explicit_resume(recipe, tmp_path, capsys):
    (tmp_path / "out" / "checkpoint-2").mkdir(parents=True)
    assert run_main(recipe) == 2
    assert "--resume_from_checkpoint latest" in capsys.readouterr().err
    assert run_main(recipe, "--resume_from_checkpoint", str(tmp_path / "out" / "checkpoint-2")) == 2
    assert "no COMPLETE marker" in capsys.readouterr().err


def test_command_line_overrides_yaml_and_the_effective_recipe_records_it(recipe):
    argv = ["--config", str(recipe), "--stages", "3", "--learning_rate=2e-5", "--weights", '{"format": 0.5}',
            "--resume_from_checkpoint", "latest", "--activation_checkpointing", "false"]
    data, run, rl, schedule, chain, engine, reward, bench, training, model = train.parse_config(argv)
    assert schedule.stages == [3] and schedule.role_steps == 1
    assert training.learning_rate == 2e-5 and training.per_device_train_batch_size == 2
    assert reward.weights == {"format": 0.5} and model.lora_r == 16 and bench.bench_eval_steps is None
    recorded = train.effective_recipe(argv, train.RL_TYPES)
    assert recorded["stages"] == [3] and recorded["learning_rate"] == 2e-5 and recorded["weights"] == {"format": 0.5}
    assert recorded["activation_checkpointing"] is False and "resume_from_checkpoint" not in recorded
    assert recorded["num_generations"] == 2  # from the YAML
    rerun = recipe.parent / "rerun.yaml"
    rerun.write_text(yaml.safe_dump(recorded))
    again = train.parse_config(["--config", str(rerun)])
    assert again[3] == schedule and again[6].weights == {"format": 0.5} and again[8].learning_rate == 2e-5


def test_training_rows_get_a_unique_short_prompt(recipe):
    data = train.parse_config(["--config", str(recipe)])[0]
    dataset = train.training_problems(data)
    assert len(dataset) == 20
    assert dataset[0]["prompt"].startswith("HumanEvalMini/") and len(set(dataset["prompt"])) == 20
    data.max_train_problems = 3
    assert len(train.training_problems(data)) == 3


def test_train_task_ids_file_keeps_the_listed_problems_and_refuses_unknown_ones(recipe, tmp_path):
    data = train.parse_config(["--config", str(recipe)])[0]
    ids = tmp_path / "ids.txt"
    ids.write_text("# 2 of 20, measured\nHumanEvalMini/5\nHumanEvalMini/1  # one of 4 passed\n")
    data.train_task_ids_file = str(ids)
    dataset = train.training_problems(data)
    assert dataset["task_id"] == ["HumanEvalMini/1", "HumanEvalMini/5"]
    data.max_train_problems = 3  # the filters apply first: task 5 is not among the first 3
    with pytest.raises(DataSelectionError, match=r"1 listed task id\(s\) are not among the 3 problems .*'HumanEvalMini/5'"):
        train.training_problems(data)
