"""What a run writes beside its adapters so that a person (or a rerun) knows what was trained, and how.

``recipe.yaml`` is the effective recipe (the YAML with the command line applied); ``run_info.json`` says
what was trained on and from where each adapter started (with the hash of an init adapter's weights and,
for a warm start's folder, what its ``warmstart.json`` says). Both go into the output folder, every
checkpoint and ``final/``. ``samples.jsonl`` gets a few whole chains of every generation batch, with their rewards.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import yaml

from prompts.roles import ROLES
from pipeline.models.adapters import ADAPTER_CONFIG, resolve_adapter_dir
from pipeline.models import ModelConfig
from pipeline.training.checkpoints import RECIPE_FILE, RUN_INFO_FILE

logger = logging.getLogger(__name__)

WARMSTART_RECORD_FILE = "warmstart.json"  # what a warm start's final/ says about it (pipeline.warmstart)


def run_info(*, model: ModelConfig, schedule: Any, reward_names: list[str], reward_weights: Any,
             data: Any, train_problems: int, replay: dict[str, Any]) -> dict[str, Any]:
    """``run_info.json`` of an RL run."""
    import peft
    import transformers
    import trl

    return {
        "base_model": model.model_name_or_path or "embedded",
        "schedule": schedule.schedule, "curriculum": schedule.curriculum, "stages": schedule.train_stages,
        "schedule_config": asdict(schedule), "reward_funcs": reward_names, "reward_weights": reward_weights,
        "train_splits": data.train_splits, "eval_splits": data.eval_splits, "train_problems": train_problems,
        "replay": replay,
        "start": start_points(model, ("generator",) if schedule.schedule == "unified" else ROLES),
        "versions": {"trl": trl.__version__, "transformers": transformers.__version__, "peft": peft.__version__},
    }


def start_points(model: ModelConfig, roles: tuple[str, ...] = ROLES) -> dict[str, Any]:
    """Where each role adapter started: a fresh LoRA (B = 0, the base model), or an init adapter with the hash
    of its weights file, its LoRA shape and, from a warm start's folder, what its warmstart.json says."""
    points: dict[str, Any] = {}
    for role in roles:
        source = getattr(model, f"{role}_init_adapter")
        if source is None:
            points[role] = {"from": "fresh"}
            continue
        folder = resolve_adapter_dir(source, role)
        lora = json.loads((folder / ADAPTER_CONFIG).read_text())
        weights = folder / "adapter_model.safetensors"
        points[role] = {
            "from": source, "folder": str(folder),
            "sha256": hashlib.sha256(weights.read_bytes()).hexdigest() if weights.is_file() else None,
            "lora": {"r": lora.get("r"), "alpha": lora.get("lora_alpha"), "target_modules": lora.get("target_modules")},
        }
        record = folder.parent / WARMSTART_RECORD_FILE
        if record.is_file():
            warm = json.loads(record.read_text())
            points[role]["warmstart"] = {k: warm.get(k) for k in ("base_model", "steps", "final_loss", "stage_format",
                                                                   "data", "adapters_from")}
            if warm.get("base_model") != (model.model_name_or_path or "embedded"):
                logger.warning("%s_init_adapter was warm-started on %s, this run's base is %s", role,
                               warm.get("base_model"), model.model_name_or_path or "embedded")
    return points


def write_run_files(folder: Path, recipe: dict[str, Any], info: dict[str, Any] | None = None) -> None:
    """``recipe.yaml`` (and ``run_info.json`` when given) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RECIPE_FILE).write_text(yaml.safe_dump(recipe, sort_keys=False))
    if info is not None:
        (folder / RUN_INFO_FILE).write_text(json.dumps(info, indent=2))


@dataclass(frozen=True)
class RunFiles:
    """The run's ``recipe.yaml`` and ``run_info.json``, written into every checkpoint and ``final/``."""

    recipe: dict[str, Any]
    info: dict[str, Any] | None = None

    def write(self, folder: Path) -> None:
        write_run_files(folder, self.recipe, self.info)


SAMPLES_FILE = "samples.jsonl"


@dataclass(frozen=True)
class SampleLog:
    """``output_dir/samples.jsonl``: the first ``per_batch`` chains of every scored batch (main process), with the
    step, the phase and what each reward function returned (as TRL holds it: float32, None for no reward)."""

    path: Path
    per_batch: int

    def write(self, scored: Sequence[Any], duel: Any) -> None:
        import torch

        if self.per_batch <= 0 or not scored:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as out:
            for context in scored:
                names = list(context.returned)
                values = torch.tensor([[math.nan if v is None else v for v in context.returned[n]] for n in names],
                                      dtype=torch.float32).T.tolist() if names else [[] for _ in context.samples]
                for record, row in list(zip(context.samples, values))[: self.per_batch]:
                    out.write(json.dumps({
                        "global_step": duel.step, "phase": duel.phase.role, "train_stage": duel.phase.train_stage,
                        "role": record.role, "task_id": record.task_id, "replayed": record.replayed,
                        "rewards": {n: (None if math.isnan(v) else v) for n, v in zip(names, row)},
                        "stage_texts": list(record.stage_texts), "test_texts": list(record.test_texts),
                        "tests_by_stage": [list(t) for t in record.tests_by_stage], "final_code": record.final_code,
                    }) + "\n")
