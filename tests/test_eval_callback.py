"""Benchmark evaluation during training (pipeline/training/benchmark.py) with real TRL trainers on the tiny
random model. Its answers are noise, so these tests check the machinery: when the callback fires, what
reaches the logs, the model's state after an evaluation, and which adapters `best_eval/` holds.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from datasets import Dataset
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments
from trl import GRPOConfig, GRPOTrainer, SFTConfig, SFTTrainer

import datasets_build
from pipeline.chain import ChainConfig
from pipeline.training.benchmark import (
    BEST_EVAL_DIR,
    BEST_EVAL_FILE,
    BenchmarkCallback,
    BenchmarkEvalConfig,
    check_rows,
    spread,
)
from pipeline.models import ModelConfig
from pipeline.models.policies import load_policies
from pipeline.chain.rollout import Phase, ProblemIndex, RolloutState, StagedRollout
from pipeline.models.tiny import build_tiny_model
from prompts import direct_messages, load_templates

RATES = ("pass@1", "syntax_valid", "collapse_rate", "test_pass_rate")


@pytest.fixture(scope="module")
def rows() -> list[dict]:
    return list(datasets_build.load_problems("humaneval-mini"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


ROOT = Path(__file__).resolve().parents[1]


def _policies(tiny: Path):
    return load_policies(ModelConfig(model_name_or_path=str(tiny), lora_r=4, lora_alpha=8))


def _generator_weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(model, adapter_name="generator").items()}


class StateAfterEvaluation(TrainerCallback):
    """Added after the benchmark callback: what the model looks like once it has evaluated, and its weights."""

    def __init__(self, model):
        self.model = model
        self.seen: list[tuple[int, bool, str, bool]] = []
        self.weights: dict[int, dict[str, torch.Tensor]] = {}

    def on_train_begin(self, args, state, control, **kwargs):
        self.weights[state.global_step] = _generator_weights(self.model)

    def on_step_end(self, args, state, control, **kwargs):
        trainable = all(p.requires_grad for n, p in self.model.named_parameters() if ".generator." in n)
        self.seen.append((state.global_step, self.model.training, self.model.active_adapter, trainable))
        self.weights[state.global_step] = _generator_weights(self.model)


def _evaluated(log_history: list[dict], key: str) -> dict[int, float]:
    return {entry["step"]: entry[key] for entry in log_history if key in entry}


def test_config_rejects_what_cannot_work():
    for bad in ({"bench_modes": ["fast"]}, {"bench_modes": ["direct", "direct"]}, {"bench_limit": 0},
                {"bench_eval_steps": 0}, {"bench_generator_tokens": [8, 8]}, {"bench_max_new_tokens": 0},
                {"bench_metric_for_best": "eval_bench/staged/pass@1"}, {"bench_collapse_threshold": 0.0}):
        with pytest.raises(ValueError):
            BenchmarkEvalConfig(**bad)
    assert BenchmarkEvalConfig(bench_modes=["staged"]).metric_for_best == "eval_bench/staged/pass@1"
    assert not BenchmarkEvalConfig(bench_metric_for_best="eval_bench/direct/collapse_rate").greater_is_better
    with pytest.raises(ValueError, match="nothing to evaluate"):
        BenchmarkCallback([], BenchmarkEvalConfig(bench_modes=[]))


def test_rows_are_checked_and_spread(rows):
    with pytest.raises(ValueError, match="lacks tests"):
        check_rows([{k: v for k, v in rows[0].items() if k != "tests"}])
    with pytest.raises(ValueError, match="non-empty list of test strings"):
        check_rows([dict(rows[0], tests=[])])
    with pytest.raises(ValueError, match="repeats its task_id"):
        check_rows([rows[0], rows[0]])
    picked = spread(check_rows(rows), 4)
    assert len(picked) == 4 and len({row["category"] for row in picked}) == 4  # mini has 4 categories of 5
    assert spread(rows, None) == rows and spread(rows, 100) == rows


def _sft_trainer(tiny: Path, rows: list[dict], output_dir: Path, max_steps: int, ddp_backend: str | None = None,
                 **config: object):
    """SFT on direct-prompt examples, logging only every 10 steps, with the benchmark callback attached."""
    policies = _policies(tiny)
    model = policies.activate("generator")
    templates = load_templates("default")
    dataset = Dataset.from_list([
        {"prompt": direct_messages(templates, problem=r["problem"], entry_point=r["entry_point"],
                                   signature=r["signature"]),
         "completion": [{"role": "assistant", "content": r["reference_solution"]}]} for r in rows[:8]])
    args = SFTConfig(output_dir=str(output_dir), max_steps=max_steps, per_device_train_batch_size=2,
                     learning_rate=1e-2, use_cpu=True, bf16=False, report_to="none", save_strategy="no",
                     logging_steps=10, ddp_backend=ddp_backend)
    trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=policies.tokenizer)
    config = BenchmarkEvalConfig(bench_modes=["direct", "staged"], bench_eval_steps=1, bench_limit=3,
                                 bench_max_new_tokens=16, bench_generator_tokens=[4, 4, 4, 4, 12],
                                 bench_sandbox_workers=2, **config)
    return trainer, BenchmarkCallback(rows, config).attach(trainer), policies


@pytest.fixture(scope="module")
def sft_run(tiny, rows, tmp_path_factory):
    """Two SFT steps, evaluated at start and after every step in both modes."""
    trainer, callback, policies = _sft_trainer(tiny, rows, tmp_path_factory.mktemp("sft"), 2,
                                               bench_eval_on_start=True)
    model = trainer.model
    after = StateAfterEvaluation(model)
    trainer.add_callback(after)
    policies.tokenizer.padding_side = "right"  # as a trainer's collator might leave it
    trainer.train()
    return trainer, callback, after, policies.tokenizer


def test_sft_logs_the_benchmark_at_each_evaluation_step(sft_run):
    trainer, callback, after, tokenizer = sft_run
    history = trainer.state.log_history
    for mode in ("direct", "staged"):
        for name in RATES:
            values = _evaluated(history, f"eval_bench/{mode}/{name}")
            assert sorted(values) == [0, 1, 2], (mode, name)
            assert all(0.0 <= v <= 1.0 for v in values.values())
        assert all(0 < v <= 16 + 4 * 4 + 12 for v in _evaluated(history, f"eval_bench/{mode}/mean_tokens").values())
    # next to the training metrics, although logging_steps=10 would not have logged steps 1 and 2
    assert all("loss" in entry for entry in history if entry["step"] > 0 and "eval_bench/direct/pass@1" in entry)
    assert [step for step, _ in callback.history] == [0, 1, 2]
    assert callback.sandbox is None  # closed at train end
    assert tokenizer.padding_side == "right"


def test_sft_model_is_back_in_training_state_after_each_evaluation(sft_run):
    _, _, after, _ = sft_run
    assert after.seen == [(1, True, "generator", True), (2, True, "generator", True)]


def test_sft_best_eval_holds_the_adapters_of_the_best_step(sft_run):
    trainer, callback, after, _ = sft_run
    logged = _evaluated(trainer.state.log_history, "eval_bench/direct/pass@1")
    best_step = min(step for step, value in logged.items() if value == max(logged.values()))  # ties: earliest
    folder = Path(trainer.args.output_dir) / BEST_EVAL_DIR
    record = json.loads((folder / BEST_EVAL_FILE).read_text())
    assert record["step"] == best_step == callback.best_step
    assert record["metric"] == "eval_bench/direct/pass@1" and record["value"] == logged[best_step]
    assert set(record["tasks"]) == {"direct", "staged"} and len(record["tasks"]["direct"]) == 3
    saved = load_file(str(folder / "generator" / "adapter_model.safetensors"))
    expected = after.weights[best_step]
    assert len(saved) == len(expected) > 0
    assert all(torch.equal(saved[k], expected[k].cpu()) for k in expected)
    assert (folder / "discriminator" / "adapter_config.json").is_file()


def test_other_processes_only_keep_logging_in_step(sft_run):
    trainer, callback, _, _ = sft_run
    measured = len(callback.history)
    control = TrainerControl()
    state = TrainerState(global_step=3, is_world_process_zero=False)
    callback.on_step_end(trainer.args, state, control, model=trainer.model)
    assert control.should_log  # every process logs at this step: the loss all-gather stays collective
    assert len(callback.history) == measured and not trainer._metrics["train"].get("eval_bench/direct/pass@1")


def test_best_tracking_over_metric_sequences(tiny, tmp_path):
    """Real callback, TrainerState and adapters: the generator's LoRA B holds the step number, so the saved
    file shows which step's adapters were kept."""
    model = _policies(tiny).model
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    key = "eval_bench/direct/pass@1"

    def run(callback: BenchmarkCallback, values: list[float], first_step: int = 1) -> list[int | None]:
        kept = []
        for step, value in enumerate(values, start=first_step):
            with torch.no_grad():
                for name, param in model.named_parameters():
                    if "lora_B" in name and ".generator." in name:
                        param.fill_(float(step))
            callback.update_best(args, TrainerState(global_step=step), model, {key: value})
            record = json.loads((tmp_path / BEST_EVAL_DIR / BEST_EVAL_FILE).read_text())
            saved = load_file(str(tmp_path / BEST_EVAL_DIR / "generator" / "adapter_model.safetensors"))
            assert {float(t.flatten()[0]) for n, t in saved.items() if "lora_B" in n} == {float(record["step"])}
            kept.append(record["step"])
        return kept

    higher = BenchmarkCallback(datasets_build.load_problems("humaneval-mini").to_list())
    assert run(higher, [0.25, 0.5, 0.5, 0.25, 0.75, math.nan]) == [1, 2, 2, 2, 5, 5]
    assert (higher.best_value, higher.best_step) == (0.75, 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == [BEST_EVAL_DIR]  # no staging folder left behind

    resumed = BenchmarkCallback(datasets_build.load_problems("humaneval-mini").to_list())
    resumed.restore_best(args, TrainerState(global_step=5))
    assert run(resumed, [0.5, 0.75, 1.0], first_step=6) == [5, 5, 8]

    lower = BenchmarkCallback(datasets_build.load_problems("humaneval-mini").to_list(), BenchmarkEvalConfig(
        bench_metric_for_best="eval_bench/direct/collapse_rate"))
    key = "eval_bench/direct/collapse_rate"
    lower.restore_best(args, TrainerState(global_step=8))  # ranked by another metric: not restored
    assert lower.best_value is None
    assert run(lower, [0.5, 0.75, 0.25, 0.25], first_step=9) == [9, 9, 11, 11]


def test_grpo_with_the_staged_rollout_logs_the_benchmark(tiny, rows, tmp_path):
    policies = _policies(tiny)
    model = policies.model
    train = [dict(row, prompt=row["task_id"]) for row in rows[:2]]
    rollout = StagedRollout(ProblemIndex(train), ChainConfig(generator_tokens=[3], discriminator_tokens=[3],
                                                             temperature=1.0), RolloutState(Phase("generator")))

    def length_reward(prompts, completions, completion_ids, **kwargs):
        return [len(ids) / 100 for ids in completion_ids]

    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=2, num_generations=2, max_steps=2,
                      learning_rate=0.01, use_cpu=True, bf16=False, activation_checkpointing=False, report_to="none",
                      save_strategy="no", logging_steps=1, seed=0, eval_steps=2)
    trainer = GRPOTrainer(model=model, reward_funcs=[length_reward], args=args, train_dataset=Dataset.from_list(train),
                          processing_class=policies.tokenizer, rollout_func=rollout)
    config = BenchmarkEvalConfig(bench_limit=2, bench_max_new_tokens=8, bench_sandbox_workers=2)
    BenchmarkCallback(rows, config).attach(trainer)  # bench_eval_steps None: the trainer's eval_steps
    trainer.train()

    history = trainer.state.log_history
    evaluated = [entry for entry in history if "eval_bench/direct/pass@1" in entry]
    assert [entry["step"] for entry in evaluated] == [2]
    assert "reward" in evaluated[0] and "loss" in evaluated[0]
    assert all(0.0 <= evaluated[0][f"eval_bench/direct/{name}"] <= 1.0 for name in RATES)
    assert json.loads((tmp_path / BEST_EVAL_DIR / BEST_EVAL_FILE).read_text())["step"] == 2


