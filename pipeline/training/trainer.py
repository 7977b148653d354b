"""``GRPOTrainer`` for two role adapters on one ``PeftModel``, with the timing and logs the pipeline needs.

What it adds to TRL's trainer, and why:

* ``create_optimizer`` puts *both* adapters' LoRA weights into the optimizer (the Trainer only
  takes parameters that require grad at that moment, and so does DDP when it wraps the model
  right after). ``PhaseCallback`` then leaves only the phase's adapter requiring grad: the other
  one gets no gradient (``.grad`` stays None), and torch's Adam/AdamW skip such parameters
  entirely, weight decay included.
* ``_load_from_checkpoint`` restores each role's adapter from ``checkpoint/<role>/``.
* ``_prepare_inputs`` refuses to train a buffered generation batch under another phase than the
  one it was generated in (the schedule's alignment check should make this impossible).
* with the ``vllm`` generation engine, TRL's own importance-sampling correction of its vLLM path
  (``vllm_importance_sampling_correction``, ``vllm_importance_sampling_mode``, ``..._clip_max``) runs on the
  sampler's logprobs the rollout returns: TRL gates it on ``use_vllm``, which stays False (its weight sync
  merges the LoRA into the base), so the flag is raised only around TRL's generation-and-scoring and loss
  code, with TRL's weight sync marked done (``AdapterSyncCallback`` syncs the adapters instead). The mean
  gap |sampler - trainer| per token is logged as ``<role>/logprob_gap`` beside TRL's ``sampling/`` metrics.
* timing of generation, rewards (with the sandbox's share) and the rest of each step, the syntax
  validity of the final code, ``generator/collapse_rate`` (share of generator samples with a stage that
  ``pipeline.evaluation.collapse.is_collapsed`` flags: what train.py's ``CollapseGuard`` watches),
  per-stage copies of the reward and quality metrics, and a JSONL of sample chains (``samples.jsonl``).
"""

from __future__ import annotations

import ast
import contextlib
import json
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch
from peft.utils import set_peft_model_state_dict
from safetensors.torch import load_file
from transformers import TrainerCallback
from trl import GRPOTrainer

from prompts.roles import ROLE_CODES, ROLES

from pipeline.evaluation.collapse import is_collapsed
from pipeline.training.checkpoints import COMPLETE
from pipeline.training.console import use_compact_progress

SAMPLES_FILE = "samples.jsonl"
# The private API of TRL 1.16's GRPOTrainer (and transformers 5's Trainer) this class overrides or reads, in one
# place: TRL offers no public hook for these (checkpoint folders per adapter, a phase guard on buffered batches,
# timing of generation and rewards, metrics logged from inside the reward step). Each entry is the method and its
# parameters after ``self``, as those versions define them; tests/test_trl_contract.py fails when a new TRL or
# transformers renames one or changes its parameters, before a run trains wrongly.
PRIVATE_HOOKS: dict[str, tuple[str, ...]] = {
    "_load_from_checkpoint": ("resume_from_checkpoint", "model"),  # restore each role's adapter
    "_save_checkpoint": ("model", "trial"),  # unmark a stale complete checkpoint before rewriting it
    "_prepare_inputs": ("generation_batch",),  # refuse a buffered batch of another phase
    "_generate": ("prompts",),  # time generation
    "_calculate_rewards": ("inputs", "prompts", "completions", "completion_ids_list"),  # time rewards, log rates
    "_log_metric": ("name", "value"),  # log a metric averaged over processes with TRL's own
    "_get_output_dir": ("trial",),  # where the checkpoint being saved goes
    "_generate_and_score_completions": ("inputs",),  # importance sampling against our own vLLM sampler
    "_compute_loss": ("model", "inputs"),  # the same, in the loss
}
PRIVATE_ATTRIBUTES = ("_metrics", "_step", "_buffered_inputs", "_last_loaded_step")  # set in GRPOTrainer.__init__
# (_last_loaded_step: set here too, see _sampler_is_vllm), read or written here
# Logged metrics that are copied under `stage<k>/` so that each curriculum stage has its own curves.
STAGE_METRIC_PREFIXES = ("reward", "rewards/", "generator/", "discriminator/", "invalid_reasons/", "quality/")


