"""The RL recipe's own settings, and the recipe plumbing every ``train.py`` job shares.

A recipe is one YAML file read by TRL's ``TrlParser`` into several flat dataclasses, one per concern:
the data (``datasets_build.TrainingData``), ``RunArguments`` (the job, threads), the schedule
(``ScheduleConfig``), the chain's token budgets (``ChainArguments``), the rewards, the benchmark run
during training (``BenchmarkArguments``), TRL's trainer config and the model (``ModelConfig``). Every
field appears once: the trainer's configs own the fields they share with ours.

``recipe_job`` reads which job a recipe is before parsing (``rl``, ``sft`` or ``bootstrap``), and
``effective_recipe`` writes the recipe with the command line's overrides applied, so that a run can be
rerun from its own folder. Errors are ``ConfigError``: raised before any model or data is loaded.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from prompts.stages import DEFAULT_GENERATOR_TOKENS
from pipeline.chain import ChainConfig
from pipeline.training.benchmark import BenchmarkEvalConfig
from pipeline.evaluation.config import BENCHMARKS, PLUS_BENCHMARKS
from pipeline.models import cpu_has_native_bf16

# Those the benchmark callback evaluates during training: not EvalPlus's (their judge is evaluate.py's).
TRAINING_BENCHMARKS = tuple(name for name in BENCHMARKS if name not in PLUS_BENCHMARKS)


JOBS = ("rl", "sft", "bootstrap")  # what train.py runs: GRPO, the supervised warm start, expert iteration
RENAMED = {"mode": "`job: rl|sft|bootstrap` picks the job and, in RL recipes, `schedule: adversarial|unified` the "
                   "schedule (README, 'Renamed in the 2026-12-02 redesign')"}


class ConfigError(ValueError):
    """A configuration that cannot work; raised before any model or data is loaded."""


@dataclass
class RunArguments:
    """What the process runs and how (every job)."""

    job: str = field(
        default="rl", metadata={"help": "The job: 'rl' (GRPO, both adapters, the schedule below), 'sft' (supervised "
                                        "warm start of the generator adapter) or 'bootstrap' (expert iteration on "
                                        "the model's own verified samples)."})
    torch_threads: int | None = field(
        default=None, metadata={"help": "CPU threads per process for PyTorch (None = its default, one per core). "
                                        "1 is much faster on a busy CPU, where spinning threads starve each other."})

    def __post_init__(self) -> None:
        if self.job not in JOBS:
            raise ValueError(f"job must be one of {JOBS}, got {self.job!r}")
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ValueError("torch_threads must be >= 1 (or null for PyTorch's default)")

    def apply(self, seed: int) -> None:
        """Set the threads, and seed every RNG before the model loads: the LoRA A matrices are drawn at random
        when the adapters are created, before the Trainer seeds anything, so without this two runs of one
        recipe and seed start from different adapters (found by the exact-resume test, tests/test_train_e2e.py)."""
        from transformers import set_seed

        if self.torch_threads is not None:
            import torch

            torch.set_num_threads(self.torch_threads)
        set_seed(seed)


@dataclass
class RLArguments:
    """RL: rewards, failure replay, sample logging and the collapse guard (the trainer's settings are in
    GRPOConfig, the schedule's in ScheduleConfig)."""

    reward_funcs: list[str] | None = field(
        default=None, metadata={"help": "Reward function names (rewards.REWARD_FUNCS, or 'discriminator'); "
                                        "None = every reward of both roles."})
    replay_capacity: int = field(default=256, metadata={"help": "Failed problems kept for replay (0 = no replay)."})
    replay_ratio: float = field(
        default=0.25, metadata={"help": "Probability that a prompt group is swapped for a replayed failure."})
    samples_per_step: int = field(
        default=2, metadata={"help": "Sample chains per generation batch written to output_dir/samples.jsonl."})
    collapse_guard_metric: str = field(
        default="generator/collapse_rate",
        metadata={"help": "Logged metric the collapse guard watches (higher = worse): by default the share of "
                          "generator samples with a degenerate stage. Metrics only the main process logs "
                          "(eval_bench/...) are for single-process runs only."})
    collapse_guard_threshold: float = field(
        default=0.5, metadata={"help": "Value of collapse_guard_metric at or above which training has collapsed "
                                       "(repetition_threshold is the reward's, a different, graded measure)."})
    collapse_guard_patience: int = field(
        default=2, metadata={"help": "Collapsed logs in a row before the guard stops training."})
    stop_on_collapse: bool = field(
        default=True, metadata={"help": "Stop training when the guard fires; final/ then holds the adapters of the "
                                        "last checkpoint saved before the collapse (the collapsed ones: collapsed/)."})

    def __post_init__(self) -> None:
        if not 0.0 <= self.replay_ratio <= 1.0 or self.replay_capacity < 0:
            raise ValueError("replay_ratio must lie in [0, 1] and replay_capacity be >= 0")


@dataclass
class ChainArguments:
    """Token budgets and templates of the five-stage chain (sampling: GRPOConfig's temperature/top_p/top_k)."""

    generator_tokens: list[int] = field(
        default_factory=lambda: list(DEFAULT_GENERATOR_TOKENS),
        metadata={"help": "Max new tokens per generator stage (5, or 1 for all)."})
    discriminator_tokens: list[int] = field(
        default_factory=lambda: [128], metadata={"help": "Max new tokens per discriminator stage (5, or 1 for all)."})
    templates: str = field(default="default", metadata={"help": "Prompt template set name or folder."})

    def chain_config(self, training: Any) -> ChainConfig:
        """The chain of a run whose trainer config ``training`` gives the sampling."""
        return ChainConfig(generator_tokens=self.generator_tokens, discriminator_tokens=self.discriminator_tokens,
                           temperature=training.temperature, top_p=training.top_p, top_k=training.top_k or 0,
                           templates=self.templates)


@dataclass
class BenchmarkArguments(BenchmarkEvalConfig):
    """``pipeline.training.benchmark.BenchmarkEvalConfig`` plus which benchmark it evaluates on."""

    bench_benchmark: str = field(
        default="humaneval-mini",
        metadata={"help": f"Benchmark evaluated during training, one of {TRAINING_BENCHMARKS} (mbpp: its test split)."})

    def __post_init__(self) -> None:
        if self.bench_benchmark not in TRAINING_BENCHMARKS:
            raise ValueError(f"bench_benchmark must be one of {TRAINING_BENCHMARKS}, got {self.bench_benchmark!r}")
        super().__post_init__()


def device_defaults(sft: bool) -> dict[str, Any]:
    """Defaults that depend on the machine. Activation checkpointing is on (TRL's default) with a CUDA GPU and off
    on the CPU, where memory is plentiful and checkpointing costs ~20 % of the step; it is set under its current
    name (transformers 5 deprecates ``gradient_checkpointing``, which TRL's configs still set). Without CUDA, bf16
    autocast where the CPU has native bf16 (as ``dtype: auto`` picks bf16 weights), else fp32; the warm start and
    bootstrap also say ``use_cpu``."""
    import torch

    if torch.cuda.is_available():
        return {"activation_checkpointing": True}
    cpu = {"activation_checkpointing": False, "bf16": cpu_has_native_bf16()}
    return {"use_cpu": True, **cpu} if sft else cpu


def recipe_job(argv: list[str]) -> str:
    """The job a command line runs: ``--job`` if given, else the recipe's ``job:``, else ``rl``. A recipe or flag
    under a name from before the 2026-12-02 redesign (``mode``) is an error that names its replacement."""
    args = list(argv)
    job = None
    for at, token in enumerate(args):
        name = token[2:].partition("=")[0] if token.startswith("--") else ""
        if name in RENAMED:
            raise ConfigError(f"--{name} was renamed: {RENAMED[name]}")
        if token == "--job" and at + 1 < len(args):
            job = args[at + 1]
        elif token.startswith("--job="):
            job = token.partition("=")[2]
    in_recipe = recipe_field(args, "job", RunArguments.job)  # read, and checked for renamed fields, either way
    job = in_recipe if job is None else job
    if job not in JOBS:
        raise ConfigError(f"job must be one of {JOBS}, got {job!r}")
    return job


def recipe_field(args: list[str], name: str, default: str) -> str:
    """The value of ``name`` in the ``--config`` recipe of ``args`` (``default`` without one), read before
    parsing; the recipe must be a YAML mapping without the fields renamed in the redesign."""
    if "--config" not in args or args.index("--config") + 1 >= len(args):
        return default
    path = Path(args[args.index("--config") + 1])
    try:
        recipe = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"--config {path}: {err}") from err
    if not isinstance(recipe, dict):
        raise ConfigError(f"--config {path} must hold a YAML mapping")
    for old, now in RENAMED.items():
        if old in recipe:
            raise ConfigError(f"--config {path}: `{old}:` was renamed: {now}")
    return str(recipe.get(name, default))


