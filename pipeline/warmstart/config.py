"""What a warm start trains on and how it watches itself; the optimiser settings live in TRL's `SFTConfig`
and the LoRA shape in `pipeline.models.ModelConfig`.

A small model fully fine-tuned on a few hundred examples collapses into loops ("return return",
"def def") while its loss looks fine; LoRA instruction tuning on verified task-solution pairs does not.
The recipe values of that plan (LoRA rank 8, alpha 16, learning rate 1e-4, 10 % warmup) are written in
`configs/sft_warmstart.yaml` and in `sft_training_args`, so a command line can override each one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from trl import SFTConfig

from prompts.stages import DEFAULT_GENERATOR_TOKENS, stage_budgets

FINAL_CODE_SOURCES = ("reference", "teacher")


class WarmStartError(ValueError):
    """A warm start that cannot work as configured, or whose data left nothing to train on."""


@dataclass
class WarmStartConfig:
    """Data and safeguards of the supervised warm start (flat, so `TrlParser` reads it from YAML or flags)."""

    stage_format: bool = field(
        default=False,
        metadata={"help": "Train on whole five-stage chains (stages 1-4 written by `teacher`, stage 5 the code) "
                          "instead of the direct prompt -> code answer."})
    teacher: str | None = field(
        default=None,
        metadata={"help": "Hub id or model folder ('embedded' allowed) that writes stages 1-4; required with "
                          "stage_format. A stronger model than the one being trained."})
    teacher_max_new_tokens: list[int] = field(
        default_factory=lambda: list(DEFAULT_GENERATOR_TOKENS),
        metadata={"help": "Teacher's token budget per stage (5 values, or 1 for all)."})
    teacher_temperature: float = field(
        default=0.0, metadata={"help": "Teacher sampling temperature; 0 = greedy (its most likely chain)."})
    teacher_batch_size: int = field(default=8, metadata={"help": "Problems per batched teacher generation."})
    final_code: str = field(
        default="reference",
        metadata={"help": "Stage-5 target in stage_format: 'reference' (the row's verified solution) or "
                          "'teacher' (the teacher's own code; with keep_only_passing only where it passes)."})
    keep_only_passing: bool = field(
        default=True,
        metadata={"help": "Run every target's code against the row's tests in the sandbox and drop the ones "
                          "that fail (counted). Off: train on unverified targets."})
    max_examples: int | None = field(
        default=None, metadata={"help": "Use at most this many rows (the first ones); None = all."})
    templates: str = field(default="default", metadata={"help": "Prompt template set name or folder."})
    probe_every_steps: int = field(
        default=0,
        metadata={"help": "Every N optimizer steps, generate greedily for a few fixed training prompts and log "
                          "probe/collapse_rate and probe/code_parses (a falling loss says nothing about them). 0 = off."})
    probe_prompts: int = field(default=4, metadata={"help": "Prompts the probe generates for."})
    probe_max_new_tokens: int = field(default=96, metadata={"help": "Token budget of each probe generation."})
    collapse_guard_metric: str = field(
        default="probe/collapse_rate", metadata={"help": "Logged metric the collapse guard watches (higher = worse)."})
    collapse_guard_threshold: float = field(
        default=0.5, metadata={"help": "Value of collapse_guard_metric at or above which training has collapsed."})
    stop_on_collapse: bool = field(
        default=True,
        metadata={"help": "Stop training when the guard fires; the final adapters then come from the last "
                          "checkpoint saved before the collapse."})

    def __post_init__(self) -> None:
        if self.teacher is not None and (not isinstance(self.teacher, str) or not self.teacher.strip()):
            raise WarmStartError(f"teacher must be a Hub id or a folder, got {self.teacher!r}")
        if self.stage_format and self.teacher is None:
            raise WarmStartError("stage_format needs a teacher (a Hub id or model folder) to write stages 1-4")
        if self.final_code not in FINAL_CODE_SOURCES:
            raise WarmStartError(f"final_code must be one of {FINAL_CODE_SOURCES}, got {self.final_code!r}")
        try:
            stage_budgets("teacher_max_new_tokens", self.teacher_max_new_tokens)
        except ValueError as err:
            raise WarmStartError(str(err)) from err
        if self.teacher_temperature < 0:
            raise WarmStartError(f"teacher_temperature must be >= 0, got {self.teacher_temperature}")
        for name in ("teacher_batch_size", "probe_prompts", "probe_max_new_tokens"):
            if getattr(self, name) < 1:
                raise WarmStartError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_examples is not None and self.max_examples < 1:
            raise WarmStartError(f"max_examples must be >= 1 or None, got {self.max_examples}")
        if self.probe_every_steps < 0:
            raise WarmStartError(f"probe_every_steps must be >= 0, got {self.probe_every_steps}")
        if not 0.0 < self.collapse_guard_threshold <= 1.0:
            raise WarmStartError(f"collapse_guard_threshold must lie in (0, 1], got {self.collapse_guard_threshold}")


# The plan's optimiser recipe, and CPU-safe choices where TRL's defaults assume a GPU
# (SFTConfig turns on bf16 and gradient checkpointing by default).
RECIPE_DEFAULTS: dict[str, Any] = {
    "learning_rate": 1e-4,
    "warmup_steps": 0.1,  # transformers 5 reads a value below 1 as a fraction of the steps (no warmup_ratio)
    "lr_scheduler_type": "cosine",
    "logging_steps": 1,
    "save_strategy": "steps",
    "save_steps": 50,
    "report_to": "none",
}


def sft_training_args(output_dir: str, **overrides: Any) -> SFTConfig:
    """An `SFTConfig` with the warm-start recipe; on a machine without a CUDA GPU, full precision and no
    gradient checkpointing unless overridden."""
    import torch

    values: dict[str, Any] = dict(RECIPE_DEFAULTS)
    if not torch.cuda.is_available():
        values.update(bf16=False, activation_checkpointing=False, use_cpu=True)
    values.update(overrides)
    return SFTConfig(output_dir=output_dir, **values)


def check_sft_run(training: SFTConfig) -> None:
    """The warm start's checks of TRL's settings, before anything loads; settles ``resume_from_checkpoint``."""
    if training.eval_strategy != "no":
        raise WarmStartError(f"eval_strategy {training.eval_strategy!r}: the warm start has no eval dataset; "
                             "evaluate on the benchmark with bench_eval_steps instead (eval_strategy: 'no')")
    if training.push_to_hub:
        raise WarmStartError("push_to_hub: push the warm start's final/ folder with `python -m pipeline.tools.push`, "
                             "or push the RL run that starts from it")
    training.resume_from_checkpoint = sft_resume(training.output_dir, training.resume_from_checkpoint)


def sft_resume(output_dir: str, value: str | None) -> str | None:
    """The warm start's checkpoint to resume from: ``latest`` (or ``true``) is the newest ``checkpoint-N``
    of ``output_dir`` (None, so a fresh start, when there is none yet, as in RL); a path must be a folder."""
    import logging
    from pathlib import Path

    if value is None or str(value).lower() in ("", "no", "none", "false"):
        return None
    if str(value).lower() in ("latest", "true"):
        from transformers.trainer_utils import get_last_checkpoint

        found = get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
        if found is None:
            logging.getLogger(__name__).warning("resume_from_checkpoint=latest: no checkpoint in %s, starting fresh",
                                                output_dir)
        return found
    if not Path(value).is_dir():
        raise WarmStartError(f"resume_from_checkpoint {value!r} is not a folder")
    return value
