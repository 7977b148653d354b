"""Train the generator and discriminator adapters with TRL's GRPOTrainer on execution rewards, or
warm-start the generator adapter with TRL's SFTTrainer first (a recipe with ``mode: sft``), or bootstrap
both adapters on their own verified samples (``mode: bootstrap``, expert iteration).

    accelerate launch train.py --config configs/smoke.yaml [--any_field value ...]
    accelerate launch train.py --config configs/sft_warmstart.yaml          # mode: sft
    accelerate launch train.py --config configs/bootstrap.yaml              # mode: bootstrap
    accelerate launch train.py --config configs/smoke.yaml --generator_init_adapter outputs/sft_warmstart/final

Read top to bottom: configuration, checks that fail before anything heavy starts, data, run records,
the warm start (SFT), the bootstrap rounds, then RL: model, rollout and rewards, the trainer and its
callbacks, resume, train, save, push. docs/training.md explains the algorithm and the recipes,
docs/warmstart.md the warm start, docs/bootstrap.md the bootstrap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import sys
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml
from accelerate import PartialState
from datasets import Dataset, concatenate_datasets
from trl import GRPOConfig, SFTConfig, TrlParser

import datasets_build
from pipeline.adapters import ADAPTER_CONFIG, ROLES, resolve_adapter_dir
from pipeline.bootstrap import BootstrapConfig, BootstrapError, finished_rounds, run_bootstrap
from pipeline.chain import ChainConfig
from pipeline.embedded import cache_root
from pipeline.evaluation.callback import BenchmarkCallback, BenchmarkEvalConfig
from pipeline.models import ModelConfig, ModelLoadError
from pipeline.policies import load_policies
from pipeline.rollout import ProblemIndex
from pipeline.training.callbacks import PhaseCallback
from pipeline.training.checkpoints import (
    RECIPE_FILE, RUN_INFO_FILE, BestTracker, CheckpointCallback, CheckpointError, checkpoints, discard_after,
    read_schedule_state, resolve_resume,
)  # fmt: skip
from pipeline.training.hub import PushError, push_folder
from pipeline.training.replay import FailureRecorder, ReplayBuffer, ReplayCallback, ReplayRollout
from pipeline.training.schedule import AdversarialSchedule, ScheduleConfig, ScheduleError, check_alignment
from pipeline.training.trainer import DuelGRPOTrainer
from pipeline.warmstart import (
    RECIPE_DEFAULTS, RECORD_FILE, CollapseGuard, CollapseGuardConfig, WarmStartConfig, WarmStartError, run_warm_start,
)  # fmt: skip
from rewards import RewardConfig, default_reward_names, get_reward_funcs, get_reward_weights, resolve_names

logger = logging.getLogger("train")
REPO_ROOT = Path(__file__).resolve().parent
DEFAULT_MBPP_FILE = REPO_ROOT.parent / "shared" / "data" / "mbpp" / "mbpp.jsonl"


# ----------------------------------------------------------------------------- configuration


@dataclass
class DataArguments:
    """The training rows (both modes) and the CPU threads of each process."""

    dataset_dir: str | None = field(
        default=None, metadata={"help": "A DatasetDict folder written by `python -m datasets_build`; "
                                        "None = build it once into dataset_cache_dir."})
    dataset_cache_dir: str | None = field(
        default=None, metadata={"help": "Where built datasets are cached (default: $DUELCODER_CACHE/datasets)."})
    mbpp_file: str | None = field(
        default=None, metadata={"help": f"MBPP JSONL used when the Hub is unreachable (default: {DEFAULT_MBPP_FILE})."})
    train_splits: list[str] = field(
        default_factory=lambda: list(datasets_build.DefaultSplits().train), metadata={"help": "Splits to train on."})
    eval_splits: list[str] = field(
        default_factory=lambda: list(datasets_build.DefaultSplits().evaluation),
        metadata={"help": "Evaluation splits the training rows are checked against for contamination."})
    allow_contamination: bool = field(
        default=False, metadata={"help": "Train even if training rows overlap evaluation rows (logged)."})
    max_reference_lines: int | None = field(
        default=None, metadata={"help": "Keep training problems whose reference has at most this many lines."})
    max_train_problems: int | None = field(
        default=None, metadata={"help": "Keep the first N training problems (after the filter above)."})
    train_task_ids_file: str | None = field(
        default=None, metadata={"help": "Then keep only the problems listed in this file (one task_id per line, '#' "
                                        "comments), e.g. those of a measured solve rate (scripts/select_problems.py)."})
    torch_threads: int | None = field(
        default=None, metadata={"help": "CPU threads per process for PyTorch (None = its default, one per core). "
                                        "1 is much faster on a busy CPU, where spinning threads starve each other."})


@dataclass
class ScriptArguments(DataArguments):
    """RL: data, replay, collapse guard and sample logging (the trainer's settings are in GRPOConfig, the
    schedule's in ScheduleConfig)."""

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
                                       "(collapse_threshold is the reward shaping's)."})
    collapse_guard_patience: int = field(
        default=2, metadata={"help": "Collapsed logs in a row before the guard stops training."})
    stop_on_collapse: bool = field(
        default=True, metadata={"help": "Stop training when the guard fires; final/ then holds the adapters of the "
                                        "last checkpoint saved before the collapse (the collapsed ones: collapsed/)."})


