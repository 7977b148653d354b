"""train.py's configuration: YAML + command line (TRL style), and clear errors before anything heavy loads."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import datasets_build
import train


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
    (["--load_in_4bit", "true"], "needs a CUDA GPU"),
    (["--per_device_train_batch_size", "3"], "must be divisible by num_generations"),
    (["--beta", "0.04"], "beta=0.04"),
    (["--num_iterations", "2"], "inside a generation batch"),
    (["--save_steps", "3", "--role_steps", "2", "--num_iterations", "2"], "save_steps=3"),
    (["--train_splits", "mbpp_train"], "mbpp_train"),
    (["--save_total_limit", "1"], "save_total_limit"),
    (["--use_vllm", "true"], "use_vllm"),
    (["--mode", "unified"], "needs >= 2 groups"),
    (["--eval_splits", "humaneval_mini_test", "--allow_contamination", "false"], "overlap evaluation tasks"),
    (["--allow_contamination", "false"], "contamination cannot be checked"),
    (["--separate_discriminator_model", "embedded"], "ONE PeftModel"),
    (["--replay_ratio", "1.5"], "replay_ratio"),
])  # fmt: skip
def test_configs_that_cannot_work_fail_before_loading_anything(recipe, capsys, overrides, message):
    assert run_main(recipe, *overrides) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error:") and message in err


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
            "--resume_from_checkpoint", "latest", "--gradient_checkpointing", "false"]
    script, schedule, chain, reward, training, model = train.parse_config(argv)
    assert schedule.stages == [3] and schedule.role_steps == 1
    assert training.learning_rate == 2e-5 and training.per_device_train_batch_size == 2
    assert reward.weights == {"format": 0.5} and model.lora_r == 16
    recorded = train.effective_recipe(argv)
    assert recorded["stages"] == [3] and recorded["learning_rate"] == 2e-5 and recorded["weights"] == {"format": 0.5}
    assert recorded["gradient_checkpointing"] is False and "resume_from_checkpoint" not in recorded
    assert recorded["num_generations"] == 2  # from the YAML
    rerun = recipe.parent / "rerun.yaml"
    rerun.write_text(yaml.safe_dump(recorded))
    again = train.parse_config(["--config", str(rerun)])
    assert again[1] == schedule and again[3].weights == {"format": 0.5} and again[4].learning_rate == 2e-5


def test_training_rows_get_a_unique_short_prompt(recipe):
    script = train.parse_config(["--config", str(recipe)])[0]
    dataset, n = train.load_training_problems(script)
    assert n == len(dataset) == 20
    assert dataset[0]["prompt"].startswith("HumanEvalMini/") and len(set(dataset["prompt"])) == n
    script.max_train_problems = 3
    assert train.load_training_problems(script)[1] == 3
