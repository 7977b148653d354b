"""One console line per logged step, in place of the Trainer's printout of every metric.

A step logs ~100 metrics; the Trainer's ``ProgressCallback`` prints them all as one dict, which pushes the
progress bar off the screen. ``CompactProgress`` keeps the bar and prints what a person watching a run needs:
step, role and curriculum stage, reward, the generator's pass rate or the discriminator's validity, and the
step time with its generation share. Every metric still goes to the loggers (TensorBoard / W&B) and to
``trainer_state.json``.
"""

from __future__ import annotations

import math
from typing import Any

from prompts.roles import ROLE_NAMES
from transformers import ProgressCallback


# (label, log key, format) in the order they are printed; a key missing from the step's log is left out.
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("reward", "reward", "{:.3f}"),
    ("pass", "generator/pass_rate", "{:.2f}"),
    ("pass_own", "generator/pass_rate_own", "{:.2f}"),
    ("valid", "discriminator/validity", "{:.2f}"),
    ("catch", "discriminator/bug_catch_rate", "{:.2f}"),
    ("zero_std", "frac_reward_zero_std", "{:.2f}"),
    ("collapse", "generator/collapse_rate", "{:.2f}"),
    ("logp_gap", "sampling/sampling_logp_difference/mean", "{:.4f}"),  # vllm engine: |sampler - trainer|
    ("is_ratio", "sampling/importance_sampling_ratio/mean", "{:.3f}"),
)


def _number(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def compact_line(logs: dict[str, Any], max_steps: int, step: int) -> str:
    """The one-line summary of a training log (or of an evaluation / final log, which have no phase)."""
    parts = [f"step {step}/{max_steps}"] if max_steps > 0 else [f"step {step}"]
    role = _number(logs.get("phase/role"))
    if role is not None:
        stage = _number(logs.get("phase/train_stage"))
        parts.append(ROLE_NAMES.get(int(role), "?") + (f" stage {int(stage)}" if stage else " all stages"))
    for label, key, fmt in FIELDS:
        value = _number(logs.get(key))
        if value is not None:
            parts.append(f"{label} {fmt.format(value)}")
    step_s = _number(logs.get("timing/step_s"))
    if step_s is not None:
        share = _number(logs.get("timing/generation_share"))
        parts.append(f"{step_s:.0f} s/step" + (f" ({share:.0%} generation)" if share is not None else ""))
    bench = sorted(k for k in logs if k.startswith("eval_bench/") and k.endswith("/pass@1"))
    for key in bench:
        value = _number(logs[key])
        if value is not None:
            parts.append(f"{key.removeprefix('eval_bench/').removesuffix('/pass@1')} pass@1 {value:.2f}")
    if len(parts) == 1:  # neither a training nor a benchmark log (e.g. the end-of-training summary)
        runtime = _number(logs.get("train_runtime"))
        if runtime is None:
            return ""
        parts.append(f"done in {runtime:.0f} s")
    return " | ".join(parts)


class CompactProgress(ProgressCallback):
    """The Trainer's progress bar, with ``compact_line`` written above it instead of the full metrics dict."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and self.training_bar is not None and logs:
            line = compact_line(logs, state.max_steps, state.global_step)
            if line:
                self.training_bar.write(line)


def use_compact_progress(trainer: Any) -> None:
    """Swap the Trainer's ``ProgressCallback`` (if it has one: ``disable_tqdm`` leaves a printer) for ours."""
    if any(isinstance(cb, ProgressCallback) for cb in trainer.callback_handler.callbacks):
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(CompactProgress())