@dataclass
class SFTScriptArguments(DataArguments):
    """Warm start: the training rows (the warm start's own settings are in WarmStartConfig, the optimiser's in
    SFTConfig)."""

    mode: str = field(
        default="sft", metadata={"help": "'sft': this supervised warm start. train.py reads the mode first; RL "
                                         "recipes give the schedule's mode ('adversarial' or 'unified')."})


@dataclass
class BootstrapScriptArguments(DataArguments):
    """Bootstrap: the training rows (the rounds' settings are in BootstrapConfig, each round's optimiser in
    SFTConfig, whose ``seed`` also seeds the sampling)."""

    mode: str = field(
        default="bootstrap", metadata={"help": "'bootstrap': expert iteration on the model's own verified samples. "
                                               "train.py reads the mode first."})


BENCHMARKS = ("humaneval-mini", "humaneval", "mbpp")


@dataclass
class BenchmarkArguments(BenchmarkEvalConfig):
    """``pipeline.evaluation.callback.BenchmarkEvalConfig`` plus which benchmark it evaluates on."""

    bench_benchmark: str = field(
        default="humaneval-mini",
        metadata={"help": f"Benchmark evaluated during training, one of {BENCHMARKS} (mbpp: its test split)."})

    def __post_init__(self) -> None:
        if self.bench_benchmark not in BENCHMARKS:
            raise ValueError(f"bench_benchmark must be one of {BENCHMARKS}, got {self.bench_benchmark!r}")
        super().__post_init__()


@dataclass
class ChainArguments:
    """Token budgets and templates of the five-stage chain (sampling: GRPOConfig's temperature/top_p/top_k)."""

    generator_tokens: list[int] = field(
        default_factory=lambda: [96, 128, 128, 96, 256], metadata={"help": "Max new tokens per generator stage (5, or 1 for all)."})
    discriminator_tokens: list[int] = field(
        default_factory=lambda: [128], metadata={"help": "Max new tokens per discriminator stage (5, or 1 for all)."})
    templates: str = field(default="default", metadata={"help": "Prompt template set name or folder."})


@dataclass
class RewardArguments(RewardConfig):
    """``rewards.RewardConfig``; ``weights`` also reads JSON text on the command line (``--weights '{"format": 0.5}'``)."""

    weights: str = field(default="{}", metadata={"help": "Per reward-function weights: a YAML mapping, or JSON text."})

    def __post_init__(self) -> None:
        if isinstance(self.weights, str):
            try:
                self.weights = json.loads(self.weights)
            except ValueError as err:
                raise ValueError(f"weights must be a JSON object, got {self.weights!r}") from err
        super().__post_init__()


def _without_fields(cls: type, drop: set[str], name: str) -> type:
    """A copy of dataclass ``cls`` minus ``drop`` (fields the trainer's config already has: one flag each)."""
    hints = typing.get_type_hints(cls)
    kept = [(f.name, hints[f.name], field(default=f.default, default_factory=f.default_factory, metadata=f.metadata))
            for f in dataclasses.fields(cls) if f.name not in drop]
    return dataclasses.make_dataclass(name, kept)


def _shared(cls: type, other: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)} & {f.name for f in dataclasses.fields(other)}


SHARED_WITH_GRPO = _shared(ModelConfig, GRPOConfig)
SHARED_WITH_SFT = _shared(ModelConfig, SFTConfig)
ModelArguments = _without_fields(ModelConfig, SHARED_WITH_GRPO, "ModelArguments")
SFTModelArguments = _without_fields(ModelConfig, SHARED_WITH_SFT, "SFTModelArguments")
PARSER_TYPES = (ScriptArguments, ScheduleConfig, ChainArguments, RewardArguments, BenchmarkArguments, GRPOConfig,
                ModelArguments)
