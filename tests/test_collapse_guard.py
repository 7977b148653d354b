"""CollapseGuard on real TrainerState / TrainerControl sequences, and with GenerationProbe in a real run."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments
from trl import SFTTrainer

import datasets_build
from pipeline.models import ModelConfig
from pipeline.models.policies import load_policies
from pipeline.models.tiny import build_tiny_model
from pipeline.training.guard import GUARD_FILE, CollapseGuard, CollapseGuardConfig
from pipeline.warmstart import GenerationProbe, build_sft_dataset, sft_training_args

METRIC = "eval_bench/direct/collapse_rate"


class Run:
    """Drives a guard the way Trainer does: save after log within a step, checkpoint folders on disk."""

    def __init__(self, tmp_path, guard: CollapseGuard, resume_step: int = 0):
        self.args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
        self.state, self.control, self.guard = TrainerState(global_step=resume_step), TrainerControl(), guard
        self.guard.on_train_begin(self.args, self.state, self.control)

    def log(self, step: int, value) -> TrainerControl:
        self.state.global_step = step
        return self.guard.on_log(self.args, self.state, self.control, logs={METRIC: value, "loss": 1.0})

    def save(self, step: int) -> None:
        self.state.global_step = step
        (Path(self.args.output_dir) / f"checkpoint-{step}").mkdir()
        self.guard.on_save(self.args, self.state, self.control)

    def report(self) -> dict:
        return json.loads((Path(self.args.output_dir) / GUARD_FILE).read_text())


def test_warns_and_names_the_last_checkpoint_saved_before_the_crossing(tmp_path, caplog):
    run = Run(tmp_path, CollapseGuard(CollapseGuardConfig(metric=METRIC, threshold=0.5)))
    run.log(2, 0.1)
    run.save(2)
    run.log(4, 0.2)
    run.save(4)
    assert not (tmp_path / GUARD_FILE).exists()  # nothing to report yet
    with caplog.at_level(logging.WARNING, logger="pipeline.training.guard"):
        control = run.log(6, 0.75)
    assert "0.750 >= 0.500 at step 6" in caplog.text
    assert not control.should_training_stop  # warning only
    run.save(6)  # saved after the collapsed log of the same step: not good
    report = run.report()
    assert report["last_good_checkpoint"] == str(tmp_path / "checkpoint-4")
    assert report["collapse_start_step"] == 6 and not report["stopped"]
    assert report["events"] == [{"step": 6, "value": 0.75, "event": "collapsed"}]
    assert run.guard.last_good_checkpoint() == str(tmp_path / "checkpoint-4")

    run.log(8, 0.1)  # recovered: the newest checkpoint is fine again
    assert run.report()["events"][-1] == {"step": 8, "value": 0.1, "event": "recovered"}
    assert run.guard.last_good_checkpoint() == str(tmp_path / "checkpoint-6")


def test_stops_after_patience_collapsed_logs_and_cancels_that_save(tmp_path):
    run = Run(tmp_path, CollapseGuard(CollapseGuardConfig(metric=METRIC, threshold=0.5, stop_on_collapse=True,
                                                          patience=2)))
    run.save(1)
    control = run.log(2, 0.6)
    assert not control.should_training_stop  # one noisy log is not enough
    control.should_save = True  # what DefaultFlowCallback would have set for step 3
    control = run.log(3, 0.9)
    assert control.should_training_stop and not control.should_save
    report = run.report()
    assert report["stopped"] and report["collapse_start_step"] == 2
    assert report["last_good_checkpoint"] == str(tmp_path / "checkpoint-1")
    assert [e["event"] for e in report["events"]] == ["collapsed", "stopped"]


def test_a_rotated_checkpoint_is_not_named_and_a_resumed_run_knows_older_ones(tmp_path):
    (tmp_path / "checkpoint-3").mkdir()
    (tmp_path / "checkpoint-9").mkdir()  # beyond the resume step: from an abandoned future, ignored
    run = Run(tmp_path, CollapseGuard(CollapseGuardConfig(metric=METRIC)), resume_step=5)
    run.save(6)
    shutil.rmtree(tmp_path / "checkpoint-6")  # rotated out by save_total_limit
    run.log(7, 1.0)
    assert run.report()["last_good_checkpoint"] == str(tmp_path / "checkpoint-3")


def test_other_metrics_and_non_numbers_are_ignored(tmp_path, caplog):
    run = Run(tmp_path, CollapseGuard(CollapseGuardConfig(metric=METRIC, stop_on_collapse=True)))
    run.state.global_step = 1
    run.guard.on_log(run.args, run.state, run.control, logs={"probe/collapse_rate": 1.0})
    with caplog.at_level(logging.WARNING, logger="pipeline.training.guard"):
        for bad in (float("nan"), "high", True):
            assert not run.log(2, bad).should_training_stop
    assert caplog.text.count("not a finite number") == 3
    assert not (tmp_path / GUARD_FILE).exists()


def test_a_metric_never_logged_is_reported_at_the_end_of_training(tmp_path, caplog):
    """The guard skips logs without its metric (a discriminator phase logs no generator metrics), so a metric
    that is never logged at all (renamed, misspelt in a recipe) would leave it silent for a whole run: the end of
    training says so. A run that logged the metric once says nothing."""
    silent = Run(tmp_path, CollapseGuard(CollapseGuardConfig(metric=METRIC, stop_on_collapse=True)))
    for step in (1, 2, 3):
        silent.state.global_step = step
        silent.guard.on_log(silent.args, silent.state, silent.control, logs={"collapse_rate": 0.9, "loss": 1.0})
    with caplog.at_level(logging.WARNING, logger="pipeline.training.guard"):
        silent.guard.on_train_end(silent.args, silent.state, silent.control)
    assert f"{METRIC} was never logged (3 logs read)" in caplog.text
    assert silent.guard.report()["logs_with_metric"] == 0

    caplog.clear()
    watched = Run(tmp_path, CollapseGuard(CollapseGuardConfig(metric=METRIC)))
    watched.state.global_step = 1
    watched.guard.on_log(watched.args, watched.state, watched.control, logs={"loss": 1.0})
    watched.log(2, 0.1)
    with caplog.at_level(logging.WARNING, logger="pipeline.training.guard"):
        watched.guard.on_train_end(watched.args, watched.state, watched.control)
    assert "never logged" not in caplog.text
    assert watched.guard.report()["logs_with_metric"] == 1


def test_config_is_checked():
    for bad in ({"threshold": 0.0}, {"threshold": 1.5}, {"patience": 0}, {"metric": ""}):
        with pytest.raises(ValueError):
            CollapseGuardConfig(**bad)


@pytest.mark.slow
def test_probe_metrics_reach_the_log_and_the_guard_stops_a_real_sft_run(tmp_path):
    """Every probe answer is declared collapsed, so the guard must stop at the first probe (step 2), after
    checkpoint-1 and before checkpoint-2 is written."""
    rows = list(datasets_build.load_problems("humaneval-mini"))[:4]
    policies = load_policies(ModelConfig(model_name_or_path=str(build_tiny_model(tmp_path / "tiny")), lora_r=2))
    dataset = build_sft_dataset(rows, "default", keep_only_passing=False)
    out = tmp_path / "sft"
    guard = CollapseGuard(CollapseGuardConfig(metric="probe/collapse_rate", threshold=0.5, stop_on_collapse=True))
    trainer = SFTTrainer(model=policies.activate("generator"), processing_class=policies.tokenizer,
                         train_dataset=dataset, callbacks=[guard],
                         args=sft_training_args(str(out), max_steps=6, per_device_train_batch_size=2,
                                                save_steps=1, logging_steps=10))
    probe = GenerationProbe([e["prompt"] for e in dataset.select(range(2))], ["add", None], policies.tokenizer,
                            every_steps=2, max_new_tokens=4, is_collapsed=lambda text: True).attach(trainer)
    trainer.train()
    assert trainer.state.global_step == 2
    logged = [e for e in trainer.state.log_history if "probe/collapse_rate" in e]
    assert logged and logged[0]["step"] == 2 and logged[0]["probe/collapse_rate"] == 1.0
    assert "probe/code_parses" in logged[0] and "loss" in logged[0]  # joined the regular log line
    assert len(probe.last_texts) == 2
    report = json.loads((out / GUARD_FILE).read_text())
    assert report["stopped"] and report["last_good_checkpoint"] == str(out / "checkpoint-1")
    assert (out / "checkpoint-1").is_dir() and not (out / "checkpoint-2").exists()
