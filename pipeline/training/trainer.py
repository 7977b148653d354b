"""``GRPOTrainer`` for two role adapters on one ``PeftModel``: what TRL's trainer cannot do through its public API.

* ``create_optimizer`` puts *both* adapters' LoRA weights into the optimizer (the Trainer only
  takes parameters that require grad at that moment, and so does DDP when it wraps the model
  right after). ``DuelCallback`` then leaves only the phase's adapter requiring grad: the other
  one gets no gradient (``.grad`` stays None), and torch's Adam/AdamW skip such parameters
  entirely, weight decay included.
* ``_load_from_checkpoint`` restores each role's adapter from ``checkpoint/<role>/``.
* with the ``vllm`` generation engine, TRL's own importance-sampling correction of its vLLM path
  (``vllm_importance_sampling_correction``, ``vllm_importance_sampling_mode``, ``..._clip_max``) runs on the
  sampler's logprobs the rollout returns: TRL gates it on ``use_vllm``, which stays False (its weight sync
  merges the LoRA into the base), so the flag is raised only around TRL's generation-and-scoring and loss
  code, with TRL's weight sync marked done (``AdapterSyncCallback`` syncs the adapters instead). The mean
  gap |sampler - trainer| per token is logged as ``<role>/logprob_gap`` beside TRL's ``sampling/`` metrics.
* ``log`` adds the duel's own columns to every training log: the step's time parts (``DuelState.clock``: the
  rollout times generation, the rewards' scorer times the rewards), the phase and the replay counters, and
  per-stage copies of the reward and quality metrics. The rewards log their metrics themselves, through TRL's
  ``log_metric`` (``generator/syntax_valid`` and ``generator/collapse_rate``, what the collapse guard watches,
  among them).
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import torch
from peft.utils import set_peft_model_state_dict
from safetensors.torch import load_file
from trl import GRPOTrainer

from prompts.roles import ROLES

from pipeline.training.console import use_compact_progress
from pipeline.training.state import DuelState

# The private API of TRL 1.16's GRPOTrainer (and transformers 5's Trainer) this project uses, in one place, each
# where TRL offers no public way: the methods overridden here (with their parameters after ``self``, as those
# versions define them), and the private attributes read or written anywhere in the project.
# tests/test_trl_contract.py fails when a new TRL or transformers renames one or changes its parameters, when TRL
# stops calling one, and when the project's source uses a private name of TRL's trainer that is not listed here.
PRIVATE_HOOKS: dict[str, tuple[str, ...]] = {
    "_load_from_checkpoint": ("resume_from_checkpoint", "model"),  # restore each role's adapter
    "_generate_and_score_completions": ("inputs",),  # importance sampling against our own vLLM sampler
    "_compute_loss": ("model", "inputs"),  # the same, in the loss
}
PRIVATE_ATTRIBUTES = ("_metrics", "_last_loaded_step")  # set in GRPOTrainer.__init__ (_last_loaded_step only on
# its vLLM path: set here too, see _as_trl_vllm_path); _metrics: the log window (here and
# pipeline/training/benchmark.py's log_with_training)
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


class DuelGRPOTrainer(GRPOTrainer):
    """GRPOTrainer over a PeftModel holding the ``generator`` and ``discriminator`` adapters.

    Extra keyword arguments: ``duel``, the run's ``DuelState`` (its ``log`` reads it), and ``vllm_sampler``,
    whether the rollout samples with the vLLM engine (importance sampling against it, above).
    """

    def __init__(self, *args: Any, duel: DuelState, vllm_sampler: bool = False, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.duel, self.vllm_sampler = duel, vllm_sampler
        use_compact_progress(self)  # one line per step on the console; every metric still goes to the loggers

    # ------------------------------------------------------------ both adapters in one optimizer

    def create_optimizer(self, model=None):
        for params in role_adapter_parameters(self.model).values():
            for _, param in params:
                param.requires_grad_(True)  # DuelCallback narrows this down at train begin
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

    # ------------------------------------------------------------ importance sampling against the vLLM sampler

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
        if not (self.vllm_sampler and self.vllm_importance_sampling_correction):
            return super()._generate_and_score_completions(inputs)
        window = self._metrics["train" if self.model.training else "eval"]
        with self._as_trl_vllm_path():
            output = super()._generate_and_score_completions(inputs)
        gaps = window.get("sampling/sampling_logp_difference/mean")
        if gaps:
            role = self.duel.phase.role
            window[f"{role}/logprob_gap"].append(gaps[-1])
        return output

    def _compute_loss(self, model, inputs):
        if not (self.vllm_sampler and self.vllm_importance_sampling_correction):
            return super()._compute_loss(model, inputs)
        with self._as_trl_vllm_path():
            return super()._compute_loss(model, inputs)

    # ------------------------------------------------------------ logs

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if self.model.training and "loss" in logs:
            window = self._metrics["train"]
            for key in [k for k, values in window.items() if values and all(math.isnan(v) for v in values)]:
                del window[key]  # a role's reward in the other role's phase: nothing to log (TRL would log None)
            logs.update(self.duel.clock.drain(sandbox_seconds=sum(window.get("sandbox/seconds", []))))
            phase = self.duel.phase
            stage = f"stage{phase.train_stage}" if phase.train_stage else "all_stages"
            for key, values in list(window.items()):
                valid = [v for v in values if not math.isnan(v)]
                if valid and key.startswith(STAGE_METRIC_PREFIXES):
                    logs[f"{stage}/{key}"] = sum(valid) / len(valid)
            for key, value in list(logs.items()):
                if key.startswith("timing/"):
                    logs[f"{stage}/{key}"] = value
            logs.update(self.duel.metrics())
        super().log(logs, start_time)