SFT_PARSER_TYPES = (SFTScriptArguments, WarmStartConfig, BenchmarkArguments, SFTConfig, SFTModelArguments)
SHARED_BOOTSTRAP_SFT = _shared(BootstrapConfig, SFTConfig)  # seed: one flag, SFTConfig's
BootstrapArguments = _without_fields(BootstrapConfig, SHARED_BOOTSTRAP_SFT, "BootstrapArguments")
BOOTSTRAP_PARSER_TYPES = (BootstrapScriptArguments, BootstrapArguments, SFTConfig, SFTModelArguments)
# Defaults of a `mode: sft` run that differ from the dataclasses': the plan's LoRA (rank 8, alpha 16) and
# optimiser (pipeline.warmstart.RECIPE_DEFAULTS: lr 1e-4, 10 % warmup, cosine), and, without a CUDA GPU,
# full precision (SFTConfig defaults to bf16). The recipe and the command line override each one.
SFT_DEFAULTS: dict[str, Any] = {"lora_r": 8, "lora_alpha": 16, **RECIPE_DEFAULTS}
SFT_CPU_DEFAULTS: dict[str, Any] = {"use_cpu": True, "bf16": False, "activation_checkpointing": False}
# The warm start's defaults, but no warmup: every round restarts the schedule, and a round trains a few steps,
# so a warmup would spend a step of each round at learning rate 0.
BOOTSTRAP_DEFAULTS: dict[str, Any] = {**SFT_DEFAULTS, "warmup_steps": 0}


class ConfigError(ValueError):
    """A configuration that cannot work; raised before any model or data is loaded."""


def recipe_mode(argv: list[str]) -> str:
    """``sft``, ``bootstrap``, or the RL schedule's mode: ``--mode`` on the command line, else the recipe's ``mode:``."""
    args = list(argv)
    for at, token in enumerate(args):
        if token == "--mode" and at + 1 < len(args):
            return args[at + 1]
        if token.startswith("--mode="):
            return token.partition("=")[2]
    if "--config" not in args or args.index("--config") + 1 >= len(args):
        return ScheduleConfig.mode
    path = Path(args[args.index("--config") + 1])
    try:
        recipe = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"--config {path}: {err}") from err
    if not isinstance(recipe, dict):
        raise ConfigError(f"--config {path} must hold a YAML mapping")
    return str(recipe.get("mode", ScheduleConfig.mode))


def parse_config(argv: list[str] | None = None):
    """The RL dataclasses from ``--config recipe.yaml`` plus command-line overrides (TRL style)."""
    try:
        script, schedule, chain, reward, bench, training, model_args = \
            TrlParser(PARSER_TYPES).parse_args_and_config(argv)
        model = ModelConfig(**asdict(model_args), **{n: getattr(training, n) for n in SHARED_WITH_GRPO})
    except (ValueError, TypeError, OSError) as err:
        raise ConfigError(str(err)) from err
    return script, schedule, chain, reward, training, model, bench


def parse_sft_config(argv: list[str] | None = None):
    """The warm start's dataclasses (``mode: sft``), with the plan's recipe as defaults (``SFT_DEFAULTS``)."""
    import torch

    parser = TrlParser(SFT_PARSER_TYPES)
    parser.set_defaults_with_config(**SFT_DEFAULTS, **({} if torch.cuda.is_available() else SFT_CPU_DEFAULTS))
    try:
        script, warm, bench, training, model_args = parser.parse_args_and_config(argv)
        model = ModelConfig(**asdict(model_args), **{n: getattr(training, n) for n in SHARED_WITH_SFT})
    except (ValueError, TypeError, OSError) as err:
        raise ConfigError(str(err)) from err
    if script.mode != "sft":
        raise ConfigError(f"mode {script.mode!r}: this parser reads warm-start recipes (mode: sft)")
    return script, warm, bench, training, model


def parse_bootstrap_config(argv: list[str] | None = None):
    """The bootstrap's dataclasses (``mode: bootstrap``), with the warm start's recipe as SFT defaults, no warmup."""
    import torch

    parser = TrlParser(BOOTSTRAP_PARSER_TYPES)
    parser.set_defaults_with_config(**BOOTSTRAP_DEFAULTS, **({} if torch.cuda.is_available() else SFT_CPU_DEFAULTS))
    try:
        script, boot_args, training, model_args = parser.parse_args_and_config(argv)
        boot = BootstrapConfig(**asdict(boot_args), **{n: getattr(training, n) for n in SHARED_BOOTSTRAP_SFT})
        model = ModelConfig(**asdict(model_args), **{n: getattr(training, n) for n in SHARED_WITH_SFT})
    except (ValueError, TypeError, OSError) as err:
        raise ConfigError(str(err)) from err
    if script.mode != "bootstrap":
        raise ConfigError(f"mode {script.mode!r}: this parser reads bootstrap recipes (mode: bootstrap)")
    return script, boot, training, model


def effective_recipe(argv: list[str], types: tuple[type, ...] = PARSER_TYPES) -> dict[str, Any]:
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


def check_data(script: DataArguments) -> None:
    """Checks of the data selection and threads, shared by both modes."""
    if script.torch_threads is not None and script.torch_threads < 1:
        raise ConfigError("torch_threads must be >= 1 (or null for PyTorch's default)")
    if script.max_train_problems is not None and script.max_train_problems < 1:
        raise ConfigError("max_train_problems must be >= 1 (or null for all)")
    if not script.train_splits:
        raise ConfigError("train_splits is empty")
    if not script.eval_splits and not script.allow_contamination:
        raise ConfigError("eval_splits is empty, so contamination cannot be checked; name the evaluation splits "
                          "or set allow_contamination: true")