def parse_recipe(types: tuple[type, ...], argv: list[str] | None, defaults: dict[str, Any],
                 partial: bool = False) -> tuple[Any, ...]:
    """One instance of each of ``types`` from ``--config recipe.yaml`` plus command-line overrides (TRL style);
    ``defaults`` replace the dataclasses' own, and the recipe and the command line replace those. ``partial``
    ignores fields none of ``types`` has (a tool that reads part of a recipe); otherwise they are an error."""
    from trl import TrlParser

    parser = TrlParser(types)
    if defaults:
        parser.set_defaults_with_config(**defaults)
    try:
        if partial:
            return tuple(parser.parse_args_and_config(argv, return_remaining_strings=True))[:-1]
        return tuple(parser.parse_args_and_config(argv))
    except (ValueError, TypeError, OSError) as err:
        raise ConfigError(str(err)) from err


def effective_recipe(argv: list[str], types: tuple[type, ...]) -> dict[str, Any]:
    """The recipe YAML with the command line's overrides applied, so ``--config recipe.yaml`` reruns the run."""
    args = list(argv)
    recipe: dict[str, Any] = {}
    if "--config" in args:
        at = args.index("--config")
        recipe = yaml.safe_load(Path(args[at + 1]).read_text()) or {}
        del args[at : at + 2]
    lists = {f.name for cls in types for f in dataclasses.fields(cls)
             if "list" in str(typing.get_type_hints(cls)[f.name])}

    def value_of(text: str) -> Any:
        try:
            return json.loads(text)  # numbers like 2e-5 (YAML 1.1 reads them as strings), objects, true/false
        except ValueError:
            return yaml.safe_load(text)

    overrides: dict[str, list[Any]] = {}
    for token in args:
        if token.startswith("--"):
            name, has_value, value = token[2:].partition("=")
            key = name.replace("-", "_")
            overrides[key] = [value_of(value)] if has_value else []
        elif overrides:
            overrides[key].append(value_of(token))
    for key, values in overrides.items():
        recipe[key] = values if key in lists else True if not values else values[0]
    recipe.pop("resume_from_checkpoint", None)  # a property of one invocation, not of the recipe
    return recipe
