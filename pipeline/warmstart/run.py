"""`run_warm_start`: supervised LoRA training of the generator adapter before RL.

RL from a cold small model spends its first steps on groups whose rewards are all zero (no sample
passes, so the group-relative advantage is zero everywhere). A short instruction tuning on verified
task-solution pairs gives the generator the answer format and some passing samples first. Only the
generator adapter trains; the discriminator adapter is saved untouched next to it, so RL starts from
the folder with `ModelConfig.generator_init_adapter=<folder>` (and `discriminator_init_adapter`).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import TrainerCallback
from trl import SFTConfig, SFTTrainer

from pipeline.models import ModelConfig
from pipeline.models.policies import load_policies
from pipeline.training.finish import FINAL_DIR, finish_run
from pipeline.training.guard import CollapseGuard, CollapseGuardConfig
from pipeline.training.records import WARMSTART_RECORD_FILE
from pipeline.warmstart.config import WarmStartConfig, WarmStartError
from pipeline.warmstart.data import assistant_only_dataset, sft_examples
from pipeline.warmstart.probe import GenerationProbe
from pipeline.warmstart.teacher import teacher_chains

logger = logging.getLogger(__name__)


def adapter_digest(model: torch.nn.Module, role: str) -> str:
    """Hash of one adapter's LoRA weights: proves after training that the other role was not touched."""
    digest = hashlib.sha256()
    for name, param in sorted(model.named_parameters()):
        if role in name.split("."):
            digest.update(name.encode())
            digest.update(param.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _check_args(sft_config: SFTConfig, warm_config: WarmStartConfig) -> None:
    if sft_config.assistant_only_loss:
        raise WarmStartError("assistant_only_loss: leave it off; direct examples are trained on their completion "
                             "(completion_only_loss) and stage-format examples get assistant-only labels here")
    if sft_config.completion_only_loss is False and not warm_config.stage_format:
        logger.warning("completion_only_loss=False: the warm start also trains on the prompt tokens")


def _probe(warm_config: WarmStartConfig, examples: list[dict[str, Any]], rows: Sequence[Mapping[str, Any]],
           tokenizer: Any) -> GenerationProbe:
    from prompts.collapse import is_collapsed

    chosen = examples[: warm_config.probe_prompts]
    entry_point = {str(row.get("task_id", i)): row.get("entry_point") for i, row in enumerate(rows)}
    return GenerationProbe(
        [e["prompt"] for e in chosen],
        [None if warm_config.stage_format else entry_point[e["task_id"]] for e in chosen],  # stage 1 is prose
        tokenizer, every_steps=warm_config.probe_every_steps, max_new_tokens=warm_config.probe_max_new_tokens,
        is_collapsed=is_collapsed, metric=warm_config.collapse_guard_metric)


def _final_loss(log_history: list[dict[str, Any]]) -> float | None:
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    return float(losses[-1]) if losses else None


def run_warm_start(model_config: ModelConfig, sft_config: SFTConfig, warm_config: WarmStartConfig,
                   rows: Sequence[Mapping[str, Any]], callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Train the generator adapter on `rows` (datasets_build schema) and return `<output_dir>/final`,
    which holds `generator/` and `discriminator/` adapters, `warmstart.json` and `trainer_state.json`.

    `callbacks` join the trainer's; one with an ``attach(trainer)`` method (such as
    `pipeline.training.benchmark.BenchmarkCallback`, which logs through the trainer) is attached with it.

    The run ends through `pipeline.training.finish.finish_run`, as RL's does: if the collapse guard stops the run,
    `final` is copied from the last checkpoint saved before the collapse (the collapsed adapters go to
    `<output_dir>/collapsed`); with no such checkpoint it raises WarmStartError.
    """
    _check_args(sft_config, warm_config)
    started = time.perf_counter()
    rows = [dict(row) for row in rows][: warm_config.max_examples]
    if not rows:
        raise WarmStartError("no training rows given")
    chains = teacher_chains(rows, warm_config) if warm_config.stage_format else None

    policies = load_policies(model_config, trust_remote_code=sft_config.trust_remote_code)
    model = policies.activate("generator")  # the only trainable adapter from here on
    tokenizer = policies.tokenizer
    discriminator = policies.model
    resume = sft_config.resume_from_checkpoint
    if isinstance(resume, str) and (Path(resume) / "discriminator").is_dir():
        # Resuming: the Trainer reloads every adapter the checkpoint holds, the discriminator too (as the
        # interrupted run left it, untouched); load it first, so that the check below compares with it.
        model.load_adapter(str(Path(resume) / "discriminator"), "discriminator", is_trainable=False)
        model.set_adapter("generator")
    untouched = adapter_digest(discriminator, "discriminator")

    examples, report = sft_examples(rows, warm_config.templates, tokenizer, stage_format=warm_config.stage_format,
                                    chains=chains, final_code=warm_config.final_code,
                                    keep_only_passing=warm_config.keep_only_passing,
                                    max_length=sft_config.max_length)
    logger.info("warm start data: %s", report.summary())
    if not examples:
        raise WarmStartError(f"no SFT example left to train on: {report.summary()}")
    dataset = Dataset.from_list(examples)
    if warm_config.stage_format:
        dataset = assistant_only_dataset(dataset, tokenizer)

    guard = CollapseGuard(CollapseGuardConfig(metric=warm_config.collapse_guard_metric,
                                              threshold=warm_config.collapse_guard_threshold,
                                              stop_on_collapse=warm_config.stop_on_collapse))
    trainer = SFTTrainer(model=model, args=sft_config, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=[guard])
    if warm_config.probe_every_steps:
        _probe(warm_config, examples, rows, tokenizer).attach(trainer)
    for callback in callbacks:
        if callable(getattr(callback, "attach", None)):
            callback.attach(trainer)
        else:
            trainer.add_callback(callback)
    result = trainer.train(resume_from_checkpoint=sft_config.resume_from_checkpoint)

    if adapter_digest(discriminator, "discriminator") != untouched:
        raise RuntimeError("the warm start changed the discriminator adapter; only the generator may train")
    out = Path(sft_config.output_dir)
    record = {
        "base_model": model_config.model_name_or_path or "embedded",
        "stage_format": warm_config.stage_format,
        "teacher": warm_config.teacher,
        "final_code": warm_config.final_code if warm_config.stage_format else "reference",
        "data": report.to_dict(),
        "steps": trainer.state.global_step,
        "final_loss": _final_loss(trainer.state.log_history),
        "mean_train_loss": result.training_loss,
        "wall_time_s": round(time.perf_counter() - started, 1),
        "lora": {"r": model_config.lora_r, "alpha": model_config.lora_alpha},
        "learning_rate": sft_config.learning_rate,
        "collapse_guard": guard.report(),
    }  # finish_run adds adapters_from
    trainer.accelerator.wait_for_everyone()
    # recipe.yaml is train.py's to write (it has the effective recipe); the warm start has no push of its own.
    finish_run(out, policies, trainer, guard, recipe=None, records={WARMSTART_RECORD_FILE: record},
               is_main_process=trainer.is_world_process_zero(), announce=False, collapse_error=WarmStartError)
    final = out / FINAL_DIR
    if trainer.is_world_process_zero():
        logger.info("warm start: %d steps, final loss %s; adapters in %s", record["steps"], record["final_loss"],
                    final)
    trainer.accelerator.wait_for_everyone()
    return final