def check_init_adapters(model: ModelConfig) -> None:
    """``<role>_init_adapter``: a local folder must hold that role's adapter; a path that does not exist is an
    error here (only ``user/name`` is tried on the Hub, at model load)."""
    for role in ROLES:
        name = f"{role}_init_adapter"
        source = getattr(model, name)
        if source is None:
            continue
        path = Path(source).expanduser()
        if path.exists():
            try:
                resolve_adapter_dir(path, role)
            except ModelLoadError as err:
                raise ConfigError(f"{name}: {err}") from err
        elif path.is_absolute() or source.startswith((".", "~")) or source.count("/") != 1:
            raise ConfigError(f"{name} {source!r}: no such folder (a warm start writes its adapters to "
                              "<output_dir>/final; a Hub repo is given as user/name)")


def validate(script: ScriptArguments, schedule_cfg: ScheduleConfig, reward: RewardConfig,
             training: GRPOConfig, model: ModelConfig) -> AdversarialSchedule:
    """Every check that needs no model or data; returns the schedule, with max_steps settled."""
    if training.beta != 0.0:
        raise ConfigError(f"beta={training.beta}: the KL penalty needs a reference model, and with two adapters on "
                          "one PeftModel TRL 1.16 would copy a 'default' adapter that does not exist; use beta: 0.0")
    if training.use_vllm:
        raise ConfigError("use_vllm: TRL syncs a LoRA policy into vLLM by merging the adapter into the base "
                          "(GRPOTrainer._move_model_to_vllm calls merge_adapter), so one engine holds one merged "
                          "model and cannot serve two role adapters per request; and with a 4-bit base that sync "
                          "fails (packed NF4 shapes, TRL issue #4973). The staged rollout generates with "
                          "transformers (pipeline.chain). Set use_vllm: false.")
    if model.separate_discriminator_model is not None:
        raise ConfigError("separate_discriminator_model: train.py trains both adapters on ONE PeftModel; "
                          "remove it (both roles share the base model)")
    if schedule_cfg.mode == "unified" and model.discriminator_init_adapter is not None:
        raise ConfigError("discriminator_init_adapter: unified mode trains the generator adapter alone (it plays "
                          "both roles), so a discriminator adapter would never be used; remove it")
    check_init_adapters(model)
    try:
        CollapseGuardConfig(metric=script.collapse_guard_metric, threshold=script.collapse_guard_threshold,
                            patience=script.collapse_guard_patience)
    except ValueError as err:
        raise ConfigError(f"collapse guard: {err}") from err
    try:
        resolve_names(script.reward_funcs or default_reward_names(reward), reward)
    except ValueError as err:
        raise ConfigError(str(err)) from err
    if not 0.0 <= script.replay_ratio <= 1.0 or script.replay_capacity < 0:
        raise ConfigError("replay_ratio must lie in [0, 1] and replay_capacity be >= 0")
    check_data(script)
    if training.save_total_limit is not None and training.save_total_limit < 2:
        raise ConfigError("save_total_limit must be >= 2 (or null): with 1, the only complete checkpoint is deleted "
                          "before the new one is marked complete")
    if training.push_to_hub and not training.hub_model_id:
        raise ConfigError("push_to_hub needs hub_model_id (e.g. user/duelcoder-adapters)")
    num_processes = PartialState().num_processes
    if schedule_cfg.mode == "unified" and training.generation_batch_size // training.num_generations < 2:
        raise ConfigError("unified mode alternates roles per prompt group, so a generation batch needs >= 2 groups: "
                          f"generation_batch_size {training.generation_batch_size} / num_generations "
                          f"{training.num_generations} < 2")
    if schedule_cfg.mode == "adversarial" and num_processes > 1:
        if training.ddp_find_unused_parameters is False:
            raise ConfigError("ddp_find_unused_parameters must be true: in each phase one adapter gets no gradient")
        training.ddp_find_unused_parameters = True
    if schedule_cfg.mode == "adversarial" and getattr(training, "deepspeed_plugin", None) is not None:
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
    except ScheduleError as err:
        raise ConfigError(str(err)) from err
    return schedule


def validate_sft(script: SFTScriptArguments, training: SFTConfig, model: ModelConfig) -> None:
    """The warm start's checks that need no model or data."""
    check_init_adapters(model)
    if training.eval_strategy != "no":
        raise ConfigError(f"eval_strategy {training.eval_strategy!r}: the warm start has no eval dataset; "
                          "evaluate on the benchmark with bench_eval_steps instead (eval_strategy: 'no')")
    if training.push_to_hub:
        raise ConfigError("push_to_hub: push the warm start's final/ folder with `python -m pipeline.push`, "
                          "or push the RL run that starts from it")
    training.resume_from_checkpoint = sft_resume(training.output_dir, training.resume_from_checkpoint)
    check_data(script)