@pytest.mark.slow
def test_two_processes_evaluate_on_the_main_one_and_stay_in_step(tiny, tmp_path):
    """A real two-process DDP run (gloo, CPU) of this file's worker below: only rank 0 evaluates, both log at
    the evaluation steps (a process logging alone would wait forever in the loss all-gather)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", __file__,
               str(tiny), str(tmp_path)]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert ranks[0]["evaluated"] == ranks[0]["logged"] == [1, 2, 3]
    assert ranks[1]["evaluated"] == ranks[1]["logged"] == []
    assert ranks[0]["loss_steps"] == ranks[1]["loss_steps"] == [1, 2, 3]
    logged = {int(step): value for step, value in ranks[0]["pass@1"].items()}
    best_step = min(step for step, value in logged.items() if value == max(logged.values()))
    assert json.loads((tmp_path / "run" / BEST_EVAL_DIR / BEST_EVAL_FILE).read_text())["step"] == best_step


def _ddp_worker(tiny: Path, out: Path) -> None:
    rows = datasets_build.load_problems("humaneval-mini").to_list()
    trainer, callback, _ = _sft_trainer(tiny, rows, out / "run", 3, ddp_backend="gloo")
    trainer.train()
    report = {"evaluated": [step for step, _ in callback.history],
              "logged": [e["step"] for e in trainer.state.log_history if "eval_bench/direct/pass@1" in e],
              "loss_steps": [e["step"] for e in trainer.state.log_history if "loss" in e],
              "pass@1": _evaluated(trainer.state.log_history, "eval_bench/direct/pass@1")}
    (out / f"rank{trainer.accelerator.process_index}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    _ddp_worker(Path(sys.argv[1]), Path(sys.argv[2]))