def role_adapter_parameters(model: torch.nn.Module) -> dict[str, list[tuple[str, torch.nn.Parameter]]]:
    """LoRA parameters of each role adapter present in ``model``, by role."""
    roles = [r for r in ROLES if r in getattr(model, "peft_config", {})]
    out: dict[str, list[tuple[str, torch.nn.Parameter]]] = {role: [] for role in roles}
    for name, param in model.named_parameters():
        owners = set(roles).intersection(name.split("."))
        if len(owners) == 1:
            out[owners.pop()].append((name, param))
    return out


def parses(code: str) -> bool:
    """Whether the final code is syntactically valid Python (empty code is not)."""
    if not code.strip():
        return False
    try:
        ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: null bytes in the source
        return False
    return True


class StepClock(TrainerCallback):
    """Wall time per optimizer step and the parts the trainer reports (``add``), summed until ``drain``."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._started: float | None = None

    def add(self, part: str, seconds: float) -> None:
        self.totals[part] += seconds

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._started is not None:
            self.totals["step"] += time.perf_counter() - self._started
            self.totals["steps"] += 1
            self._started = None

    def drain(self, sandbox_seconds: float) -> dict[str, float]:
        """Per-step means and shares of the window since the last drain (empty if no step ended)."""
        totals, self.totals = self.totals, defaultdict(float)
        steps, wall = totals["steps"], totals["step"]
        if steps == 0 or wall <= 0:
            return {}
        parts = {"generation": totals["generation"], "rewards": totals["rewards"], "sandbox": sandbox_seconds}
        parts["optimisation"] = max(0.0, wall - parts["generation"] - parts["rewards"])
        out = {"timing/step_s": wall / steps}
        for name, seconds in parts.items():
            out[f"timing/{name}_s"] = seconds / steps
            out[f"timing/{name}_share"] = seconds / wall
        return out


class DuelGRPOTrainer(GRPOTrainer):
    """GRPOTrainer over a PeftModel holding the ``generator`` and ``discriminator`` adapters.

    Extra keyword arguments: ``samples_per_step`` (chains written to ``samples.jsonl`` per generation
    batch by the main process; 0 = none).
    """

    def __init__(self, *args: Any, samples_per_step: int = 2, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.rollout_func is None or not hasattr(self.rollout_func, "phase"):
            raise TypeError("DuelGRPOTrainer needs a StagedRollout as rollout_func")
        self.samples_per_step = samples_per_step
        self.clock = StepClock()
        self.add_callback(self.clock)
        use_compact_progress(self)  # one line per step on the console; every metric still goes to the loggers
        self._buffered_phase = None

    # ------------------------------------------------------------ both adapters in one optimizer

    def create_optimizer(self, model=None):
        for params in role_adapter_parameters(self.model).values():
            for _, param in params:
                param.requires_grad_(True)  # PhaseCallback narrows this down at train begin
        return super().create_optimizer(model)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        model = self.model if model is None else model
        for role in role_adapter_parameters(model):
            path = Path(resume_from_checkpoint) / role / "adapter_model.safetensors"
            if not path.is_file():
                raise FileNotFoundError(f"checkpoint {resume_from_checkpoint} has no {role} adapter ({path})")
            result = set_peft_model_state_dict(model, load_file(str(path)), adapter_name=role)
            unexpected = getattr(result, "unexpected_keys", [])
            if unexpected:
                raise RuntimeError(f"{path} does not fit the {role} adapter (unexpected keys {unexpected[:3]})")

    def _save_checkpoint(self, model, trial):
        # A folder of the same step left by an abandoned run must not look complete while it is rewritten.
        if self.args.should_save:
            stale = Path(self._get_output_dir(trial=trial)) / f"checkpoint-{self.state.global_step}" / COMPLETE
            stale.unlink(missing_ok=True)
        super()._save_checkpoint(model, trial)

    # ------------------------------------------------------------ phase guard and timing

    def _prepare_inputs(self, generation_batch):
        generate_every = self.args.steps_per_generation * self.num_iterations
        fresh = self.model.training and (self._step % generate_every == 0 or self._buffered_inputs is None)
        phase = self.rollout_func.phase
        if self.model.training and not fresh and phase != self._buffered_phase:
            raise RuntimeError(f"phase changed to {phase} inside a generation batch generated under "
                               f"{self._buffered_phase}; the schedule is not aligned with generation batches")
        inputs = super()._prepare_inputs(generation_batch)
        if fresh:
            self._buffered_phase = phase
        return inputs

    def _generate(self, prompts):
        started = time.perf_counter()
        try:
            return super()._generate(prompts)
        finally:
            self.clock.add("generation", time.perf_counter() - started)

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        started = time.perf_counter()
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self.clock.add("rewards", time.perf_counter() - started)
        generated = [row for row in inputs if row.get("role") == "generator"]
        if generated:  # flushed by TRL right after, averaged over processes (so the collapse guard sees one value)
            codes = [row.get("final_code") or "" for row in generated]
            self._log_metric("generator/syntax_valid", sum(map(parses, codes)) / len(codes))
            collapsed = [any(is_collapsed(text) for text in row.get("stage_texts") or []) for row in generated]
            self._log_metric("generator/collapse_rate", sum(collapsed) / len(collapsed))
        if self.samples_per_step and self.accelerator.is_main_process and self.model.training:
            self._write_samples(inputs, rewards[: len(inputs)])  # the main process's rows come first
        return rewards

    def _write_samples(self, inputs: list[dict[str, Any]], rewards: torch.Tensor) -> None:
        phase = self.rollout_func.phase
        path = Path(self.args.output_dir) / SAMPLES_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as out:
            for row, values in list(zip(inputs, rewards.tolist()))[: self.samples_per_step]:
                record = {
                    "global_step": self.state.global_step, "phase": phase.role, "train_stage": phase.train_stage,
                    "role": row.get("role"), "task_id": row.get("task_id"), "replayed": row.get("replayed", False),
                    "rewards": {n: (None if math.isnan(v) else v) for n, v in zip(self.reward_func_names, values)},
                    "stage_texts": row.get("stage_texts"), "test_texts": row.get("test_texts"),
                    "tests_by_stage": row.get("tests_by_stage"), "final_code": row.get("final_code"),
                }
                out.write(json.dumps(record) + "\n")

    # ------------------------------------------------------------ importance sampling against the vLLM sampler

    @property
    def _sampler_is_vllm(self) -> bool:
        engine = getattr(self.rollout_func, "engine", None)
        return engine is not None and getattr(engine, "name", "") == "vllm"

    @contextlib.contextmanager
    def _as_trl_vllm_path(self):
        """TRL's vLLM branches on for the block, without TRL's weight sync (ours syncs adapters only)."""
        self._last_loaded_step = self.state.global_step
        self.use_vllm = True
        try:
            yield
        finally:
            self.use_vllm = False

    def _generate_and_score_completions(self, inputs):
        if not (self._sampler_is_vllm and self.vllm_importance_sampling_correction):
            return super()._generate_and_score_completions(inputs)
        window = self._metrics["train" if self.model.training else "eval"]
        with self._as_trl_vllm_path():
            output = super()._generate_and_score_completions(inputs)
        gaps = window.get("sampling/sampling_logp_difference/mean")
        if gaps:
            role = self.rollout_func.phase.role
            window[f"{role}/logprob_gap"].append(gaps[-1])
        return output

    def _compute_loss(self, model, inputs):
        if not (self._sampler_is_vllm and self.vllm_importance_sampling_correction):
            return super()._compute_loss(model, inputs)
        with self._as_trl_vllm_path():
            return super()._compute_loss(model, inputs)

    # ------------------------------------------------------------ logs

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.model.training and "loss" in logs:
            window = self._metrics["train"]
            for key in [k for k, values in window.items() if values and all(math.isnan(v) for v in values)]:
                del window[key]  # a role's reward in the other role's phase: nothing to log (TRL would log None)
            logs.update(self.clock.drain(sandbox_seconds=sum(window.get("sandbox/seconds", []))))
            phase = self.rollout_func.phase
            logs["phase/role"] = float(ROLE_CODES[phase.role])
            logs["phase/train_stage"] = float(phase.train_stage)
            stage = f"stage{phase.train_stage}" if phase.train_stage else "all_stages"
            for key, values in list(window.items()):
                valid = [v for v in values if not math.isnan(v)]
                if valid and key.startswith(STAGE_METRIC_PREFIXES):
                    logs[f"{stage}/{key}"] = sum(valid) / len(valid)
            for key, value in list(logs.items()):
                if key.startswith("timing/"):
                    logs[f"{stage}/{key}"] = value
            buffer = getattr(self.rollout_func, "buffer", None)
            if buffer is not None:
                logs.update(buffer.metrics())
        super().log(logs, start_time)