def validate_bootstrap(script: BootstrapScriptArguments, training: SFTConfig, model: ModelConfig) -> bool:
    """The bootstrap's checks that need no model or data; returns whether to resume after the finished rounds."""
    if model.separate_discriminator_model is not None:
        raise ConfigError("separate_discriminator_model: the bootstrap trains both adapters on ONE PeftModel; remove it")
    check_init_adapters(model)
    if training.eval_strategy != "no":
        raise ConfigError(f"eval_strategy {training.eval_strategy!r}: the bootstrap has no eval dataset "
                          "(eval_strategy: 'no'); evaluate its final/ adapters with evaluate.py")
    if training.push_to_hub:
        raise ConfigError("push_to_hub: push the bootstrap's final/ folder with `python -m pipeline.push`")
    if PartialState().num_processes > 1:
        raise ConfigError("the bootstrap samples and judges in one process: launch it with --num_processes 1")
    check_data(script)
    value = training.resume_from_checkpoint
    resume = value is not None and str(value).lower() not in ("", "no", "none", "false")
    if resume and str(value).lower() not in ("latest", "true"):
        raise ConfigError(f"resume_from_checkpoint {value!r}: the bootstrap resumes by round; pass 'latest' to "
                          "continue after the last finished round of output_dir")
    done = finished_rounds(Path(training.output_dir))
    if done and not resume:
        raise ConfigError(f"{training.output_dir} already holds finished bootstrap rounds {done}: pass "
                          "--resume_from_checkpoint latest to continue that run, or choose another output_dir")
    training.resume_from_checkpoint = None  # rounds are resumed by run_bootstrap, never a Trainer checkpoint
    return resume


def sft_resume(output_dir: str, value: str | None) -> str | None:
    """The warm start's checkpoint to resume from: ``latest`` (or ``true``) is the newest ``checkpoint-N``
    of ``output_dir`` (None, so a fresh start, when there is none yet, as in RL); a path must be a folder."""
    if value is None or str(value).lower() in ("", "no", "none", "false"):
        return None
    if str(value).lower() in ("latest", "true"):
        from transformers.trainer_utils import get_last_checkpoint

        found = get_last_checkpoint(output_dir) if Path(output_dir).is_dir() else None
        if found is None:
            logger.warning("resume_from_checkpoint=latest: no checkpoint in %s, starting fresh", output_dir)
        return found
    if not Path(value).is_dir():
        raise ConfigError(f"resume_from_checkpoint {value!r} is not a folder")
    return value


# ----------------------------------------------------------------------------- data


def _dataset_folder(script: DataArguments) -> Path:
    """The verified DatasetDict: ``dataset_dir``, or one built once (main process first) and cached."""
    if script.dataset_dir is not None:
        folder = Path(script.dataset_dir)
        if not (folder / "dataset_dict.json").is_file():
            raise ConfigError(f"dataset_dir {folder} is not a DatasetDict folder (run `python -m datasets_build --out DIR`)")
        return folder
    mbpp = Path(script.mbpp_file) if script.mbpp_file else DEFAULT_MBPP_FILE
    if script.mbpp_file and not mbpp.is_file():
        raise ConfigError(f"mbpp_file {mbpp} does not exist")
    local = mbpp if mbpp.is_file() else None  # without it, datasets_build asks the Hub
    stat = local.stat() if local else None
    source = [str(local.resolve()), stat.st_size, stat.st_mtime_ns] if local and stat else ["hub"]
    key = hashlib.sha256(json.dumps(source).encode()).hexdigest()[:16]
    root = Path(script.dataset_cache_dir) if script.dataset_cache_dir else cache_root() / "datasets"
    folder = root / key
    with PartialState().main_process_first():
        if not (folder / "dataset_dict.json").is_file() and PartialState().is_main_process:
            logger.info("building and verifying the datasets into %s (once)", folder)
            staging = root / f".{key}.partial"
            shutil.rmtree(staging, ignore_errors=True)
            config = datasets_build.BuildConfig(out=str(staging), progress=False, source=datasets_build.SourceConfig(
                mbpp_file=str(local) if local else None))
            try:
                _, report = datasets_build.build_with_report(config)
            except datasets_build.DatasetFormatError as err:
                raise ConfigError(f"could not build the datasets: {err} (pass --mbpp_file or --dataset_dir)") from err
            logger.info("dataset build:\n%s", report.table())
            shutil.rmtree(folder, ignore_errors=True)
            staging.rename(folder)
    return folder


