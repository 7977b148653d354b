"""The RL run's checks that need no model and no data, so that a recipe that cannot work fails in a second,
with a message that says what to change, instead of after the model has loaded."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from pipeline.models.adapters import check_init_adapters
from pipeline.models import ModelConfig, ModelLoadError
from pipeline.training.checkpoints import CheckpointError, checkpoints, resolve_resume
from pipeline.training.config import ConfigError, RLArguments
from pipeline.training.schedule import AdversarialSchedule, ScheduleConfig, ScheduleError, check_alignment
from pipeline.training.guard import CollapseGuardConfig

logger = logging.getLogger(__name__)


def check_rl_run(rl: RLArguments, schedule_cfg: ScheduleConfig, training: Any, model: ModelConfig,
                 num_processes: int) -> tuple[AdversarialSchedule, Path | None]:
    """Every check of an RL recipe that needs no model or data; returns the schedule (``max_steps`` settled) and
    the checkpoint to resume from. ``training`` is TRL's ``GRPOConfig``."""
    if training.beta != 0.0:
        raise ConfigError(f"beta={training.beta}: the KL penalty needs a reference model, and with two adapters on "
                          "one PeftModel TRL 1.16 would copy a 'default' adapter that does not exist; use beta: 0.0")
    if training.use_vllm:
        raise ConfigError("use_vllm: TRL syncs a LoRA policy into vLLM by merging the adapter into the base "
                          "(GRPOTrainer._move_model_to_vllm calls merge_adapter), so one engine holds one merged "
                          "model and cannot serve two role adapters per request; and with a 4-bit base that sync "
                          "fails (packed NF4 shapes, TRL issue #4973). Set use_vllm: false and "
                          "generation_engine: vllm (both role adapters served by name, synced alone).")
    if schedule_cfg.schedule == "unified" and model.discriminator_init_adapter is not None:
        raise ConfigError("discriminator_init_adapter: the unified schedule trains the generator adapter alone (it plays "
                          "both roles), so a discriminator adapter would never be used; remove it")
    try:
        check_init_adapters(model)
    except ModelLoadError as err:
        raise ConfigError(str(err)) from err
    try:
        CollapseGuardConfig(metric=rl.collapse_guard_metric, threshold=rl.collapse_guard_threshold,
                            patience=rl.collapse_guard_patience)
    except ValueError as err:
        raise ConfigError(f"collapse guard: {err}") from err
    if training.save_total_limit is not None and training.save_total_limit < 2:
        raise ConfigError("save_total_limit must be >= 2 (or null): with 1, the only complete checkpoint is deleted "
                          "before the new one is marked complete")
    if training.push_to_hub and not training.hub_model_id:
        raise ConfigError("push_to_hub needs hub_model_id (e.g. user/duelcoder-adapters)")
    if schedule_cfg.schedule == "unified" and training.generation_batch_size // training.num_generations < 2:
        raise ConfigError("the unified schedule alternates roles per prompt group, so a generation batch needs >= 2 groups: "
                          f"generation_batch_size {training.generation_batch_size} / num_generations "
                          f"{training.num_generations} < 2")
    if schedule_cfg.schedule == "adversarial" and num_processes > 1:
        if training.ddp_find_unused_parameters is False:
            raise ConfigError("ddp_find_unused_parameters must be true: in each phase one adapter gets no gradient")
        training.ddp_find_unused_parameters = True
    if schedule_cfg.schedule == "adversarial" and getattr(training, "deepspeed_plugin", None) is not None:
        logger.warning("DeepSpeed with the adversarial schedule is untested: ZeRO may give the inactive adapter zero "
                       "gradients instead of none, which Adam's momentum would still apply. Check that each "
                       "checkpoint moved only the adapter of its phase.")
    schedule = AdversarialSchedule(schedule_cfg)
    if training.max_steps is None or training.max_steps <= 0:
        training.max_steps = schedule.length
    save_steps = int(training.save_steps) if training.save_strategy == "steps" else None
    if save_steps is not None and training.save_steps < 1:
        raise ConfigError("save_steps must be a whole number of steps (>= 1) with save_strategy 'steps'")
    try:
        check_alignment(schedule, training.max_steps, gradient_accumulation_steps=training.gradient_accumulation_steps,
                        steps_per_generation=training.steps_per_generation, num_iterations=training.num_iterations,
                        save_steps=save_steps)
        output_dir = Path(training.output_dir)
        resume = resolve_resume(output_dir, training.resume_from_checkpoint)
    except (ScheduleError, CheckpointError) as err:
        raise ConfigError(str(err)) from err
    if resume is None and any(checkpoints(output_dir)):
        raise ConfigError(f"{output_dir} already holds checkpoints: pass --resume_from_checkpoint latest to continue "
                          "that run, or choose another output_dir")
    return schedule, resume