def _load_splits(folder: Path, splits: list[str]) -> Dataset:
    try:
        return concatenate_datasets([datasets_build.load_problems(folder, split=s) for s in splits])
    except datasets_build.DatasetFormatError as err:
        raise ConfigError(f"dataset: {err}") from err


def load_training_problems(script: DataArguments) -> tuple[Dataset, int]:
    """Training rows with a short unique ``prompt`` column, after the contamination check."""
    folder = _dataset_folder(script)
    train = _load_splits(folder, script.train_splits)
    if script.eval_splits:
        evaluation = _load_splits(folder, script.eval_splits)
        try:
            datasets_build.check_contamination(train, evaluation, allow=script.allow_contamination)
        except datasets_build.ContaminationError as err:
            raise ConfigError(f"{err}\n(set allow_contamination: true to train anyway)") from err
    if script.max_reference_lines is not None:
        train = train.filter(lambda row: row["reference_lines"] <= script.max_reference_lines)
    if script.max_train_problems is not None:
        train = train.select(range(min(script.max_train_problems, len(train))))
    if script.train_task_ids_file is not None:
        try:
            wanted = datasets_build.require_tasks(datasets_build.read_task_ids(script.train_task_ids_file),
                                                  train["task_id"], script.train_task_ids_file)
        except datasets_build.DatasetFormatError as err:
            raise ConfigError(f"train_task_ids_file: {err}") from err
        train = train.filter(lambda row: row["task_id"] in wanted)
    if len(train) == 0:
        raise ConfigError("no training problem is left after the filters")
    # TRL hands the rollout prompts only: a short text that names the task identifies its row.
    train = train.map(lambda row: {"prompt": f"{row['task_id']}: {row['problem'].strip().splitlines()[0][:120]}"})
    if len(set(train["prompt"])) != len(train):
        raise ConfigError("training rows share a task_id; their prompts would not identify them")
    return train, len(train)


def benchmark_callback(bench: BenchmarkArguments, eval_steps: float | None, templates: str,
                       script: DataArguments) -> BenchmarkCallback | None:
    """The benchmark evaluation during training (attached once the trainer exists), or None when it is off:
    no ``bench_modes``, or neither ``bench_eval_steps`` nor the trainer's ``eval_steps`` says when to run it."""
    if not bench.enabled:
        return None
    if bench.bench_eval_steps is None and not eval_steps:
        logger.info("no benchmark evaluation during training: set bench_eval_steps (or eval_steps) to turn it on")
        return None
    mbpp = Path(script.mbpp_file) if script.mbpp_file else DEFAULT_MBPP_FILE
    source = datasets_build.SourceConfig(use_hub=bench.bench_benchmark == "mbpp",
                                         mbpp_file=str(mbpp) if mbpp.is_file() else None)
    try:
        rows = datasets_build.load_problems(bench.bench_benchmark, split="test" if bench.bench_benchmark == "mbpp"
                                            else None, config=source).to_list()
        return BenchmarkCallback(rows, bench, templates=templates)
    except (datasets_build.DatasetFormatError, ValueError, OSError) as err:
        raise ConfigError(f"benchmark {bench.bench_benchmark}: {err}") from err


# ----------------------------------------------------------------------------- run records


def run_info(script, schedule_cfg, reward_names, training, model, train_rows) -> dict[str, Any]:
    import peft
    import transformers
    import trl

    return {
        "base_model": model.model_name_or_path or "embedded",
        "mode": schedule_cfg.mode, "curriculum": schedule_cfg.curriculum, "stages": schedule_cfg.train_stages,
        "schedule": asdict(schedule_cfg), "reward_funcs": reward_names, "reward_weights": training.reward_weights,
        "train_splits": script.train_splits, "eval_splits": script.eval_splits, "train_problems": train_rows,
        "replay": {"capacity": script.replay_capacity, "ratio": script.replay_ratio},
        "start": start_points(model, ("generator",) if schedule_cfg.mode == "unified" else ROLES),
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
        record = folder.parent / RECORD_FILE
        if record.is_file():
            warm = json.loads(record.read_text())
            points[role]["warmstart"] = {k: warm.get(k) for k in ("base_model", "steps", "final_loss", "stage_format",
                                                                   "data", "adapters_from")}
            if warm.get("base_model") != (model.model_name_or_path or "embedded"):
                logger.warning("%s_init_adapter was warm-started on %s, this run's base is %s", role,
                               warm.get("base_model"), model.model_name_or_path or "embedded")
    return points


def apply_torch_threads(script: ScriptArguments) -> None:
    """PyTorch's intra-op threads as the recipe says (every mode; None keeps PyTorch's default)."""
    if script.torch_threads is not None:
        import torch

        torch.set_num_threads(script.torch_threads)


def write_run_files(folder: Path, recipe: dict[str, Any], info: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RECIPE_FILE).write_text(yaml.safe_dump(recipe, sort_keys=False))
    (folder / RUN_INFO_FILE).write_text(json.dumps(info, indent=2))


# ----------------------------------------------------------------------------- warm start (mode: sft)


def warm_start(argv: list[str]) -> int:
    """SFT of the generator adapter on the verified training rows (pipeline.warmstart); adapters in final/."""
    try:
        script, warm, bench, training, model_cfg = parse_sft_config(argv)
        validate_sft(script, training, model_cfg)
        benchmark = benchmark_callback(bench, training.eval_steps, warm.templates, script)
        dataset, train_rows = load_training_problems(script)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    apply_torch_threads(script)
    logger.info("warm start on %d training problems", train_rows)
    try:
        final = run_warm_start(model_cfg, training, warm, list(dataset), callbacks=[benchmark] if benchmark else [])
    except ModelLoadError as err:
        print(f"model error: {err}", file=sys.stderr)
        return 2
    except WarmStartError as err:
        print(f"warm start error: {err}", file=sys.stderr)
        return 2
    if PartialState().is_main_process:
        (final / RECIPE_FILE).write_text(yaml.safe_dump(effective_recipe(argv, SFT_PARSER_TYPES), sort_keys=False))
        print(f"adapters saved: {final / 'generator'} (warm-started) and {final / 'discriminator'} (untouched)\n"
              f"RL from them: train.py --config configs/smoke.yaml --generator_init_adapter {final} "
              f"--discriminator_init_adapter {final}")
    return 0


# ----------------------------------------------------------------------------- bootstrap (mode: bootstrap)


def bootstrap(argv: list[str]) -> int:
    """Expert iteration for both adapters (pipeline.bootstrap): rounds in round-<k>/, the last adapters in final/."""
    try:
        script, boot, training, model_cfg = parse_bootstrap_config(argv)
        resume = validate_bootstrap(script, training, model_cfg)
        dataset, train_rows = load_training_problems(script)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    apply_torch_threads(script)
    logger.info("bootstrap: %d rounds on %d training problems", boot.rounds, train_rows)
    try:
        final = run_bootstrap(model_cfg, training, boot, list(dataset), resume=resume)
    except ModelLoadError as err:
        print(f"model error: {err}", file=sys.stderr)
        return 2
    except BootstrapError as err:
        print(f"bootstrap error: {err}", file=sys.stderr)
        return 2
    (final / RECIPE_FILE).write_text(yaml.safe_dump(effective_recipe(argv, BOOTSTRAP_PARSER_TYPES), sort_keys=False))
    print(f"adapters saved: {final / 'generator'} and {final / 'discriminator'} (after {boot.rounds} bootstrap "
          f"rounds; each round's data in {Path(training.output_dir)}/round-<k>/)\n"
          f"RL from them: train.py --config configs/smoke.yaml --generator_init_adapter {final} "
          f"--discriminator_init_adapter {final}")
    return 0


# ----------------------------------------------------------------------------- RL (GRPO)


def train_rl(argv: list[str]) -> int:
    try:
        script, schedule_cfg, chain_args, reward_cfg, training, model_cfg, bench = parse_config(argv)
        schedule = validate(script, schedule_cfg, reward_cfg, training, model_cfg)
        output_dir = Path(training.output_dir)
        resume = resolve_resume(output_dir, training.resume_from_checkpoint)
        if resume is None and any(checkpoints(output_dir)):
            raise ConfigError(f"{output_dir} already holds checkpoints: pass --resume_from_checkpoint latest to "
                              "continue that run, or choose another output_dir")
        benchmark = benchmark_callback(bench, training.eval_steps, chain_args.templates, script)
        dataset, train_rows = load_training_problems(script)
    except (ConfigError, CheckpointError) as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    state = PartialState()
    apply_torch_threads(script)
    for start, end, phase in schedule.segments(training.max_steps):
        logger.info("steps %d-%d: %s, stage %s", start, end, phase.role, phase.train_stage or "all")

    # Model: one frozen base, one LoRA adapter per role (unified mode keeps only the generator's).
    try:
        policies = load_policies(model_cfg)
    except ModelLoadError as err:
        print(f"model error: {err}", file=sys.stderr)
        return 2
    model, tokenizer = policies.generator, policies.tokenizer
    if schedule_cfg.mode == "unified":
        model.delete_adapter("discriminator")
    adapters = {"generator": "generator", "discriminator": "generator" if schedule_cfg.mode == "unified" else "discriminator"}
    for role in dict.fromkeys(adapters.values()):
        logger.info("%s adapter starts from %s", role, getattr(model_cfg, f"{role}_init_adapter") or "a fresh LoRA")

    # Rollout and rewards: the rollout swaps in replayed failures, the rewards' context feeds the replay buffer.
    replay = ReplayBuffer(script.replay_capacity)
    chain = ChainConfig(generator_tokens=chain_args.generator_tokens, discriminator_tokens=chain_args.discriminator_tokens,
                        temperature=training.temperature, top_p=training.top_p, top_k=training.top_k or 0,
                        templates=chain_args.templates)
    rollout = ReplayRollout(ProblemIndex(list(dataset)), chain, schedule.phase_at(0), adapters,
                            buffer=replay, ratio=script.replay_ratio if script.replay_capacity else 0.0,
                            seed=training.seed)
    reward_names = resolve_names(script.reward_funcs or default_reward_names(reward_cfg), reward_cfg)
    reward_funcs = get_reward_funcs(reward_names, reward_cfg)
    recorder = FailureRecorder(lambda kwargs: reward_funcs[0].scorer.context(kwargs)[0])
    reward_funcs[0] = recorder.wrap(reward_funcs[0])
    if training.reward_weights is None:
        training.reward_weights = get_reward_weights(reward_names, reward_cfg)

    # Run records: the effective recipe and what was trained on, copied into every checkpoint.
    recipe = effective_recipe(argv)
    info = run_info(script, schedule_cfg, reward_names, training, model_cfg, train_rows)
    push_repo = training.hub_model_id if training.push_to_hub else None
    training.push_to_hub = False  # pushed once, below, with the card; not the Trainer's per-checkpoint pushes
    if state.is_main_process:
        write_run_files(output_dir, recipe, info)

    best = BestTracker(output_dir)
    guard = CollapseGuard(CollapseGuardConfig(
        metric=script.collapse_guard_metric, threshold=script.collapse_guard_threshold,
        stop_on_collapse=script.stop_on_collapse, patience=script.collapse_guard_patience))
    callbacks = [
        PhaseCallback(schedule, rollout, model),
        ReplayCallback(replay, recorder),
        CheckpointCallback(schedule, replay, best, {"run": lambda folder: write_run_files(folder, recipe, info)}),
        guard,
    ]
    trainer = DuelGRPOTrainer(model=model, reward_funcs=reward_funcs, args=training, train_dataset=dataset,
                              processing_class=tokenizer, rollout_func=rollout, callbacks=callbacks,
                              samples_per_step=script.samples_per_step)
    if benchmark is not None:  # HumanEval-mini pass@1 of the generator every bench_eval_steps, best_eval/ kept
        try:
            benchmark.attach(trainer)
        except ValueError as err:
            print(f"config error: {err}", file=sys.stderr)
            return 2

    # Resume: the schedule position must match, the replay buffer comes back, later leftovers go.
    if resume is not None:
        try:
            schedule.check_state(read_schedule_state(resume))
        except (ScheduleError, CheckpointError) as err:
            print(f"resume error: {err}", file=sys.stderr)
            return 2
        replay.load(resume)
        if state.is_main_process:
            discard_after(output_dir, int(read_schedule_state(resume)["position"]["global_step"]))
        state.wait_for_everyone()
        logger.info("resuming from %s", resume)

    trainer.train(resume_from_checkpoint=str(resume) if resume is not None else None)

    # Final adapters, with what is needed to push or rerun them; after a collapse, the last good checkpoint's.
    final = output_dir / "final"
    good = guard.last_good_checkpoint() if guard.stopped else None
    if guard.stopped and state.is_main_process:
        policies.save(output_dir / "collapsed")  # kept for inspection, never used
    if guard.stopped and good is None:
        print(f"training collapsed ({script.collapse_guard_metric} >= {script.collapse_guard_threshold} from step "
              f"{guard.streak_start}) before any checkpoint was saved; the collapsed adapters are in "
              f"{output_dir / 'collapsed'}", file=sys.stderr)
        return 1
    if state.is_main_process:
        shutil.rmtree(final, ignore_errors=True)
        if good is not None:
            for role in ROLES:
                if (Path(good) / role).is_dir():
                    shutil.copytree(Path(good) / role, final / role)
            print(f"training collapsed at step {guard.streak_start}; final/ holds the adapters of {good}")
        else:
            policies.save(final)
        write_run_files(final, recipe, {**info, "adapters_from": good or "trained"})
        trainer.state.save_to_json(str(final / "trainer_state.json"))
        print(f"adapters saved: {final / 'generator'}"
              + ("" if schedule_cfg.mode == "unified" else f" and {final / 'discriminator'}"))
        if push_repo:
            try:
                commit = push_folder(final, push_repo)
            except PushError as err:
                print(f"push error: {err}", file=sys.stderr)
                return 1
            print(f"pushed to https://huggingface.co/{push_repo} ({getattr(commit, 'commit_url', commit)})")
    state.wait_for_everyone()
    return 0


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        mode = recipe_mode(argv)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    if mode == "sft":
        return warm_start(argv)
    if mode == "bootstrap":
        return bootstrap(argv)
    return train_rl(argv)


if __name__ == "__main__":
    sys.exit(main())
